"""LIME (fmd.explain): the map's shape and determinism, a toy model whose answer is known, the command line
(faces-explain) and the comparison figure. Tiny models built here, small num_samples: no data needed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fmd.core import cli
from fmd.data.presets import NORMALIZE_MEAN, NORMALIZE_STD
from fmd.explain import cli as explain_cli
from fmd.explain import compare, lime_map
from helpers import PROJECT_ROOT, script_command, script_env, untrained_checkpoints


def normalised(pixels: torch.Tensor) -> torch.Tensor:
    """A 3xHxW image in [0, 1] normalised like TRANSFORM_TEST."""
    return (pixels - torch.tensor(NORMALIZE_MEAN).view(3, 1, 1)) / torch.tensor(NORMALIZE_STD).view(3, 1, 1)


def noise_image(size: int = 64, seed: int = 0) -> torch.Tensor:
    return normalised(torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed)))


def tiny_model() -> nn.Module:
    """A small convolutional detector with fixed (seeded) weights, for any image size."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 2)).eval()


class LeftHalfTexture(nn.Module):
    """A toy detector: its fake logit grows with the texture energy (mean square of the normalised pixels)
    of the image's left half and ignores the right half. LIME fills a switched-off superpixel with its
    mean colour, which removes its texture: only left superpixels can lower P(fake)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        energy = images[..., :images.shape[-1] // 2].pow(2).mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(energy), 3 * (energy - 1.0)], dim=1)


def test_noise_still_gets_superpixels() -> None:
    # SLIC alone returns one segment on pixel noise; segment_face then asks for compact cells
    rgb = np.random.default_rng(0).random((64, 64, 3))
    assert lime_map.segment_face(rgb, 16).max() + 1 >= 4


def test_the_map_is_an_hxw_float32_painting_of_the_superpixel_weights() -> None:
    image, model = noise_image(), tiny_model()
    weight_map = lime_map.lime_map(image, model, num_samples=20)
    assert weight_map.shape == (64, 64) and weight_map.dtype == np.float32
    explanation = lime_map.explain(image, model, num_samples=20)
    assert np.array_equal(explanation.weight_map, weight_map)
    assert explanation.segments.min() == 0 and len(explanation.weights) == explanation.segments.max() + 1
    assert np.array_equal(weight_map, explanation.weights[explanation.segments])
    assert explanation.probabilities.shape == (2,) and explanation.probabilities.sum() == pytest.approx(1)


def test_the_same_seed_gives_the_same_map_and_another_seed_another() -> None:
    image, model = noise_image(), tiny_model()
    first = lime_map.lime_map(image, model, num_samples=20, seed=3)
    assert np.array_equal(first, lime_map.lime_map(image, model, num_samples=20, seed=3))
    assert not np.array_equal(first, lime_map.lime_map(image, model, num_samples=20, seed=4))


def test_the_model_keeps_its_mode_and_its_device() -> None:
    model = tiny_model().train()
    lime_map.lime_map(noise_image(32), model, num_samples=10)
    assert model.training


def test_lime_weighs_the_half_the_model_looks_at() -> None:
    image = noise_image(64, seed=1)
    explanation = lime_map.explain(image, LeftHalfTexture(), num_samples=150, seed=0, n_segments=16)
    columns = np.broadcast_to(np.arange(64), (64, 64))
    segments = explanation.segments
    left = [i for i in range(len(explanation.weights)) if columns[segments == i].max() < 32]
    right = [i for i in range(len(explanation.weights)) if columns[segments == i].min() >= 32]
    assert len(left) >= 3 and len(right) >= 3
    left_weights, right_weights = explanation.weights[left], explanation.weights[right]
    assert left_weights.min() > 0
    assert left_weights.min() > 3 * np.abs(right_weights).max()
    assert not set(explanation.top_segments(len(left))) & set(right)


def test_the_command_lines_restate_the_explainers_defaults() -> None:
    # cli and compare spell the defaults out so that --help need not import torch; they must not drift.
    assert explain_cli.DEFAULT_NUM_SAMPLES == compare.DEFAULT_NUM_SAMPLES == lime_map.DEFAULT_NUM_SAMPLES
    assert explain_cli.DEFAULT_SEGMENTS == lime_map.DEFAULT_SEGMENTS


# --- faces-explain -------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def explain_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(an untrained SimpleNet checkpoint, a 300x200 JPEG face stand-in)."""
    folder = tmp_path_factory.mktemp('explain')
    checkpoint = untrained_checkpoints(folder, ('SimpleNet',))['SimpleNet']
    image = folder / 'face.jpg'
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(image)
    return checkpoint, image


def run_explain(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*script_command('fmd.explain'), *map(str, args)], cwd=cwd, env=script_env(),
                          capture_output=True, text=True, timeout=300)


def test_the_cli_writes_the_figure_and_prints_p_fake(explain_inputs: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    checkpoint, image = explain_inputs
    result = run_explain(image, '--checkpoint', checkpoint, '--out', tmp_path / 'explained',
                         '--num-samples', '10', '--no-progress', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    figure = tmp_path / 'explained' / 'face_lime.png'
    assert figure.is_file() and Image.open(figure).size[0] > 500
    assert f'wrote {figure}' in result.stdout and 'resized to 256x256' in result.stdout
    p_fake = float(result.stdout.strip().splitlines()[-1].removeprefix('P(fake) = '))
    assert 0 <= p_fake <= 1
    assert not list((tmp_path / 'explained').glob('.*.tmp'))


@pytest.mark.parametrize('bad', ['image', 'checkpoint'])
def test_an_unreadable_image_or_checkpoint_is_one_line_and_exit_1(
        bad: str, explain_inputs: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, image = explain_inputs
    if bad == 'image':
        image, message = tmp_path / 'missing.png', 'error: Cannot read image'
    else:
        checkpoint, message = tmp_path / 'broken.pt', 'is not a readable checkpoint'
        checkpoint.write_bytes(b'not a checkpoint')
    result = run_explain(image, '--checkpoint', checkpoint, '--out', tmp_path / 'o', '--num-samples', '10',
                         cwd=tmp_path)
    assert result.returncode == cli.EXIT_ERROR == 1
    assert 'Traceback' not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert not (tmp_path / 'o').exists()


@pytest.mark.parametrize('args, message', [
    (['x.png'], 'the following arguments are required: --checkpoint'),
    (['x.png', '--checkpoint', 'c.pt', '--num-samples', '3'], '--num-samples must be at least 10, got 3'),
    (['x.png', '--checkpoint', 'c.pt', '--num-samples', '0'], 'must be an integer >= 1, got 0'),
    (['x.png', '--checkpoint', 'c.pt', '--out', 'figure.png'], '--out figure.png: --out is a folder'),
])
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str,
                                           capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.run_cli(explain_cli.main, args)
    assert stop.value.code == cli.EXIT_USAGE == 2
    error = capsys.readouterr().err
    assert message in error and 'Traceback' not in error


@pytest.mark.parametrize('module', ['fmd.explain', 'fmd.explain.compare'])
def test_help_answers_before_torch_is_imported(module: str) -> None:
    code = (f'import runpy, sys; sys.argv = [{module!r}, "--help"]\n'
            f'try:\n    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)\n'
            'except SystemExit as stop:\n    assert stop.code in (0, None), stop.code\n'
            'heavy = {"torch", "torchvision", "matplotlib", "sklearn", "skimage", "lime"}\n'
            'print(sorted({m.split(".")[0] for m in sys.modules} & heavy), file=sys.stderr)')
    result = subprocess.run([sys.executable, '-c', code], cwd=PROJECT_ROOT, env=script_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: ') and '--checkpoint' in result.stdout
    assert result.stderr.strip().splitlines()[-1] == '[]'


# --- the comparison figure -----------------------------------------------------------------------

def test_ciplab_part_codes_name_the_replaced_parts() -> None:
    assert compare.replaced_parts('test/fake/easy_101_0011.png') == ('nose', 'mouth')
    assert compare.replaced_parts('hard_7_1100.jpg') == ('left eye', 'right eye')
    assert compare.replaced_parts('mid_3_0000.png') == ()
    assert compare.replaced_parts('00012.png') is None and compare.replaced_parts('mid_3_012.png') is None


def test_the_faces_are_drawn_from_the_seed_those_called_fake_first() -> None:
    p_fakes = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3])
    chosen = compare.choose_fakes(p_fakes, 0.5, 3, seed=0)
    assert sorted(chosen) == [0, 2, 4] and chosen == compare.choose_fakes(p_fakes, 0.5, 3, seed=0)
    assert set(compare.choose_fakes(p_fakes, 0.5, 4, seed=1)) > {0, 2, 4}
    orders = {tuple(compare.choose_fakes(p_fakes, 0.5, 3, seed=s)) for s in range(6)}
    assert len(orders) > 1
    assert len(compare.choose_fakes(p_fakes, 0.5, 10, seed=0)) == 6


def test_the_comparison_figure_is_drawn_with_and_without_a_mask_head(tmp_path: Path) -> None:
    from fmd.data.landmarks import Landmarks, write_landmarks
    from fmd.models.mask_head import MASK_HEAD_KEY, MASK_LAYERS_KEY, build_mask_head

    rng = np.random.default_rng(0)
    dataset = tmp_path / 'ciplab'
    for relative in ('test/real/real_1.png', 'test/fake/easy_1_0011.png', 'test/fake/mid_2_1000.png'):
        (dataset / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(dataset / relative)
    points = rng.uniform(60, 200, (68, 2)).astype(np.float32)
    write_landmarks(Landmarks(points={'test/fake/easy_1_0011.png': points},
                              sha256={'test/fake/easy_1_0011.png': '0'}), dataset / 'landmarks.npz')
    plain = untrained_checkpoints(tmp_path, ('SimpleNet',))['SimpleNet']
    saved = torch.load(plain, weights_only=True)
    from fmd.core.registry import build_model

    masked = build_mask_head(build_model('SimpleNet', pretrained=False))
    with_head = tmp_path / 'masked.pt'
    torch.save({**saved, MASK_HEAD_KEY: masked.head.state_dict(), MASK_LAYERS_KEY: list(masked.layers)},
               with_head)
    for checkpoint, out in ((with_head, tmp_path / 'with'), (plain, tmp_path / 'without')):
        path = compare.main(['--checkpoint', str(checkpoint), '--data', str(dataset), '--count', '2',
                             '--num-samples', '10', '--out', str(out), '--no-progress'])
        assert path == out / compare.FIGURE_NAME and path.is_file()
    for fake in (dataset / 'test' / 'fake').iterdir():
        fake.unlink()
    with pytest.raises(ValueError, match='fake has no images'):
        compare.main(['--checkpoint', str(plain), '--data', f'{dataset}:test', '--out', str(tmp_path / 'x')])
