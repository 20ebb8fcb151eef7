"""Self-blended training fakes: landmarks, the blend itself, the training set and train_main --fakes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import distance_transform_edt

from fmd.data.landmarks import (
    LANDMARKS_FILE,
    Landmarks,
    add_landmarks,
    face_landmarks,
    read_landmarks,
    write_landmarks,
)
from fmd.data.self_blend import (
    DEFAULT_SETTINGS,
    PART_POINTS,
    WHOLE_FACE,
    blend_mask,
    hull_mask,
    part_points,
    self_blend,
)
from fmd.data.training_fakes import RealFacesDataset, SelfBlendDataset, describe
from helpers import FACE_CENTRE, FACE_SIZE, PROJECT_ROOT, make_split, pasted, script_env


def toy_landmarks(rng: np.random.Generator) -> np.ndarray:
    """68 points scattered over the middle of a 256x256 image (not a face: the hulls are what count)."""
    return rng.uniform(70, 186, (68, 2)).astype(np.float32)


def noise_face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (256, 256, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- the blend

@pytest.mark.parametrize('seed', range(12))
def test_outside_the_mask_the_fake_is_the_face_byte_for_byte(seed: int) -> None:
    face, points = noise_face(seed), toy_landmarks(np.random.default_rng(100 + seed))
    fake, mask = self_blend(face, points, np.random.default_rng(seed))
    assert fake.dtype == np.uint8 and fake.shape == face.shape and mask.shape == (256, 256)
    outside = mask == 0
    assert outside.any() and (~outside).any()
    np.testing.assert_array_equal(fake[outside], face[outside])
    assert np.abs(fake.astype(int) - face)[~outside].sum() > 0  # inside, something changed
    assert mask.min() >= 0 and mask.max() <= 1


@pytest.mark.parametrize('seed', range(20))
def test_the_mask_lies_within_the_bound_of_the_chosen_landmarks_hull(seed: int) -> None:
    points = toy_landmarks(np.random.default_rng(seed))
    mask, parts = blend_mask(points, (256, 256), np.random.default_rng(seed))
    hull = hull_mask([part_points(points, part) for part in parts], (256, 256))
    distance = distance_transform_edt(hull == 0)  # px from the nearest hull pixel (scipy, not cv2)
    reach = distance[mask > 0].max()
    bound = np.sqrt(2) * (3.0 + 10) + 10 + 1.0  # jitter 3, blur radius <= 10, dilation <= 10, rounding
    assert DEFAULT_SETTINGS.mask_bound() == pytest.approx(bound)
    assert reach <= bound
    assert parts == (WHOLE_FACE,) or set(parts) <= set(PART_POINTS)


def test_the_bound_is_tight_enough_to_mean_something() -> None:
    """Across seeds the blur and dilation do reach beyond the hull, by more than half the bound."""
    reaches = []
    for seed in range(20):
        points = toy_landmarks(np.random.default_rng(seed))
        mask, parts = blend_mask(points, (256, 256), np.random.default_rng(seed))
        hull = hull_mask([part_points(points, part) for part in parts], (256, 256))
        reaches.append(distance_transform_edt(hull == 0)[mask > 0].max())
    assert max(reaches) > DEFAULT_SETTINGS.mask_bound() / 2


def test_same_generator_state_same_bytes_and_another_seed_another_blend() -> None:
    face, points = noise_face(0), toy_landmarks(np.random.default_rng(1))
    first, mask_a = self_blend(face, points, np.random.default_rng(7))
    again, mask_b = self_blend(face, points, np.random.default_rng(7))
    other, _ = self_blend(face, points, np.random.default_rng(8))
    assert first.tobytes() == again.tobytes() and mask_a.tobytes() == mask_b.tobytes()
    assert first.tobytes() != other.tobytes()


def test_parts_are_whole_face_or_subsets_in_the_ciplab_proportions() -> None:
    seen = [blend_mask(toy_landmarks(np.random.default_rng(s)), (256, 256), np.random.default_rng(s))[1]
            for s in range(200)]
    whole = sum(parts == (WHOLE_FACE,) for parts in seen)
    assert 70 <= whole <= 130  # probability 1/2: 200 draws land within ~4 sd of 100
    subsets = {parts for parts in seen if parts != (WHOLE_FACE,)}
    assert len(subsets) >= 10  # of the 15 non-empty subsets of 4 parts


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match='uint8 HxWx3'):
        self_blend(np.zeros((8, 8), np.uint8), np.zeros((68, 2)), np.random.default_rng(0))
    with pytest.raises(ValueError, match='68x2 landmarks'):
        self_blend(noise_face(0), np.zeros((5, 2)), np.random.default_rng(0))


# ----------------------------------------------------------------------------- landmarks

def test_landmarks_of_a_real_face_fall_inside_its_known_box() -> None:
    offset = (40, 30)
    image, _ = pasted(offset)
    points = face_landmarks(image)
    assert points is not None and points.shape == (68, 2) and points.dtype == np.float32
    x0, y0 = FACE_CENTRE[0] - FACE_SIZE / 2 + offset[0], FACE_CENTRE[1] - FACE_SIZE / 2 + offset[1]
    slack = 0.16 * FACE_SIZE  # the box was drawn by eye, brows to chin; the jaw line may sit outside
    assert points[:, 0].min() >= x0 - slack and points[:, 0].max() <= x0 + FACE_SIZE + slack
    assert points[:, 1].min() >= y0 - slack and points[:, 1].max() <= y0 + FACE_SIZE + slack
    nose_tip = points[30]
    centre = np.array(FACE_CENTRE, dtype=np.float32) + offset
    assert np.linalg.norm(nose_tip - centre) < 0.25 * FACE_SIZE


def crop_of_astronaut(size: int = 256) -> np.ndarray:
    image, (cx, cy) = pasted((40, 30))
    side = round(FACE_SIZE * 1.3 * 1.3)
    left, top = round(cx - side / 2), round(cy - side / 2)
    crop = Image.fromarray(image[top:top + side, left:left + side])
    return np.asarray(crop.resize((size, size), Image.Resampling.BICUBIC))


def test_add_landmarks_lists_faceless_crops_and_reuses_finished_work(tmp_path: Path) -> None:
    dataset = tmp_path / 'faces'
    for split in ('train', 'val'):
        (dataset / split / 'real').mkdir(parents=True)
        (dataset / split / 'fake').mkdir(parents=True)
    Image.fromarray(crop_of_astronaut()).save(dataset / 'train' / 'real' / 'astronaut.png')
    Image.fromarray(noise_face(3)).save(dataset / 'val' / 'fake' / 'noise.png')
    (dataset / 'val' / 'real' / 'broken.png').write_bytes(b'not a png')
    landmarks, errors = add_landmarks(dataset, workers=1, progress=False, log=lambda line: None)
    assert set(landmarks.points) == {'train/real/astronaut.png'}
    assert set(landmarks.missing) == {'val/fake/noise.png'}
    assert set(errors) == {'val/real/broken.png'}
    stored = read_landmarks(dataset / LANDMARKS_FILE)
    np.testing.assert_array_equal(stored.points['train/real/astronaut.png'],
                                  landmarks.points['train/real/astronaut.png'])
    assert stored.missing == landmarks.missing
    messages: list[str] = []
    again, _ = add_landmarks(dataset, workers=1, progress=False, log=messages.append)
    assert messages == [f'landmarks: reusing 2 unchanged crops of {dataset / LANDMARKS_FILE}']
    assert again.sha256 == landmarks.sha256


def test_landmarks_command_exits_0_and_names_the_faceless_crop(tmp_path: Path) -> None:
    dataset = tmp_path / 'faces'
    (dataset / 'test' / 'real').mkdir(parents=True)
    Image.fromarray(noise_face(4)).save(dataset / 'test' / 'real' / 'noise.png')
    result = subprocess.run([sys.executable, '-m', 'fmd.data.landmarks', str(dataset), '--no-progress'],
                            cwd=PROJECT_ROOT, env=script_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'no face found: test/real/noise.png' in result.stdout
    assert 'landmarks: 0 faces, 1 without a face, 0 unreadable' in result.stdout
    empty = subprocess.run([sys.executable, '-m', 'fmd.data.landmarks', str(tmp_path / 'nowhere')],
                           cwd=PROJECT_ROOT, env=script_env(), capture_output=True, text=True, timeout=120)
    assert empty.returncode == 1
    expected = f'error: dataset folder {tmp_path / "nowhere"} does not exist'
    assert empty.stderr.strip().splitlines() == [expected]


def test_a_corrupt_landmarks_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / LANDMARKS_FILE).write_bytes(b'garbage')
    with pytest.raises(ValueError, match='is not a landmarks file'):
        read_landmarks(tmp_path / LANDMARKS_FILE)


# ----------------------------------------------------------------------------- the training set

def tiny_dataset(root: Path, n_real: int = 3, n_fake: int = 2, without: int = 1) -> Path:
    """root/tiny/{train,val,test}/{real,fake} noise PNGs, landmarks for all reals but `without`."""
    dataset = root / 'tiny'
    for seed, split in enumerate(('train', 'val', 'test')):
        make_split(dataset / split, n_real, n_fake, seed=seed)
    rng = np.random.default_rng(0)
    points = {f'{split}/real/real_{i:03d}.png': toy_landmarks(rng)
              for split in ('train', 'val') for i in range(without, n_real)}
    write_landmarks(Landmarks(points=points, sha256={k: 'x' for k in points}), dataset / LANDMARKS_FILE)
    return dataset


def test_labels_and_counts_per_epoch(tmp_path: Path) -> None:
    dataset = tiny_dataset(tmp_path)
    landmarks = read_landmarks(dataset / LANDMARKS_FILE).points
    reals = SelfBlendDataset(RealFacesDataset(str(dataset / 'train'), 256), landmarks, 'train', seed=0)
    assert len(reals) == 3 + 2 and reals.class_counts() == (3, 2)
    assert [reals[i][1] for i in range(len(reals))] == [0, 0, 0, 1, 1]
    assert describe(reals, 'train') == 'train: 3 real + 2 self-blends (1 reals without landmarks not blended)'
    from faces_dataset import FacesDataset

    both = SelfBlendDataset(FacesDataset(str(dataset / 'train'), decoder='tensor'), landmarks, 'train', 0)
    assert len(both) == 3 + 2 + 2 and both.class_counts() == (3, 4)
    assert [both[i][1] for i in range(len(both))] == [0, 0, 0, 1, 1, 1, 1]
    real_pixels = np.asarray(Image.open(dataset / 'train' / 'real' / 'real_001.png'))
    fake_pixels = np.asarray(Image.open(dataset / 'train' / 'fake' / 'fake_001.png'))
    np.testing.assert_array_equal(both[1][0].permute(1, 2, 0).numpy(), real_pixels)
    np.testing.assert_array_equal(both[6][0].permute(1, 2, 0).numpy(), fake_pixels)


def test_blends_change_every_epoch_and_repeat_for_the_same_seed(tmp_path: Path) -> None:
    dataset = tiny_dataset(tmp_path)
    landmarks = read_landmarks(dataset / LANDMARKS_FILE).points

    def blended(seed: int, epoch: int) -> torch.Tensor:
        data = SelfBlendDataset(RealFacesDataset(str(dataset / 'train'), 256), landmarks, 'train', seed)
        data.set_epoch(epoch)
        return data[3][0]

    assert torch.equal(blended(0, 1), blended(0, 1))
    assert not torch.equal(blended(0, 1), blended(0, 2))
    assert not torch.equal(blended(0, 1), blended(1, 1))
    face = np.asarray(Image.open(dataset / 'train' / 'real' / 'real_001.png'))
    expected, _ = self_blend(face, landmarks['train/real/real_001.png'], np.random.default_rng([0, 2, 1]))
    np.testing.assert_array_equal(blended(0, 2).permute(1, 2, 0).numpy(), expected)


AUDIT_RUNNER = '''
import os, runpy, sys
def hook(event, args):
    if event == 'open' and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if any(part in path for part in ('/train/fake', '/val/fake')):
            os.write(2, f'OPENED A FAKE: {path}\\n'.encode())
sys.addaudithook(hook)
sys.argv = ['train_main.py', *sys.argv[1:]]
runpy.run_path(os.path.join(os.environ['PYTHONPATH'], 'train_main.py'), run_name='__main__')
'''


def test_self_blend_training_never_opens_a_training_or_validation_fake(tmp_path: Path) -> None:
    dataset = tiny_dataset(tmp_path / 'data')
    for fake in [*(dataset / 'train' / 'fake').iterdir(), *(dataset / 'val' / 'fake').iterdir()]:
        fake.write_bytes(b'unreadable on purpose')  # reading one would also fail the run
    work = tmp_path / 'work'
    work.mkdir()
    result = subprocess.run(
        [sys.executable, '-c', AUDIT_RUNNER, '--data-root', str(tmp_path / 'data'), '-d', 'tiny',
         '-m', 'SimpleNet', '-e', '1', '--batch-size', '4', '--fakes', 'self-blend', '--workers', '1',
         '--select-by', 'val_auc', '--class-weights', 'balanced', '--no-progress'],
        cwd=work, env=script_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'OPENED A FAKE' not in result.stderr
    assert 'Images: train 5, val 5, test 5' in result.stdout
    assert 'Model selection by val_auc on val reals and their self-blends' in result.stdout
    record = json.loads((work / 'out' / 'tiny+self-blend_SimpleNet_Adam.json').read_text())[-1]
    assert record['fakes'] == 'self-blend' and record['dataset'] == 'tiny'
    assert record['validation'] == 'val reals and their self-blends'
    assert record['class_weights'] == pytest.approx([5 / 6, 5 / 4])  # 5 items: 3 real, 2 blends
    checkpoint = torch.load(work / 'checkpoints' / 'tiny+self-blend_SimpleNet_Adam.pt', weights_only=True)
    assert checkpoint['fakes'] == 'self-blend' and checkpoint['dataset'] == 'tiny'
    assert not (work / 'checkpoints' / 'tiny_SimpleNet_Adam.pt').exists()  # the dataset run's own name


def test_fakes_self_blend_needs_landmarks_and_a_uint8_preset(tmp_path: Path, workdir: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    import train_main

    dataset = tiny_dataset(tmp_path / 'data')
    (dataset / LANDMARKS_FILE).unlink()
    common = ['--data-root', str(tmp_path / 'data'), '-d', 'tiny', '-e', '1', '--fakes', 'self-blend',
              '--no-progress']
    with pytest.raises(FileNotFoundError) as missing:
        train_main.main(common)
    assert str(missing.value) == (f'{dataset / LANDMARKS_FILE} does not exist: '
                                  f'run `python -m fmd.data.landmarks {dataset}` first')
    with pytest.raises(SystemExit) as usage:
        train_main.parse_args([*common, '--augment', 'forensic'])
    assert usage.value.code == 2 and 'use --augment assignment' in capsys.readouterr().err
