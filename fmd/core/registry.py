"""Model registry: a model file registers its builder by name; scripts build models by name.

Adding a model is a decorator on its builder and an import in fmd.models.catalogue, which the first
lookup imports (the model files stand above this module, so it names the catalogue, not them).
Building is lazy, so a script that needs SimpleNet never builds Xception or looks for its weights.
A model names the layer Grad-CAM maps in its `grad_cam_layer_name` (grad_cam_layer: one rule for
every script).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

Builder = Callable[..., nn.Module]
MODEL_CATALOGUE = 'fmd.models.catalogue'  # imports every model file, which registers its models
MODEL_BUILDERS: dict[str, Builder] = {}
MODEL_ALIASES: dict[str, str] = {}
DEFAULT_GRAD_CAM_LAYER = 'conv3'  # the assignment's Grad-CAM target, for models that name none


class GradCamLayerError(ValueError):
    """A model without the layer Grad-CAM should map."""


def register_model(name: str, *, aliases: tuple[str, ...] = (),
                   pretrained: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: register a builder (a class or function) under `name`.

    `pretrained=True` marks builders that take `pretrained=` (ImageNet backbones); others are
    called without arguments.
    """
    def decorate(builder: Builder) -> Builder:
        MODEL_BUILDERS[name] = builder if pretrained else (lambda pretrained=True: builder())
        for alias in aliases:
            MODEL_ALIASES[alias] = name
        return builder
    return decorate


def _load_model_modules() -> None:
    importlib.import_module(MODEL_CATALOGUE)


def model_names() -> list[str]:
    """Every registered name and alias, sorted (for argparse choices)."""
    _load_model_modules()
    return sorted([*MODEL_BUILDERS, *MODEL_ALIASES])


def registered_models() -> list[str]:
    """Every registry name (aliases left out), sorted."""
    _load_model_modules()
    return sorted(MODEL_BUILDERS)


def canonical_model_name(model_name: str) -> str:
    """Map an accepted spelling (e.g. 'Xception-Based') to its registry name, or raise ValueError."""
    _load_model_modules()
    name = MODEL_ALIASES.get(model_name, model_name)
    if name not in MODEL_BUILDERS:
        raise ValueError(f'Unknown model {model_name!r}; choose one of {model_names()}.')
    return name


def build_model(model_name: str, pretrained: bool = True) -> nn.Module:
    """A fresh model by name; pretrained=False skips ImageNet weights (a checkpoint follows)."""
    return MODEL_BUILDERS[canonical_model_name(model_name)](pretrained=pretrained)


def grad_cam_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """(dotted name, module) of the layer whose output Grad-CAM maps: the model's
    `grad_cam_layer_name`, else `conv3` (the assignment's rule); GradCamLayerError if it has none."""
    name = getattr(model, 'grad_cam_layer_name', DEFAULT_GRAD_CAM_LAYER)
    try:
        return name, model.get_submodule(name)
    except AttributeError:
        raise GradCamLayerError(f'{type(model).__name__} has no {name} layer to run Grad-CAM on; '
                                'give the model a grad_cam_layer_name.') from None
