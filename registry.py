"""Model registry: a model file registers its builder by name; scripts build models by name.

Adding a model is a decorator on its builder in models.py or bonus_model.py (plus a line in
runs.ASSIGNMENT_RUNS to train it in the chain). Model modules are imported on first lookup, so a
script that needs SimpleNet never builds Xception or looks for its weights.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

Builder = Callable[..., nn.Module]
MODEL_MODULES = ('models', 'bonus_model', 'fmd.models.efficientnet_lite')  # their import registers models
MODEL_BUILDERS: dict[str, Builder] = {}
MODEL_ALIASES: dict[str, str] = {}


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
    for module in MODEL_MODULES:
        importlib.import_module(module)


def model_names() -> list[str]:
    """Every registered name and alias, sorted (for argparse choices)."""
    _load_model_modules()
    return sorted([*MODEL_BUILDERS, *MODEL_ALIASES])


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
