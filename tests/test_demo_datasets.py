"""Tests of the demo_data package and its command line fmd.demo_data.

Layout, manifest, reuse, atomicity, determinism, the building blocks (seeding, canvas, camera,
transposed convolution, face swap) and the quality bars the demo data must meet.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fmd.demo_data import build, camera, canvas, faces, forgeries, layout, manifest, render, seeding

ROOT = Path(__file__).resolve().parent.parent
TINY_TOTAL = 2 * 3 * (4 + 2) // 2 + 3 * (3 + 3)  # fakes 3x(4 real + 2 fake), synthetic 3x(3 + 3)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `tiny` scale generated once, in-process (workers=1)."""
    return build.generate_demo_datasets(tmp_path_factory.mktemp('tiny') / 'demo', 'tiny', seed=0,
                                        workers=1, progress=False)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plain_scene(**changes: object) -> faces.Scene:
    """A drawn scene with no offset, rotation or zoom unless `changes` say otherwise."""
    scene = faces.random_scene(seeding.keyed_rng(0, 'test scene'))
    return dataclasses.replace(scene, **{'offset_x': 0.0, 'offset_y': 0.0, 'rotation': 0.0,
                                         'zoom': 1.0, **changes})


# ----------------------------------------------------------------------------- scales and layout

def test_scales_follow_course_proportions() -> None:
    assert layout.SCALES['small']['fakes_dataset'] == {
        'train': {'real': 600, 'fake': 300}, 'val': {'real': 200, 'fake': 100},
        'test': {'real': 200, 'fake': 100}}
    assert layout.SCALES['small']['synthetic_dataset'] == {
        'train': {'real': 200, 'fake': 200}, 'val': {'real': 75, 'fake': 75},
        'test': {'real': 75, 'fake': 75}}
    assert layout.SCALES['starter']['fakes_dataset'] == layout.SCALES['small']['fakes_dataset']
    assert layout.SCALES['starter']['synthetic_dataset']['train'] == {'real': 80, 'fake': 80}
    assert layout.SCALES['starter']['synthetic_dataset']['val'] == {'real': 30, 'fake': 30}
    assert layout.DEFAULT_SCALE == 'starter'
    assert layout.SCALES['full']['fakes_dataset']['test'] == {'real': 1400, 'fake': 700}
    assert layout.SCALES['tiny']['fakes_dataset']['train'] == {'real': 4, 'fake': 2}
    assert layout.SCALES['tiny']['synthetic_dataset']['val'] == {'real': 3, 'fake': 3}
    for counts in layout.SCALES.values():
        for split in layout.SPLITS:
            fakes, synthetic = counts['fakes_dataset'][split], counts['synthetic_dataset'][split]
            assert fakes['real'] == 2 * fakes['fake']
            assert synthetic['real'] == synthetic['fake']


def test_image_keys_and_paths() -> None:
    keys = list(layout.image_keys(layout.SCALES['tiny']))
    assert len(keys) == len(set(keys)) == TINY_TOTAL
    assert keys[:5] == [('fakes_dataset', 'train', 'real', i) for i in range(4)] + [
        ('fakes_dataset', 'train', 'fake', 0)]
    assert layout.relative_path('synthetic_dataset', 'val', 'fake', 7) == (
        'synthetic_dataset/val/fake/00007.png')


def test_bad_scale_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"'huge'.*tiny, quick, starter, small, medium, full"):
        layout.resolve_scale('huge')
    with pytest.raises(ValueError, match='celebrity_dataset'):
        layout.resolve_scale({'celebrity_dataset': {}})
    with pytest.raises(ValueError, match='fakes_dataset/train'):
        layout.resolve_scale({'fakes_dataset': {'train': {'real': 2}}})
    with pytest.raises(ValueError, match='at least one'):
        layout.resolve_scale({'fakes_dataset': {'train': {'real': 2, 'fake': 0}}})
    assert layout.resolve_scale({'fakes_dataset': {'test': {'real': 2, 'fake': 1}}}) == (
        'custom', {'fakes_dataset': {'test': {'real': 2, 'fake': 1}}})


# ----------------------------------------------------------------------------- build and manifest

def test_layout_images_and_manifest(tiny: Path) -> None:
    found = json.loads((tiny / 'MANIFEST.json').read_text())
    assert (found['version'], found['seed'], found['scale']) == (manifest.GENERATOR_VERSION, 0, 'tiny')
    assert found['counts']['fakes_dataset/test/fake'] == 2
    assert found['counts']['synthetic_dataset/train/real'] == 3
    pngs = sorted(p for p in tiny.rglob('*') if p.is_file() and p.name != 'MANIFEST.json')
    assert len(pngs) == TINY_TOTAL == 36
    assert {p.relative_to(tiny).as_posix(): _sha(p) for p in pngs} == found['files']
    for key, number in found['counts'].items():
        assert sorted(q.name for q in (tiny / key).iterdir()) == [f'{i:05d}.png' for i in range(number)]
    for path in pngs[::5]:
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ('PNG', 'RGB', (256, 256))
    assert manifest.read_manifest(tiny) == found
    assert manifest.manifest_digest(tiny) == _sha(tiny / 'MANIFEST.json')
    assert manifest.read_manifest(tiny / 'missing') is None
    assert manifest.manifest_digest(tiny / 'missing') is None


def test_complete_output_is_reused(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    before = {p: p.stat().st_mtime_ns for p in tiny.rglob('*.png')}
    assert build.generate_demo_datasets(tiny, 'tiny', seed=0, workers=1) == tiny
    assert 'reusing' in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in tiny.rglob('*.png')} == before


def test_same_seed_same_bytes_any_workers_other_seed_differs(tiny: Path, tmp_path: Path) -> None:
    torch.set_num_threads(2)  # the generator must not depend on the caller's torch threads
    again = build.generate_demo_datasets(tmp_path / 'again', 'tiny', seed=0, workers=2,
                                         progress=False)
    assert torch.get_num_threads() == 2
    assert (again / 'MANIFEST.json').read_bytes() == (tiny / 'MANIFEST.json').read_bytes()
    other = build.generate_demo_datasets(tmp_path / 'other', 'tiny', seed=1, workers=1,
                                         progress=False)
    files0, files1 = manifest.read_manifest(tiny)['files'], manifest.read_manifest(other)['files']
    assert files0.keys() == files1.keys()
    assert not set(files0.values()) & set(files1.values())


def test_damaged_output_is_rebuilt(tiny: Path, tmp_path: Path) -> None:
    copy = tmp_path / 'demo'
    shutil.copytree(tiny, copy)
    victim = copy / 'synthetic_dataset/val/fake/00001.png'
    victim.write_bytes(b'not a png')
    build.generate_demo_datasets(copy, 'tiny', seed=0, workers=1, progress=False)
    assert _sha(victim) == manifest.read_manifest(tiny)['files']['synthetic_dataset/val/fake/00001.png']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['demo']  # no temp folder left behind


def test_output_of_another_generator_version_is_rebuilt(tiny: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / 'demo'
    shutil.copytree(tiny, copy)
    old = {**manifest.read_manifest(tiny), 'version': '1.0.0'}
    (copy / 'MANIFEST.json').write_text(manifest.manifest_text(old))
    build.generate_demo_datasets(copy, 'tiny', seed=0, workers=1)
    assert 'reusing' not in capsys.readouterr().err
    assert (copy / 'MANIFEST.json').read_bytes() == (tiny / 'MANIFEST.json').read_bytes()


def test_interrupted_run_leaves_no_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_write = build.write_image

    def failing_write(job: build.ImageJob) -> tuple[str, str]:
        calls.append(job)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real_write(job)

    monkeypatch.setattr(build, 'write_image', failing_write)
    with pytest.raises(KeyboardInterrupt):
        build.generate_demo_datasets(tmp_path / 'demo', 'tiny', workers=1, progress=False)
    assert len(calls) == 10
    assert list(tmp_path.iterdir()) == []


def test_stale_build_of_a_dead_run_is_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True,
                          text=True, check=True)
    stale = tmp_path / f'.demo.tmp-{dead.stdout.strip()}'
    (stale / 'fakes_dataset').mkdir(parents=True)
    build.generate_demo_datasets(tmp_path / 'demo', {'fakes_dataset': {'val': {'real': 1, 'fake': 1}}},
                                 workers=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['demo']


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / 'thesis.txt').write_text('precious')
    with pytest.raises(ValueError, match=r'thesis\.txt'):
        build.generate_demo_datasets(tmp_path, 'tiny', workers=1, progress=False)
    assert (tmp_path / 'thesis.txt').read_text() == 'precious'


def test_cli_help_bad_workers_and_re_exports() -> None:
    script = [sys.executable, '-m', 'fmd.demo_data']
    done = subprocess.run([*script, '--help'], capture_output=True, text=True,
                          check=True)
    help_text = ' '.join(done.stdout.split())  # argparse wraps lines at the terminal width
    assert '--scale' in help_text and 'small: fakes 1500, synthetic 700' in help_text
    assert 'default: starter' in help_text
    bad = subprocess.run([*script, '--workers', '0'], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and '--workers must be at least 1' in bad.stderr
    from fmd.demo_data import cli
    assert cli.generate_demo_datasets is build.generate_demo_datasets
    assert (cli.manifest_digest, cli.read_manifest) == (manifest.manifest_digest, manifest.read_manifest)
    assert (cli.CLASSES, cli.DATASETS, cli.SCALES) == (layout.CLASSES, layout.DATASETS, layout.SCALES)


# ----------------------------------------------------------------------------- building blocks

def test_keyed_rng_depends_only_on_seed_and_key() -> None:
    first = seeding.keyed_rng(3, 'a', 1).random(4)
    seeding.keyed_rng(3, 'b').random(1000)  # other streams in between change nothing
    np.testing.assert_array_equal(seeding.keyed_rng(3, 'a', 1).random(4), first)
    assert not np.allclose(seeding.keyed_rng(4, 'a', 1).random(4), first)
    assert not np.allclose(seeding.keyed_rng(3, 'a', 2).random(4), first)


def test_no_identity_in_two_splits() -> None:
    for dataset, splits in layout.SCALES['small'].items():
        ids = {}
        for split, classes in splits.items():
            keys = [seeding.identity_keys(0, dataset, split, c, i)
                    for c in layout.CLASSES for i in range(classes[c])]
            ids[split] = {k for pair in keys for k in pair if k is not None}
            swaps = sum(source is not None for _, source in keys)
            assert swaps == (classes['fake'] if dataset == 'fakes_dataset' else 0)
        assert not ids['train'] & ids['val'] and not ids['train'] & ids['test']
        assert not ids['val'] & ids['test']
        assert len(ids['val']) >= sum(splits['val'].values())  # distinct faces, not a few reused


def test_same_identity_key_same_person() -> None:
    key = ('fakes_dataset', 'test', 12345)
    one, two = faces.random_identity(0, key), faces.random_identity(0, key)
    for field in dataclasses.fields(faces.Identity):
        np.testing.assert_array_equal(getattr(one, field.name), getattr(two, field.name))
    other = faces.random_identity(0, ('fakes_dataset', 'test', 12346))
    assert other.head_half_width != one.head_half_width
    assert one.mouth_level == one.eye_level + one.nose_length + one.mouth_below_nose


def test_canvas_coordinates_and_soft_edges() -> None:
    grid = canvas.Canvas(4, _plain_scene())
    np.testing.assert_allclose(grid.x[0], [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(grid.y[:, 0], [-0.75, -0.25, 0.25, 0.75])
    assert grid.pixel == 0.5
    np.testing.assert_allclose(grid.inside(np.array([-0.5, 0.0, 0.25, 0.5])), [1, 0.5, 0, 0])
    turned = canvas.Canvas(4, _plain_scene(rotation=math.pi / 2, zoom=2.0))
    np.testing.assert_allclose(turned.x, grid.y / 2, atol=1e-7)
    np.testing.assert_allclose(turned.y, -grid.x / 2, atol=1e-7)
    disc = grid.ellipse(0.25, 0.25, 0.5, 0.5)  # the pixel centre at (0.25, 0.25) is its centre
    assert disc[2, 2] == 1 and disc[0, 0] == 0


def test_paint_blends_only_under_the_mask() -> None:
    image = np.full((3, 4, 3), 0.2, dtype=np.float32)
    mask = np.zeros((3, 4), dtype=np.float32)
    mask[1, 2] = 0.5
    canvas.paint(image, mask, np.array([1.0, 0.2, 0.0]))
    expected = np.full((3, 4, 3), 0.2, dtype=np.float32)
    expected[1, 2] = [0.6, 0.2, 0.1]
    np.testing.assert_allclose(image, expected, atol=1e-7)
    canvas.paint(image, np.zeros((3, 4)), 1.0)  # an empty mask is a no-op
    np.testing.assert_allclose(image, expected, atol=1e-7)


def test_to_uint8_rounds_and_clips() -> None:
    pixels = camera.to_uint8(np.array([-0.1, 0.0, 0.3 / 255, 0.7 / 255, 0.5, 1.0, 1.5]))
    assert pixels.dtype == np.uint8
    assert pixels.tolist() == [0, 0, 0, 1, 128, 255, 255]


def test_transposed_convolution_on_hand_computed_examples() -> None:
    def run(image: np.ndarray, weight: np.ndarray, stride: int, padding: int) -> np.ndarray:
        layer = forgeries.UpsamplingLayer(np.asarray(weight, dtype=np.float32), stride, padding)
        return forgeries.transposed_convolution(np.asarray(image, dtype=np.float32), layer)

    # Stride 2 with a 2x2 kernel of ones repeats every pixel as a 2x2 block.
    blocks = run(np.array([[1, 2], [3, 4]])[..., None], np.ones((1, 1, 2, 2)), 2, 0)
    assert blocks[..., 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    # The bilinear kernel (1D taps 1/4, 3/4, 3/4, 1/4), padding 1: in 1D, [a, b] becomes
    # [3a/4, 3a/4 + b/4, a/4 + 3b/4, 3b/4], so [4, 8] -> [3, 5, 7, 6] and [1, 2] -> [.75, 1.25, 1.75, 1.5];
    # a separable image u v^T goes to the outer product of the two.
    taps = np.array([0.25, 0.75, 0.75, 0.25])
    smooth = run(np.outer([4, 8], [1, 2])[..., None], np.outer(taps, taps)[None, None], 2, 1)
    np.testing.assert_allclose(smooth[..., 0], np.outer([3, 5, 7, 6], [0.75, 1.25, 1.75, 1.5]))
    # Weights are (in, out, k, k): out_o = sum_i in_i * w[i, o]; channels last in and out.
    mixed = run(np.dstack([np.ones((2, 3)), np.full((2, 3), 10.0)]),
                np.array([[1.0, 2.0], [3.0, 4.0]])[..., None, None], 1, 0)
    assert mixed.shape == (2, 3, 2)
    np.testing.assert_array_equal(mixed[..., 0], 31)
    np.testing.assert_array_equal(mixed[..., 1], 42)


def test_upsampling_layers_keep_colours_and_leave_a_period_2_fingerprint() -> None:
    layers = forgeries.upsampling_layers(0)
    assert [(layer.weight.shape, layer.stride, layer.padding) for layer in layers] == [
        ((3, 3, 4, 4), 2, 1), ((3, 3, 3, 3), 1, 1)]
    assert all(layer.weight.dtype == np.float32 for layer in layers)
    np.testing.assert_allclose(layers[0].weight.sum((2, 3)), 4 * np.eye(3), atol=1e-5)
    np.testing.assert_allclose(layers[1].weight.sum((2, 3)), np.eye(3), atol=1e-5)
    colour = np.array([0.2, 0.5, 0.8], dtype=np.float32)
    flat = forgeries.transposed_convolution(np.broadcast_to(colour, (8, 8, 3)).copy(), layers[0])
    assert flat.shape == (16, 16, 3)
    inner = flat[1:15, 1:15]  # the border pixels get only some of the kernel taps
    np.testing.assert_allclose(inner[:-2], inner[2:], atol=1e-6)  # periodic, period 2 down
    np.testing.assert_allclose(inner[:, :-2], inner[:, 2:], atol=1e-6)  # and across
    phases = inner[:2, :2].reshape(4, 3)
    np.testing.assert_allclose(phases.mean(0), colour, atol=1e-6)  # the colour survives
    spread = phases.max(0) - phases.min(0)
    assert np.all(spread > 1e-3) and np.all(spread < 0.05)  # a subtle fingerprint
    assert not np.allclose(forgeries.upsampling_layers(1)[0].weight, layers[0].weight)


def test_gan_like_image_is_full_size_and_restores_torch_threads() -> None:
    torch.set_num_threads(2)
    identity = faces.random_identity(0, ('synthetic_dataset', 'train', 1))
    image = forgeries.gan_like_image(identity, _plain_scene(), forgeries.upsampling_layers(0),
                                     seeding.keyed_rng(0, 'gan test'))
    assert image.shape == (layout.IMAGE_SIZE, layout.IMAGE_SIZE, 3)
    assert image.min() >= 0 and image.max() <= 1
    assert torch.get_num_threads() == 2


def test_face_swap_changes_the_inner_face_only() -> None:
    scene = _plain_scene(offset_y=0.06, zoom=1.3)
    target = faces.random_identity(0, ('fakes_dataset', 'train', 1))
    source = faces.random_identity(0, ('fakes_dataset', 'train', 2))
    swap = forgeries.face_swap(target, source, scene, seeding.keyed_rng(0, 'swap'))
    rng = seeding.keyed_rng(0, 'swap')  # the same stream: face_swap photographs the target first
    photo = np.clip(camera.camera_capture(render.render_face(target, scene, 256, rng), rng), 0, 1)
    for corner in (np.s_[:40, :40], np.s_[:40, -40:], np.s_[-40:, :40], np.s_[-40:, -40:]):
        np.testing.assert_array_equal(swap[corner], photo[corner])
    centre = np.s_[100:160, 98:158]  # eyes to mouth
    assert np.abs(swap[centre] - photo[centre]).mean() > 0.02


# ----------------------------------------------------------------------------- quality bars

def _images(root: Path, dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Float images (N, 256, 256, 3) in [0, 1] and labels (0 real, 1 fake) of one split."""
    images, labels = [], []
    for label, class_name in enumerate(layout.CLASSES):
        for path in sorted((root / dataset / split / class_name).glob('*.png')):
            images.append(np.asarray(Image.open(path), dtype=np.float32) / 255)
            labels.append(label)
    return np.stack(images), np.array(labels)


@pytest.fixture(scope='module')
def stats_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A custom scale big enough for a logistic-regression AUC: 48 + 24 images per class."""
    split = {'train': {'real': 48, 'fake': 48}, 'test': {'real': 24, 'fake': 24}}
    return build.generate_demo_datasets(tmp_path_factory.mktemp('stats') / 'demo',
                                        {d: split for d in layout.DATASETS}, seed=0, workers=2,
                                        progress=False)


@pytest.mark.parametrize('dataset', layout.DATASETS)
def test_colour_statistics_do_not_separate_the_classes(stats_data: Path, dataset: str) -> None:
    def features(split: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = _images(stats_data, dataset, split)
        return np.concatenate([images.mean((1, 2)), images.std((1, 2))], 1), labels

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(*features('train'))
    x_test, y_test = features('test')
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    assert auc <= 0.65


def test_synthetic_fakes_carry_a_periodic_fingerprint(stats_data: Path) -> None:
    """The mean spectrum of ConvT fakes peaks at the checkerboard frequency; that of reals does not."""
    images, labels = _images(stats_data, 'synthetic_dataset', 'train')
    grey = images.mean(3)
    spectrum = np.abs(np.fft.fft2(grey - grey.mean((1, 2), keepdims=True)))
    peaks = []
    for label in (0, 1):
        mean = spectrum[labels == label].mean(0)
        peaks.append(mean[128, 128] / np.median(mean[125:132, 125:132]))
    assert peaks[0] < 2 < 3 < peaks[1]


def test_face_swaps_leave_spatial_traces(stats_data: Path) -> None:
    """Fine detail in the centre (inner face) relative to the whole image separates face swaps."""
    def feature(split: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = _images(stats_data, 'fakes_dataset', split)
        grey = images.mean(3)
        lap = np.abs(4 * grey - np.roll(grey, 1, 1) - np.roll(grey, -1, 1)
                     - np.roll(grey, 1, 2) - np.roll(grey, -1, 2))
        centre = lap[:, 96:176, 88:168].mean((1, 2))
        return -np.log(centre / lap.mean((1, 2))), labels

    x, y = feature('test')
    assert roc_auc_score(y, x) >= 0.8
