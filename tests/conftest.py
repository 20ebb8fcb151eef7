"""Shared fixtures: tiny on-disk datasets in the course layout, made fresh for every test session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

# Never look for ImageNet weights or touch the network from a test.
os.environ['XCEPTION_WEIGHTS'] = 'none'
torch.set_num_threads(2)

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


@pytest.fixture(scope='session')
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both datasets, all three splits, 256x256 PNGs, some grayscale/RGBA, a stray .DS_Store."""
    root = tmp_path_factory.mktemp('data')
    for dataset_index, (dataset, counts) in enumerate(TINY_COUNTS.items()):
        for split_index, split in enumerate(('train', 'val', 'test')):
            folder = root / dataset / split
            make_split(folder, counts['real'], counts['fake'], seed=10 * dataset_index + split_index)
            (folder / 'real' / '.DS_Store').write_bytes(b'\x00\x01junk')
    rng = np.random.default_rng(99)
    write_image(root / 'fakes_dataset' / 'train' / 'real' / 'real_001.png', rng, mode='L')
    write_image(root / 'fakes_dataset' / 'train' / 'fake' / 'fake_001.png', rng, mode='RGBA')
    return root


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run inside an empty folder so out/, checkpoints/ and figures/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_script(script: str, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a project script with the test interpreter; fail with its output if it fails."""
    env = {**os.environ, 'PYTHONPATH': str(PROJECT_ROOT), 'OMP_NUM_THREADS': '2'}
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / script), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f'{script} failed:\n{result.stdout}\n{result.stderr}'
    return result


@pytest.fixture(scope='session')
def trained_runs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where train_main.py trained SimpleNet for one epoch on each tiny dataset.

    It holds out/<dataset>_SimpleNet_Adam.json and checkpoints/<dataset>_SimpleNet_Adam.pt.
    """
    workspace = tmp_path_factory.mktemp('runs')
    for dataset in TINY_COUNTS:
        run_script('train_main.py', '-d', dataset, '-m', 'SimpleNet', '-e', '1', '-b', '4',
                   '--data-root', str(data_root), '--workers', '0', '--no-progress',
                   cwd=workspace)
    return workspace
