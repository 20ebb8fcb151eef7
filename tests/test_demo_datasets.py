"""Tests of make_demo_datasets.py: layout, manifest, reuse, atomicity, determinism, quality bars."""
from __future__ import annotations

import hashlib
import json
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

import make_demo_datasets as demo

ROOT = Path(__file__).resolve().parent.parent
TINY_TOTAL = 2 * 3 * (4 + 2) // 2 + 3 * (3 + 3)  # fakes 3x(4 real + 2 fake), synthetic 3x(3 + 3)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `tiny` scale generated once, in-process (workers=1)."""
    return demo.generate_demo_datasets(tmp_path_factory.mktemp('tiny') / 'demo', 'tiny', seed=0,
                                       workers=1, progress=False)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_scales_follow_course_proportions() -> None:
    assert demo.SCALES['small']['fakes_dataset'] == {
        'train': {'real': 600, 'fake': 300}, 'val': {'real': 200, 'fake': 100},
        'test': {'real': 200, 'fake': 100}}
    assert demo.SCALES['small']['synthetic_dataset'] == {
        'train': {'real': 200, 'fake': 200}, 'val': {'real': 75, 'fake': 75},
        'test': {'real': 75, 'fake': 75}}
    assert demo.SCALES['full']['fakes_dataset']['test'] == {'real': 1400, 'fake': 700}
    assert demo.SCALES['tiny']['fakes_dataset']['train'] == {'real': 4, 'fake': 2}
    assert demo.SCALES['tiny']['synthetic_dataset']['val'] == {'real': 3, 'fake': 3}
    for counts in demo.SCALES.values():
        for split in demo.SPLITS:
            fakes, synthetic = counts['fakes_dataset'][split], counts['synthetic_dataset'][split]
            assert fakes['real'] == 2 * fakes['fake']
            assert synthetic['real'] == synthetic['fake']


def test_layout_images_and_manifest(tiny: Path) -> None:
    manifest = json.loads((tiny / 'MANIFEST.json').read_text())
    assert (manifest['version'], manifest['seed'], manifest['scale']) == (
        demo.GENERATOR_VERSION, 0, 'tiny')
    assert manifest['counts']['fakes_dataset/test/fake'] == 2
    assert manifest['counts']['synthetic_dataset/train/real'] == 3
    pngs = sorted(p for p in tiny.rglob('*') if p.is_file() and p.name != 'MANIFEST.json')
    assert len(pngs) == TINY_TOTAL == 36
    assert {p.relative_to(tiny).as_posix(): _sha(p) for p in pngs} == manifest['files']
    for key, n in manifest['counts'].items():
        assert sorted(q.name for q in (tiny / key).iterdir()) == [f'{i:05d}.png' for i in range(n)]
    for path in pngs[::5]:
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ('PNG', 'RGB', (256, 256))
    assert demo.read_manifest(tiny) == manifest
    assert demo.manifest_digest(tiny) == _sha(tiny / 'MANIFEST.json')
    assert demo.read_manifest(tiny / 'missing') is None
    assert demo.manifest_digest(tiny / 'missing') is None


def test_complete_output_is_reused(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    before = {p: p.stat().st_mtime_ns for p in tiny.rglob('*.png')}
    assert demo.generate_demo_datasets(tiny, 'tiny', seed=0, workers=1) == tiny
    assert 'reusing' in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in tiny.rglob('*.png')} == before


def test_same_seed_same_bytes_any_workers_other_seed_differs(tiny: Path, tmp_path: Path) -> None:
    again = demo.generate_demo_datasets(tmp_path / 'again', 'tiny', seed=0, workers=2,
                                        progress=False)
    assert (again / 'MANIFEST.json').read_bytes() == (tiny / 'MANIFEST.json').read_bytes()
    other = demo.generate_demo_datasets(tmp_path / 'other', 'tiny', seed=1, workers=1,
                                        progress=False)
    files0, files1 = demo.read_manifest(tiny)['files'], demo.read_manifest(other)['files']
    assert files0.keys() == files1.keys()
    assert not set(files0.values()) & set(files1.values())


def test_damaged_output_is_rebuilt(tiny: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / 'demo'
    shutil.copytree(tiny, copy)
    victim = copy / 'synthetic_dataset/val/fake/00001.png'
    victim.write_bytes(b'not a png')
    demo.generate_demo_datasets(copy, 'tiny', seed=0, workers=1, progress=False)
    assert _sha(victim) == demo.read_manifest(tiny)['files']['synthetic_dataset/val/fake/00001.png']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['demo']  # no temp folder left behind


def test_interrupted_run_leaves_no_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_write = demo._write_one

    def failing_write(job):
        calls.append(job)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real_write(job)

    monkeypatch.setattr(demo, '_write_one', failing_write)
    with pytest.raises(KeyboardInterrupt):
        demo.generate_demo_datasets(tmp_path / 'demo', 'tiny', workers=1, progress=False)
    assert len(calls) == 10
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / 'thesis.txt').write_text('precious')
    with pytest.raises(ValueError, match=r'thesis\.txt'):
        demo.generate_demo_datasets(tmp_path, 'tiny', workers=1, progress=False)
    assert (tmp_path / 'thesis.txt').read_text() == 'precious'


def test_bad_scale_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"'huge'.*tiny, quick, small, medium, full"):
        demo.resolve_scale('huge')
    with pytest.raises(ValueError, match='celebrity_dataset'):
        demo.resolve_scale({'celebrity_dataset': {}})
    with pytest.raises(ValueError, match='fakes_dataset/train'):
        demo.resolve_scale({'fakes_dataset': {'train': {'real': 2}}})
    with pytest.raises(ValueError, match='at least one'):
        demo.resolve_scale({'fakes_dataset': {'train': {'real': 2, 'fake': 0}}})
    assert demo.resolve_scale({'fakes_dataset': {'test': {'real': 2, 'fake': 1}}}) == (
        'custom', {'fakes_dataset': {'test': {'real': 2, 'fake': 1}}})


def test_cli_help_and_bad_workers() -> None:
    script = str(ROOT / 'make_demo_datasets.py')
    done = subprocess.run([sys.executable, script, '--help'], capture_output=True, text=True,
                          check=True)
    assert '--scale' in done.stdout and 'small' in done.stdout
    bad = subprocess.run([sys.executable, script, '--workers', '0'], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and '--workers must be at least 1' in bad.stderr


def test_no_identity_in_two_splits() -> None:
    for dataset, splits in demo.SCALES['small'].items():
        ids = {}
        for split, classes in splits.items():
            keys = [demo.identity_key(0, dataset, split, c, i)
                    for c in demo.CLASSES for i in range(classes[c])]
            ids[split] = {k for pair in keys for k in pair if k is not None}
            swaps = sum(source is not None for _, source in keys)
            assert swaps == (classes['fake'] if dataset == 'fakes_dataset' else 0)
        assert not ids['train'] & ids['val'] and not ids['train'] & ids['test']
        assert not ids['val'] & ids['test']
        assert len(ids['val']) >= sum(splits['val'].values())  # distinct faces, not a few reused


def test_conv_transpose_matches_torch() -> None:
    image = np.random.default_rng(0).random((10, 12, 3), dtype=np.float32)
    for weight, stride, padding in demo.gan_kernels(0):
        ours = demo.conv_transpose(image, weight, stride, padding)
        theirs = torch.nn.functional.conv_transpose2d(
            torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(weight),
            stride=stride, padding=padding)[0].permute(1, 2, 0).numpy()
        assert ours.shape == theirs.shape == (10 * stride, 12 * stride, 3)
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def _images(root: Path, dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Float images (N, 256, 256, 3) in [0, 1] and labels (0 real, 1 fake) of one split."""
    images, labels = [], []
    for label, class_name in enumerate(demo.CLASSES):
        for path in sorted((root / dataset / split / class_name).glob('*.png')):
            images.append(np.asarray(Image.open(path), dtype=np.float32) / 255)
            labels.append(label)
    return np.stack(images), np.array(labels)


@pytest.fixture(scope='module')
def stats_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A custom scale big enough for a logistic-regression AUC: 48 + 24 images per class."""
    split = {'train': {'real': 48, 'fake': 48}, 'test': {'real': 24, 'fake': 24}}
    return demo.generate_demo_datasets(tmp_path_factory.mktemp('stats') / 'demo',
                                       {d: split for d in demo.DATASETS}, seed=0, workers=2,
                                       progress=False)


@pytest.mark.parametrize('dataset', demo.DATASETS)
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
