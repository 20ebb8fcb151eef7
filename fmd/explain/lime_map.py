"""LIME (Ribeiro et al., KDD 2016) for one face: how much each superpixel pushes the model to a class.

LIME cuts the face into superpixels, switches random subsets of them off (each filled with its own
mean colour, lime's default), scores every perturbed face with the model and fits a locally weighted
ridge regression of P(class) on the on/off pattern. A superpixel's coefficient is its weight: how
much P(class) drops when it is switched off. It needs only the model's outputs, no gradients, so it
treats every model alike, and it answers for whole regions of the face rather than single pixels.

Superpixels: SLIC (skimage) asked for DEFAULT_SEGMENTS compact cells, about 32x32 px on a 256x256 face,
the size of an eye with its brow (41-62 cells on demo and ciplab faces). lime's default, quickshift,
gives as many segments here (31-53) but of very uneven size (their size varies twice as much), takes
about 12x longer (0.29 s against 0.025 s a face on 2 cores) and its count cannot be asked for; SLIC's
cells are even, so every region of the face gets a weight of its own, and it draws no random numbers,
so only the perturbations depend on the seed.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fmd.core.batches import NORMALIZE_MEAN, NORMALIZE_STD, input_memory_format
from fmd.core.devices import model_device
from fmd.data.presets import unnormalize

# Perturbed faces per explanation, ~5 per superpixel: the weights of seeds 0 and 1 correlate 0.83-0.94 on
# demo fakes with BonusNet (100 samples: 0.45-0.75; 1000: 0.93-0.98, at 3x the time).
DEFAULT_NUM_SAMPLES = 300
DEFAULT_SEGMENTS = 64      # SLIC cells asked for (skimage returns about this many)
SLIC_COMPACTNESS = 10.0    # skimage's default for Lab colour: cells stay compact, still follow edges
DEFAULT_BATCH_SIZE = 32    # perturbed faces per model call
FAKE = 1                   # class index of "fake" (faces_dataset.CLASS_NAMES)


@dataclass(frozen=True)
class LimeExplanation:
    """One explanation: the painted map, the superpixels, their weights and the model's verdict."""

    weight_map: np.ndarray     # HxW float32: each pixel holds its superpixel's weight
    segments: np.ndarray       # HxW int64 superpixel ids 0..n-1
    weights: np.ndarray        # n float32: weight of superpixel i for target_class
    probabilities: np.ndarray  # the model's softmax on the unperturbed image, one per class
    target_class: int
    fit_score: float           # R^2 of the weighted ridge fit on the perturbations

    def top_segments(self, count: int) -> list[int]:
        """Ids of the `count` superpixels with the largest positive weights, largest first."""
        order = np.argsort(-self.weights, kind='stable')
        return [int(i) for i in order[:count] if self.weights[i] > 0]


def segment_face(rgb: np.ndarray, n_segments: int = DEFAULT_SEGMENTS) -> np.ndarray:
    """SLIC superpixels of an HxWx3 image in [0, 1], relabelled 0..n-1 (lime indexes its features so).

    On pixel noise SLIC's colour term wins and it returns a single segment; then it is asked again with
    a 10x and a 100x compactness, which turns its cells into a near-regular grid.
    """
    from skimage.segmentation import slic

    enough = min(n_segments, max(2, n_segments // 4))
    for compactness in (SLIC_COMPACTNESS, 10 * SLIC_COMPACTNESS, 100 * SLIC_COMPACTNESS):
        labels = slic(rgb, n_segments=n_segments, compactness=compactness, start_label=0)
        ids, relabelled = np.unique(labels, return_inverse=True)
        if len(ids) >= enough:
            break
    return relabelled.reshape(labels.shape).astype(np.int64)


def classifier_fn(model: nn.Module,
                  batch_size: int = DEFAULT_BATCH_SIZE) -> Callable[[np.ndarray], np.ndarray]:
    """lime's classifier: BxHxWx3 images in [0, 1] -> Bxclasses softmax probabilities (float64),
    normalised like TRANSFORM_TEST and scored under inference_mode on the model's device."""
    device, memory_format = model_device(model), input_memory_format(model)
    mean = torch.tensor(NORMALIZE_MEAN, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(NORMALIZE_STD, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def classify(images: np.ndarray) -> np.ndarray:
        scores = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
                batch = batch.to(device, torch.float32).permute(0, 3, 1, 2)
                batch = ((batch - mean) / std).contiguous(memory_format=memory_format)
                scores.append(torch.softmax(model(batch).float(), dim=1).double().cpu())
        return torch.cat(scores).numpy()

    return classify


@contextlib.contextmanager
def _lime_progress(show: bool) -> Iterator[None]:
    """lime 0.2.0.1 always draws a tqdm bar over its samples; hide it unless `show`."""
    from lime import lime_image

    if show:
        yield
        return
    original = lime_image.tqdm
    lime_image.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        lime_image.tqdm = original


def explain(image: torch.Tensor, model: nn.Module, *, num_samples: int = DEFAULT_NUM_SAMPLES, seed: int = 0,
            target_class: int = FAKE, n_segments: int = DEFAULT_SEGMENTS,
            batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False) -> LimeExplanation:
    """LIME of one normalised 3xHxW image for `target_class`; the same seed gives the same result.

    The model is scored in eval mode (its train/eval mode is restored afterwards).
    """
    from lime import lime_image

    if num_samples < 2:
        raise ValueError(f'num_samples must be at least 2, got {num_samples}')
    rgb = unnormalize(image.detach().cpu().double()).permute(1, 2, 0).numpy()
    segments = segment_face(rgb, n_segments)
    explainer = lime_image.LimeImageExplainer(random_state=seed)
    was_training = model.training
    model.eval()
    try:
        with _lime_progress(progress):
            explanation = explainer.explain_instance(
                rgb, classifier_fn(model, batch_size), labels=(target_class,), top_labels=None,
                num_features=int(segments.max()) + 1, num_samples=num_samples, batch_size=batch_size,
                segmentation_fn=lambda _image: segments)
        probabilities = classifier_fn(model, batch_size)(rgb[None])[0]
    finally:
        model.train(was_training)
    weights = np.zeros(int(segments.max()) + 1, np.float32)
    for segment, weight in explanation.local_exp[target_class]:
        weights[segment] = weight
    return LimeExplanation(weights[segments], segments, weights, probabilities.astype(np.float64),
                           target_class, float(explanation.score))


def lime_map(image: torch.Tensor, model: nn.Module, *, num_samples: int = DEFAULT_NUM_SAMPLES, seed: int = 0,
             target_class: int = FAKE) -> np.ndarray:
    """HxW float32 map of LIME's per-superpixel weights for `target_class` (default fake) painted on
    the superpixels: positive where the region is evidence for the class, negative against it."""
    return explain(image, model, num_samples=num_samples, seed=seed, target_class=target_class).weight_map
