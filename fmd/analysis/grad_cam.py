"""Grad-CAM of a model (pytorch-grad-cam) on its Grad-CAM layer: the one builder that
grad_cam_analysis.py, fmd.detect --cam, fmd.evaluate's localization and fmd.explain use."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from fmd.core.devices import model_device
from fmd.core.registry import grad_cam_layer


@contextmanager
def grad_cam(model: nn.Module, layer: nn.Module | None = None,
             ) -> Iterator[Callable[[torch.Tensor, int], np.ndarray]]:
    """GradCAM on `layer` (default: the model's, registry.grad_cam_layer) as a function from a
    normalised Bx3xHxW batch and the class to explain to BxHxW float32 maps in [0, 1]. The model's
    parameter gradients are cleared afterwards."""
    layer = grad_cam_layer(model)[1] if layer is None else layer
    with GradCAM(model=model, target_layers=[layer]) as cam:
        yield lambda images, target_class: cam(
            input_tensor=images, targets=[ClassifierOutputTarget(target_class)] * len(images))
    model.zero_grad(set_to_none=True)


def grad_cam_map(image: torch.Tensor, model: nn.Module,
                 target_class: int | None = None) -> tuple[np.ndarray, int, float]:
    """Grad-CAM of `target_class` (None: the top class) on the model's Grad-CAM layer
    (registry.grad_cam_layer: `conv3` unless the model names another) over one normalised 3xHxW image.

    Returns (HxW float32 map in [0, 1], predicted class, its softmax probability). The model is left
    in eval mode with no gradients stored in its parameters.
    """
    batch = image.unsqueeze(0).to(model_device(model))
    model.eval()
    with torch.no_grad():
        probabilities = torch.softmax(model(batch).float(), dim=1)[0]
    predicted = int(probabilities.argmax())
    with grad_cam(model) as cam:
        grayscale_cam = cam(batch, predicted if target_class is None else target_class)[0]
    return grayscale_cam.astype(np.float32), predicted, float(probabilities[predicted])
