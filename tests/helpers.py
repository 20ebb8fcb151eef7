"""Helpers the tests share: tiny image folders in the course layout and running project scripts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Images per split and class in the tiny datasets; fakes keep the course's 1:2 fake:real.
TINY_COUNTS = {'fakes_dataset': {'real': 4, 'fake': 2}, 'synthetic_dataset': {'real': 3, 'fake': 3}}


def write_image(path: Path, rng: np.random.Generator, mode: str = 'RGB', size: int = 256) -> None:
    """A random image of the given PIL mode (RGB, L, RGBA, P, CMYK) saved to `path`."""
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, 'RGB')
    if mode == 'P':
        image = image.quantize(16)
    elif mode != 'RGB':
        image = image.convert(mode)
    image.save(path)


def make_split(folder: Path, n_real: int, n_fake: int, seed: int, size: int = 256) -> None:
    """real/ and fake/ folders holding random-noise PNGs."""
    rng = np.random.default_rng(seed)
    for label, count in (('real', n_real), ('fake', n_fake)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            write_image(folder / label / f'{label}_{index:03d}.png', rng, size=size)


def script_env() -> dict[str, str]:
    """The environment project scripts run in from tests: the project importable, 2 threads."""
    return {**os.environ, 'PYTHONPATH': str(PROJECT_ROOT), 'OMP_NUM_THREADS': '2',
            'XCEPTION_WEIGHTS': 'none'}


def run_script(script: str, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a project script with the test interpreter; fail with its output if it fails."""
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / script), *args], cwd=cwd,
                            env=script_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f'{script} failed:\n{result.stdout}\n{result.stderr}'
    return result
