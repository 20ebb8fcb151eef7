"""fmd.evaluate.cues: image statistics a detector may follow, checked against hand-made images."""
from __future__ import annotations

import numpy as np
import pytest

from fmd.evaluate.cues import (
    STATISTICS,
    blockiness,
    colour,
    cue_auc,
    face_sharpness_ratio,
    follows,
    image_statistics,
    noise_sigma,
    sharpness,
    upscale_factor,
)


def grey_image(values: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(np.rint(values), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_sharpness_of_one_bright_pixel_by_hand() -> None:
    """A 100-level dot on a 0 background, 10x10: the 8x8 interior Laplacian holds -400 once and 100
    at its four neighbours, zeros elsewhere: mean 0, variance (400^2 + 4 * 100^2) / 64 = 3125."""
    values = np.zeros((10, 10))
    values[5, 5] = 100
    assert sharpness(grey_image(values)) == pytest.approx(np.log10(3125.0))


@pytest.mark.parametrize('sigma', [2.0, 5.0, 10.0])
def test_noise_estimate_recovers_the_sigma_of_added_noise(sigma: float) -> None:
    values = 128 + np.random.default_rng(0).normal(0, sigma, (256, 256))
    assert noise_sigma(grey_image(values)) == pytest.approx(sigma, rel=0.05)


def test_upscale_factor_is_1_for_white_noise_and_grows_with_upsampling() -> None:
    import cv2

    noise = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert upscale_factor(noise) == 1.0
    double = upscale_factor(cv2.resize(noise, (192, 192), interpolation=cv2.INTER_CUBIC))
    triple = upscale_factor(cv2.resize(noise, (288, 288), interpolation=cv2.INTER_CUBIC))
    assert 1.4 < double < triple and triple > 2.0


def test_blockiness_sees_an_8_px_grid() -> None:
    rng = np.random.default_rng(2)
    base = 128 + rng.normal(0, 4, (256, 256))
    grid = base.copy()
    grid[:, 7::8] += 12  # a step at every 8th column and row, as JPEG's block edges
    grid[7::8, :] += 12
    assert blockiness(grey_image(grid)) > 10 * blockiness(grey_image(base))


def test_colour_by_hand() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = (255, 0, 0)      # saturation 255, value 255
    image[0, 1] = (100, 100, 100)  # grey: saturation 0, value 100
    image[1, 0] = (200, 100, 50)   # saturation 255 * 150 / 200 = 191.25, value 200
    saturation, value = colour(image)  # [1, 1] is black: 0, 0
    assert saturation == pytest.approx((255 + 0 + 191.25 + 0) / 4)
    assert value == pytest.approx((255 + 100 + 200 + 0) / 4)


def test_face_sharpness_ratio_is_positive_for_a_sharp_face_on_a_smooth_frame() -> None:
    rng = np.random.default_rng(3)
    values = np.full((128, 128), 120.0)
    values[32:96, 32:96] += rng.normal(0, 20, (64, 64))
    values += rng.normal(0, 1, values.shape)
    square = np.array([(32, 32), (95, 32), (95, 95), (32, 95)] * 17, np.float32)  # 68 points
    assert face_sharpness_ratio(grey_image(values), square) > 2.0
    assert np.isnan(face_sharpness_ratio(grey_image(values), None))


def test_every_statistic_is_reported() -> None:
    image = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    stats = image_statistics(image)
    assert tuple(stats) == STATISTICS
    assert np.isnan(stats['face_sharpness_ratio'])
    assert all(np.isfinite(stats[name]) for name in STATISTICS[:-1])


def test_cue_auc_and_follows_at_their_extremes() -> None:
    values, labels = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1])
    assert cue_auc(values, labels) == 1.0 and cue_auc(-values, labels) == 0.0
    assert np.isnan(cue_auc(values, np.zeros(4, int)))
    assert follows(values, values ** 3) == pytest.approx(1.0)
    assert follows(values, -values) == pytest.approx(-1.0)
    assert np.isnan(follows(values, np.ones(4)))
