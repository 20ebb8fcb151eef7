"""Simple image statistics a detector may follow instead of the manipulation, and how strongly it does.

A detector trained on self-blends can learn whatever separates its training fakes from its reals: a
sharper face, a missing JPEG grid, a colour cast. If real fakes differ from real faces the other way
on that statistic, the detector ranks them as more real than the reals (an AUC below 0.5). These
statistics of one uint8 RGB image make that visible (`bench/diagnose_cues.py` draws them):

- `sharpness`: log10 of the variance of the grey image's Laplacian.
- `noise`: Immerkaer's estimate of the noise's standard deviation (levels), from the Laplacian-of-
  Laplacian residual: pure texture-free noise of sigma s gives s.
- `upscale`: 1 / the share of the Nyquist band that holds 99% of the image's (Hann-windowed) AC
  energy: about 2 for an image upsampled 2x, about 1 for a sharp photo.
- `blockiness`: how much of the horizontal and vertical gradient energy repeats with an 8 px period
  (JPEG's block grid) or any period from 7 to 11 px (a grid resampled by a crop), as the peak over
  that band of the gradient profile's power spectrum divided by its median.
- `saturation`, `brightness`: mean HSV saturation and value (0-255).
- `face_sharpness_ratio`: log10 of the Laplacian variance inside the landmarks' face hull over the
  variance outside it (only with landmarks): a pasted face is often smoother or sharper than its frame.
"""
from __future__ import annotations

import numpy as np

STATISTICS = ('sharpness', 'noise', 'upscale', 'blockiness', 'saturation', 'brightness',
              'face_sharpness_ratio')
ENERGY_SHARE = 0.99
GRID_PERIODS = (7.0, 11.0)  # px


def grey(image: np.ndarray) -> np.ndarray:
    """float64 luma (ITU-R BT.601) of a uint8 HxWx3 RGB image."""
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def laplacian(values: np.ndarray) -> np.ndarray:
    """The 4-neighbour Laplacian of a 2-D array on its interior ((H-2)x(W-2))."""
    return (values[:-2, 1:-1] + values[2:, 1:-1] + values[1:-1, :-2] + values[1:-1, 2:]
            - 4 * values[1:-1, 1:-1])


def sharpness(image: np.ndarray) -> float:
    """log10 of the variance of the grey image's Laplacian."""
    return float(np.log10(laplacian(grey(image)).var() + 1e-12))


def noise_sigma(image: np.ndarray) -> float:
    """Immerkaer (1996): sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|,
    N = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]."""
    g = grey(image)
    residual = (g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
                - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
                + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:])
    height, width = g.shape
    return float(np.sqrt(np.pi / 2) * np.abs(residual).sum() / (6 * (width - 2) * (height - 2)))


def upscale_factor(image: np.ndarray) -> float:
    """1 / (the radius, as a share of Nyquist, within which ENERGY_SHARE of the AC energy lies)."""
    g = grey(image)
    height, width = g.shape
    window = np.outer(np.hanning(height), np.hanning(width))
    power = np.abs(np.fft.fft2((g - g.mean()) * window)) ** 2
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :]
    radius = np.maximum(np.abs(fy), np.abs(fx)) / 0.5  # 1 = Nyquist along the larger axis
    order = np.argsort(radius, axis=None)
    cumulative = np.cumsum(power.ravel()[order])
    if cumulative[-1] <= 0:
        return float('nan')
    reach = radius.ravel()[order][np.searchsorted(cumulative, ENERGY_SHARE * cumulative[-1])]
    return float(1.0 / max(reach, 1.0 / min(height, width)))


def blockiness(image: np.ndarray) -> float:
    """Peak / median power of the mean |gradient| profiles (columns and rows) over periods 7-11 px."""
    g = grey(image)
    scores = []
    for profile in (np.abs(np.diff(g, axis=1)).mean(axis=0), np.abs(np.diff(g, axis=0)).mean(axis=1)):
        power = np.abs(np.fft.rfft(profile - profile.mean())) ** 2
        freqs = np.fft.rfftfreq(len(profile))
        band = (freqs >= 1 / GRID_PERIODS[1]) & (freqs <= 1 / GRID_PERIODS[0])
        median = np.median(power[1:])
        scores.append(power[band].max() / median if median > 0 else 0.0)
    return float(np.mean(scores))


def colour(image: np.ndarray) -> tuple[float, float]:
    """(mean saturation, mean value) in HSV, 0-255: saturation = 255 (max - min) / max per pixel."""
    pixels = image.astype(np.float64)
    high, low = pixels.max(axis=2), pixels.min(axis=2)
    saturation = np.where(high > 0, 255 * (high - low) / np.maximum(high, 1e-12), 0.0)
    return float(saturation.mean()), float(high.mean())


def face_sharpness_ratio(image: np.ndarray, landmarks: np.ndarray | None) -> float:
    """log10(Laplacian variance inside the face hull / outside it); nan without landmarks."""
    if landmarks is None:
        return float('nan')
    from fmd.data.self_blend import hull_mask

    inside = hull_mask([landmarks], image.shape[:2])[1:-1, 1:-1].astype(bool)
    response = laplacian(grey(image))
    if inside.all() or not inside.any():
        return float('nan')
    return float(np.log10((response[inside].var() + 1e-12) / (response[~inside].var() + 1e-12)))


def image_statistics(image: np.ndarray, landmarks: np.ndarray | None = None) -> dict[str, float]:
    """Every statistic of STATISTICS for one uint8 HxWx3 RGB image (nan where it cannot be had)."""
    saturation, brightness = colour(image)
    return {'sharpness': sharpness(image), 'noise': noise_sigma(image), 'upscale': upscale_factor(image),
            'blockiness': blockiness(image), 'saturation': saturation, 'brightness': brightness,
            'face_sharpness_ratio': face_sharpness_ratio(image, landmarks)}


def cue_auc(values: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of the statistic alone as a P(fake) (0.5: no cue; below: fakes lower); nan if undefined."""
    from sklearn.metrics import roc_auc_score

    keep = np.isfinite(values)
    if len(set(labels[keep].tolist())) < 2:
        return float('nan')
    return float(roc_auc_score(labels[keep], values[keep]))


def follows(scores: np.ndarray, values: np.ndarray) -> float:
    """Spearman rank correlation between a detector's P(fake) and a statistic (nan if undefined)."""
    from scipy.stats import spearmanr

    keep = np.isfinite(values) & np.isfinite(scores)
    if keep.sum() < 3 or np.ptp(values[keep]) == 0 or np.ptp(scores[keep]) == 0:
        return float('nan')
    return float(spearmanr(scores[keep], values[keep]).statistic)
