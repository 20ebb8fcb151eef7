"""Helpers the tests share: tiny image folders in the course layout, running project scripts, and a
real face (skimage's astronaut) pasted on a canvas or moving through a video."""
from __future__ import annotations

import functools
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


def load_test_split_by_hand(root: Path, dataset: str = 'fakes_dataset') -> tuple[object, list[int]]:
    """<dataset>/test read with PIL and numpy (sorted real/*.png, then fake/*.png), normalised with
    the ImageNet mean and std: (Bx3x256x256 float tensor, labels)."""
    import torch

    from utils import NORMALIZE_MEAN, NORMALIZE_STD

    images, labels = [], []
    for label, folder in ((0, 'real'), (1, 'fake')):
        for path in sorted((root / dataset / 'test' / folder).glob('*.png')):
            pixels = np.asarray(Image.open(path).convert('RGB'), dtype=np.float32) / 255.0
            images.append((pixels - np.array(NORMALIZE_MEAN, dtype=np.float32))
                          / np.array(NORMALIZE_STD, dtype=np.float32))
            labels.append(label)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), labels


def untrained_checkpoints(folder: Path, names: tuple[str, ...] = ()) -> dict[str, Path]:
    """folder/<model>.pt of each registered model (or of `names`), untrained (seed 0; XceptionBased
    without ImageNet weights), saved as train_main.py saves them (`model` and `model_name`)."""
    import torch

    from fmd.core.registry import build_model, registered_models

    paths = {}
    for name in names or registered_models():
        torch.manual_seed(0)
        paths[name] = folder / f'{name}.pt'
        torch.save({'model': build_model(name, pretrained=False).state_dict(), 'model_name': name},
                   paths[name])
    return paths


def script_env() -> dict[str, str]:
    """The environment project scripts run in from tests: the project importable, 2 threads."""
    return {**os.environ, 'PYTHONPATH': str(PROJECT_ROOT), 'OMP_NUM_THREADS': '2',
            'XCEPTION_WEIGHTS': 'none'}


def script_command(script: str) -> list[str]:
    """How to start a project command: `train_main.py` (a top-level file) or `fmd.detect` (python -m)."""
    if script.endswith('.py'):
        return [sys.executable, str(PROJECT_ROOT / script)]
    return [sys.executable, '-m', script]


def run_script(script: str, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a project script with the test interpreter; fail with its output if it fails."""
    result = subprocess.run([*script_command(script), *args], cwd=cwd,
                            env=script_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f'{script} failed:\n{result.stdout}\n{result.stderr}'
    return result


# The astronaut photo (512x512) has one frontal face; by eye, from brows to chin and cheek to cheek,
# it spans x 175..272 and y 80..165: centre (223, 123), about 95 px across. Only its top 320 rows are
# used: dlib's HOG also fires weakly on the spacesuit's neck ring below (a face-sized false positive).
FACE_CENTRE = (223, 123)
FACE_SIZE = 95
CANVAS = (640, 400)


def one_line_exit(capsys, main, *args) -> tuple[int, str]:
    """run_cli(main, *args) in this process as the console scripts run it: (exit code, last stderr
    line), asserting no traceback; torch's thread count is restored (train_main.py sets it)."""
    import torch

    from fmd.core import cli

    threads = torch.get_num_threads()
    try:
        code = cli.run_cli(main, *args)
    except SystemExit as stop:  # sys.exit('error: ...') prints its message when the interpreter exits
        code = stop.code
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    if isinstance(code, str):
        return 1, code
    return code, err.strip().splitlines()[-1]


@functools.cache
def astronaut_top() -> np.ndarray:
    """The top 320 rows of skimage's astronaut photo (imported on first use: skimage is slow to load)."""
    from skimage.data import astronaut

    return astronaut()[:320]


def pasted(offset: tuple[int, int], scale: float = 1.0, canvas: tuple[int, int] = CANVAS,
           swap_channels: bool = False) -> tuple[np.ndarray, tuple[float, float]]:
    """The astronaut scaled and pasted at offset on a grey canvas, and where its face centre lands."""
    photo = Image.fromarray(astronaut_top())
    if scale != 1.0:
        photo = photo.resize((round(512 * scale), round(320 * scale)), Image.Resampling.BICUBIC)
    image = Image.new('RGB', canvas, (128, 128, 128))
    image.paste(photo, offset)
    pixels = np.asarray(image)
    if swap_channels:
        pixels = np.ascontiguousarray(pixels[:, :, ::-1])
    return pixels, (offset[0] + FACE_CENTRE[0] * scale, offset[1] + FACE_CENTRE[1] * scale)


def write_video(path: Path, frames: list[np.ndarray], fourcc: str = 'mp4v') -> None:
    """RGB frames written as a 10 fps video with OpenCV."""
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
