"""Self-blended training fakes: landmarks, the blend itself, the training set and train_main --fakes."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import distance_transform_edt

from fmd.data import image_ops
from fmd.data.image_ops import sharpen_kernel
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
    INNER_FACE,
    PART_POINTS,
    WHOLE_FACE,
    blend_mask,
    choose_parts,
    displacement_field,
    hull_mask,
    odd_side,
    part_points,
    self_blend,
    unblended,
    working_side,
)
from fmd.data.training_fakes import RealFacesDataset, SelfBlendDataset, describe
from helpers import FACE_CENTRE, FACE_SIZE, PROJECT_ROOT, make_split, pasted, script_env


def toy_landmarks(rng: np.random.Generator) -> np.ndarray:
    """68 points scattered over the middle of a 256x256 image (not a face: the hulls are what count)."""
    return rng.uniform(70, 186, (68, 2)).astype(np.float32)


def noise_face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (256, 256, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- the blend

# Every whole-image change and the lower working resolution off: what is left is the blend itself.
BARE = replace(DEFAULT_SETTINGS, low_res_probability=0.0, jitter_probability=0.0, blur_probability=0.0,
               noise_probability=0.0, jpeg_probability=0.0)


@pytest.mark.parametrize('seed', range(8))
def test_outside_the_mask_the_fake_is_the_real_byte_for_byte(seed: int) -> None:
    face, points = noise_face(seed), toy_landmarks(np.random.default_rng(100 + seed))
    pair = self_blend(face, points, np.random.default_rng(seed), BARE)
    assert pair.fake.dtype == pair.real.dtype == np.uint8 and pair.fake.shape == face.shape
    assert pair.mask.shape == (256, 256) and pair.mask.dtype == np.float32
    outside = pair.mask == 0
    assert outside.any() and (~outside).any()
    np.testing.assert_array_equal(pair.fake[outside], pair.real[outside])
    assert np.abs(pair.fake.astype(int) - pair.real)[~outside].sum() > 0  # inside, something changed
    assert pair.mask.min() >= 0 and pair.mask.max() <= 1


def test_the_change_goes_to_the_source_or_to_the_real_host_face() -> None:
    face, points = noise_face(1), toy_landmarks(np.random.default_rng(2))
    to_source = self_blend(face, points, np.random.default_rng(3), replace(BARE, source_probability=1.0))
    np.testing.assert_array_equal(to_source.real, face)  # the host is the face itself
    to_target = self_blend(face, points, np.random.default_rng(3), replace(BARE, source_probability=0.0))
    assert not np.array_equal(to_target.real, face)  # the host (the pair's real) was changed
    outside = to_target.mask == 0
    np.testing.assert_array_equal(to_target.fake[outside], to_target.real[outside])
    unchanged = sum(np.array_equal(self_blend(face, points, np.random.default_rng(s), BARE).real, face)
                    for s in range(120))
    assert 36 <= unchanged <= 84  # source_probability 1/2: 120 draws within ~4.4 sd of 60


@pytest.mark.parametrize('step', ['jpeg', 'noise', 'blur', 'jitter'])
def test_whole_image_changes_are_the_same_for_both_images_of_a_pair(step: str) -> None:
    """Each change, alone and certain, leaves real and fake equal wherever it cannot see the mask: in
    the 16x16 JPEG blocks with no mask next to none with a mask (the decoder's chroma upsampling reads
    the neighbouring block), beyond the blur kernel; noise and colour pixel by pixel."""
    import cv2

    face, points = noise_face(4), toy_landmarks(np.random.default_rng(5))
    settings = replace(BARE, **{f'{step}_probability': 1.0})
    pair = self_blend(face, points, np.random.default_rng(6), settings)
    bare = self_blend(face, points, np.random.default_rng(6), BARE)
    assert not np.array_equal(pair.real, bare.real)  # the change happened
    support = (pair.mask > 0).astype(np.uint8)
    if step == 'jpeg':
        blocks = cv2.dilate(support.reshape(16, 16, 16, 16).any(axis=(1, 3)).astype(np.uint8),
                            np.ones((3, 3), np.uint8))
        untouched = np.kron(blocks, np.ones((16, 16), np.uint8)) == 0
    elif step == 'blur':
        reach = int(np.ceil(4 * settings.blur_sigma_range[1])) + 1  # OpenCV's float kernel: 4 sigma a side
        untouched = cv2.dilate(support, np.ones((2 * reach + 1,) * 2, np.uint8)) == 0
    else:
        untouched = support == 0
    assert untouched.sum() > 1000
    np.testing.assert_array_equal(pair.fake[untouched], pair.real[untouched])


def test_low_resolution_pairs_are_upsampled_faces() -> None:
    """With the lower working side certain, the real is the face resized down and back: above the
    working side's Nyquist frequency it keeps under a tenth of the noise face's energy there (the
    upsampling's images are all that is left)."""
    face, points = noise_face(7), toy_landmarks(np.random.default_rng(8))
    settings = replace(BARE, low_res_probability=1.0, source_probability=1.0, low_res_side=(96, 128))

    def high_share(image: np.ndarray, cutoff: float) -> float:
        grey = image.astype(np.float64).mean(axis=2)
        power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
        f = np.fft.fftfreq(256)
        radius = np.maximum(np.abs(f)[:, None], np.abs(f)[None, :])
        return power[radius > cutoff].sum() / power.sum()

    for seed in range(4):
        side, _ = working_side(256, np.random.default_rng(seed), settings)
        assert 96 <= side <= 128
        pair = self_blend(face, points, np.random.default_rng(seed), settings)
        cutoff = 0.5 * side / 256 + 0.05  # cycles per pixel of the 256 px face
        assert high_share(face, cutoff) > 0.3
        assert high_share(pair.real, cutoff) < 0.1 * high_share(face, cutoff)


def test_every_draw_stays_in_its_range() -> None:
    """Record what each image operation is called with over many pairs: every value within its
    BlendSettings range, and each optional step taken about as often as its probability says."""
    calls: dict[str, list] = {name: [] for name in ('jpeg', 'gaussian_blur', 'downscale', 'sharpen',
                                                     'brightness_contrast', 'saturation', 'rgb_shift')}
    originals = {name: getattr(image_ops, name) for name in calls}

    def recorder(name):
        def record(image, *args):
            calls[name].append(args)
            return originals[name](image, *args)
        return record

    face, points, n = noise_face(9), toy_landmarks(np.random.default_rng(10)), 300
    with pytest.MonkeyPatch.context() as patch:
        for name in calls:
            patch.setattr(image_ops, name, recorder(name))
        sides, ratios = [], []
        for seed in range(n):
            side, _ = working_side(256, np.random.default_rng(seed))
            sides.append(side)
            pair = self_blend(face, points, np.random.default_rng(seed))
            ratios.append(float(pair.mask.max()))
    qualities = [q for (q,) in calls['jpeg']][::2]  # whole-image steps run on both images of a pair
    assert all(40 <= q <= 100 for q in qualities) and 0.4 * n < len(qualities) < 0.6 * n
    blurs = [sigma for (sigma,) in calls['gaussian_blur']][::2]
    assert all(0.4 <= b <= 1.5 for b in blurs) and 0.1 * n < len(blurs) < 0.3 * n
    assert {f for (f,) in calls['downscale']} == {2, 4}
    assert len(calls['downscale']) + len(calls['sharpen']) == n  # one of the two in every pair
    assert all(0.2 <= a <= 0.5 and 0.5 <= b <= 1.0 for a, b in calls['sharpen'])
    # brightness-contrast: one call per pair (the change, +-0.1), plus the jitter's (+-0.3)
    changes = calls['brightness_contrast']
    assert all(-0.3 <= b <= 0.3 and -0.3 <= c <= 0.3 for b, c in changes)
    assert sum(abs(b) <= 0.1 and abs(c) <= 0.1 for b, c in changes) >= n
    assert all(0.7 <= f <= 1.3 for (f,) in calls['saturation'])
    assert all(np.abs(shift).max() <= 20 for (shift,) in calls['rgb_shift'])
    low = [side for side in sides if side != 256]
    assert all(96 <= side <= 224 for side in low) and 0.4 * n < len(low) < 0.6 * n
    # the peak is 1 x the ratio; resizing back can shave a narrow part's peak by under 1%
    assert all(any(0.99 * ratio <= r <= ratio + 1e-6 for ratio in (0.25, 0.5, 0.75, 1.0)) for r in ratios)
    assert 0.38 * n < sum(r > 0.99 for r in ratios) < 0.62 * n  # ratio 1 is 3 of the 6 choices


@pytest.mark.parametrize('seed', range(10))
def test_the_mask_lies_within_the_bound_of_the_chosen_landmarks_hull(seed: int) -> None:
    points = toy_landmarks(np.random.default_rng(seed))
    mask, parts = blend_mask(points, (256, 256), np.random.default_rng(seed))
    hull = hull_mask([part_points(points, part) for part in parts], (256, 256))
    distance = distance_transform_edt(hull == 0)  # px from the nearest hull pixel (scipy, not cv2)
    move = np.hypot(0.03 * 256, 0.015 * 256)
    scale = (1 / 0.95 - 1) * np.hypot(128, 128)
    bound = move + scale + 4.0 + (25 // 2 + 1) / 0.75 + 2.0  # shift, scale, wobble, blur, rounding
    assert DEFAULT_SETTINGS.mask_bound() == pytest.approx(bound)
    assert distance[mask > 0].max() <= bound
    assert parts in ((WHOLE_FACE,), (INNER_FACE,)) or set(parts) <= set(PART_POINTS)


def test_the_bound_is_tight_enough_to_mean_something() -> None:
    """Across seeds the move and blur do reach beyond the hull, by more than a third of the bound."""
    reaches = []
    for seed in range(20):
        points = toy_landmarks(np.random.default_rng(seed))
        mask, parts = blend_mask(points, (256, 256), np.random.default_rng(seed))
        hull = hull_mask([part_points(points, part) for part in parts], (256, 256))
        reaches.append(distance_transform_edt(hull == 0)[mask > 0].max())
    assert max(reaches) > DEFAULT_SETTINGS.mask_bound() / 3


def test_the_wobble_never_moves_a_pixel_further_than_elastic_max() -> None:
    fields = [displacement_field((256, 256), np.random.default_rng(seed)) for seed in range(20)]
    assert max(np.abs(f).max() for f in fields) <= 4.0
    assert max(np.abs(f).max() for f in fields) > 2.0  # control points move up to 3 px


def test_odd_kernel_sides_cover_the_range() -> None:
    sides = {odd_side(np.random.default_rng(seed), (5, 25)) for seed in range(400)}
    assert sides == set(range(5, 26, 2))


def test_image_operations_by_hand() -> None:
    kernel = sharpen_kernel(0.5, 1.0)  # 0.5 identity + 0.5 [[-1,-1,-1],[-1,9,-1],[-1,-1,-1]]
    np.testing.assert_allclose(kernel, [[-0.5, -0.5, -0.5], [-0.5, 5.0, -0.5], [-0.5, -0.5, -0.5]])
    flat = np.full((8, 8, 3), 100, np.float32)
    np.testing.assert_allclose(image_ops.sharpen(flat, 0.5, 1.0), flat)  # kernel sums to 1
    np.testing.assert_allclose(image_ops.brightness_contrast(flat, 0.1, -0.2), 100 * 0.8 + 25.5)
    ramp = np.repeat(np.arange(4, dtype=np.float32)[None, :, None] * 10, 4, axis=0).repeat(3, axis=2)
    small = image_ops.downscale(ramp, 2)[0, :, 0]  # nearest keeps columns 0 and 2: 0 and 20
    assert small[0] == 0 and small[-1] == 20  # bilinear back up: ends hold the kept values
    np.testing.assert_array_equal(image_ops.saturation(np.array([[[200, 100, 0]]], np.float32), 0.0),
                                  np.full((1, 1, 3), 0.299 * 200 + 0.587 * 100, np.float32))


def test_an_unpaired_image_with_every_change_off_is_itself() -> None:
    face = noise_face(11)
    np.testing.assert_array_equal(unblended(face, np.random.default_rng(0), BARE), face)
    assert not np.array_equal(unblended(face, np.random.default_rng(0),
                                        replace(BARE, jpeg_probability=1.0)), face)


def test_same_generator_state_same_bytes_and_another_seed_another_blend() -> None:
    face, points = noise_face(0), toy_landmarks(np.random.default_rng(1))
    first = self_blend(face, points, np.random.default_rng(7))
    again = self_blend(face, points, np.random.default_rng(7))
    other = self_blend(face, points, np.random.default_rng(8))
    assert first.fake.tobytes() == again.fake.tobytes() and first.mask.tobytes() == again.mask.tobytes()
    assert first.real.tobytes() == again.real.tobytes()
    assert first.fake.tobytes() != other.fake.tobytes()


def test_regions_are_the_whole_face_the_inner_face_or_subsets_of_the_parts() -> None:
    seen = [choose_parts(np.random.default_rng(s)) for s in range(400)]
    whole = sum(parts == (WHOLE_FACE,) for parts in seen)
    inner = sum(parts == (INNER_FACE,) for parts in seen)
    assert 120 <= whole <= 200  # probability 0.4: 400 draws land within ~4 sd of 160
    assert 80 <= inner <= 160   # probability 0.3: within ~4 sd of 120
    subsets = {parts for parts in seen if parts not in ((WHOLE_FACE,), (INNER_FACE,))}
    assert all(set(parts) <= set(PART_POINTS) for parts in subsets)
    assert len(subsets) >= 10  # of the 15 non-empty subsets of 4 parts
    points = np.arange(136, dtype=np.float32).reshape(68, 2)
    np.testing.assert_array_equal(part_points(points, INNER_FACE), points[17:68])
    np.testing.assert_array_equal(part_points(points, 'nose'), points[27:36])


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match='square uint8 HxWx3'):
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
    # a real with landmarks is the real of its pair; the others go through the same draws alone
    real_1 = np.asarray(Image.open(dataset / 'train' / 'real' / 'real_001.png'))
    pair_1 = self_blend(real_1, landmarks['train/real/real_001.png'], np.random.default_rng([0, 0, 1]))
    np.testing.assert_array_equal(both[1][0].permute(1, 2, 0).numpy(), pair_1.real)
    np.testing.assert_array_equal(both[3][0].permute(1, 2, 0).numpy(), pair_1.fake)
    real_0 = np.asarray(Image.open(dataset / 'train' / 'real' / 'real_000.png'))
    np.testing.assert_array_equal(both[0][0].permute(1, 2, 0).numpy(),
                                  unblended(real_0, np.random.default_rng([0, 0, 0])))
    fake_1 = np.asarray(Image.open(dataset / 'train' / 'fake' / 'fake_001.png'))  # base index 3 + 1
    np.testing.assert_array_equal(both[6][0].permute(1, 2, 0).numpy(),
                                  unblended(fake_1, np.random.default_rng([0, 0, 4])))


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
    expected = self_blend(face, landmarks['train/real/real_001.png'], np.random.default_rng([0, 2, 1]))
    np.testing.assert_array_equal(blended(0, 2).permute(1, 2, 0).numpy(), expected.fake)


def test_the_pair_cache_changes_no_byte(tmp_path: Path) -> None:
    """Pairs kept for their other half or made again after falling out of the cache are the same."""
    dataset = tiny_dataset(tmp_path, n_real=4, without=0)
    landmarks = read_landmarks(dataset / LANDMARKS_FILE).points
    order = [5, 0, 7, 2, 1, 4, 6, 3]

    def items(cache: int) -> list[bytes]:
        data = SelfBlendDataset(RealFacesDataset(str(dataset / 'train'), 256), landmarks, 'train', 0)
        data.PAIR_CACHE = cache
        return [data[i][0].numpy().tobytes() for i in order]

    assert items(1) == items(256)


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
    for fake in (dataset / 'test' / 'fake').iterdir():
        fake.unlink()  # a dataset of real faces only: its test split has no fake to score
    work = tmp_path / 'work'
    work.mkdir()
    result = subprocess.run(
        [sys.executable, '-c', AUDIT_RUNNER, '--data-root', str(tmp_path / 'data'), '-d', 'tiny',
         '-m', 'SimpleNet', '-e', '1', '--batch-size', '4', '--fakes', 'self-blend', '--workers', '1',
         '--select-by', 'val_auc', '--class-weights', 'balanced', '--no-progress'],
        cwd=work, env=script_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'OPENED A FAKE' not in result.stderr
    assert 'Images: train 5, val 5, test 3' in result.stdout
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
