"""Parameter counts and layer shapes read from freshly built models (no checkpoint, no ImageNet weights).

The report quotes them in Chapters 3-5 and the bonus; torch and the model modules are imported only when
the facts are first read, so importing this module stays light.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

INPUT_SIZE = 256  # the course images are 256x256; shapes are measured for that input


@dataclass
class ModelFacts:
    """Read from the model definitions (no checkpoint, no ImageNet weights needed)."""

    simplenet_params: int
    simplenet_layers: list[str]
    simplenet_fc1_params: int
    simplenet_conv3_map: tuple[int, ...]
    backbone_params: int
    backbone_fc: tuple[int, int]
    backbone_fc_params: int
    n_separable: int
    n_plain_convs: int
    n_shortcut_convs: int
    n_blocks: int
    n_middle_blocks: int
    stem_channels: tuple[int, int]
    block_channels: list[int]  # output channels of residual blocks 1..12
    feature_map: tuple[int, ...]  # backbone features for a 3 x 256 x 256 input
    xception_conv3_map: tuple[int, ...]
    conv4: tuple[int, int]
    separable_example: dict[str, int]
    based_params: int
    head_layers: list[tuple[int, int]]
    head_params: int
    bonus_params: int


@functools.cache
def gather_models() -> ModelFacts:
    """Parameter counts and layer shapes, read from freshly built (untrained) models."""
    import torch
    from torch import nn

    from bonus_model import BonusNet
    from models import SimpleNet, get_xception_based_model
    from utils import get_nof_params
    from xception import Block, SeparableConv2d, build_xception_backbone

    def shapes_of(layers: list[nn.Module], run: Any) -> list[tuple[int, ...]]:
        """Output shapes (without the batch) of `layers` in one forward pass of a 256x256 image."""
        seen: dict[int, tuple[int, ...]] = {}

        def record(module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:  # None: output kept
            """Forward hook: keep the first output shape seen for the module."""
            seen.setdefault(id(module), tuple(out.shape[1:]))

        handles = [layer.register_forward_hook(record) for layer in layers]
        with torch.no_grad():
            run(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
        for handle in handles:
            handle.remove()
        return [seen[id(layer)] for layer in layers]

    simple = SimpleNet().eval()
    layers = []
    for name, module in simple.named_children():
        if isinstance(module, nn.Conv2d):
            layers.append(f'{name} {module.in_channels}→{module.out_channels} '
                          f'({module.kernel_size[0]}×{module.kernel_size[1]})')
        elif isinstance(module, nn.Linear):
            layers.append(f'{name} {module.in_features:,}→{module.out_features:,}')
    backbone = build_xception_backbone(pretrained=False).eval()
    separables = [m for m in backbone.modules() if isinstance(m, SeparableConv2d)]
    inside = {id(m.conv1) for m in separables} | {id(m.pointwise) for m in separables}
    shortcuts = [m for n, m in backbone.named_modules() if n.endswith('.skip') and m is not None]
    plain = [m for m in backbone.modules() if isinstance(m, nn.Conv2d) and id(m) not in inside
             and not any(m is s for s in shortcuts)]
    blocks = [m for m in backbone.modules() if isinstance(m, Block)]
    example = next(m for m in separables if m.conv1.in_channels == m.pointwise.out_channels == 728)
    k = example.conv1.kernel_size[0]
    feature_map, conv3_map = shapes_of([backbone.conv4, backbone.conv3], backbone.features)
    based = get_xception_based_model(pretrained=False)
    head = [(m.in_features, m.out_features) for m in based.fc.modules() if isinstance(m, nn.Linear)]
    return ModelFacts(
        simplenet_params=get_nof_params(simple), simplenet_layers=layers,
        simplenet_fc1_params=get_nof_params(simple.fc1),
        simplenet_conv3_map=shapes_of([simple.conv3], simple)[0],
        backbone_params=get_nof_params(backbone),
        backbone_fc=(backbone.fc.in_features, backbone.fc.out_features),
        backbone_fc_params=get_nof_params(backbone.fc), n_separable=len(separables),
        n_plain_convs=len(plain), n_shortcut_convs=len(shortcuts), n_blocks=len(blocks),
        n_middle_blocks=sum(1 for b in blocks if b.skip is None), feature_map=feature_map,
        stem_channels=(backbone.conv1.out_channels, backbone.conv2.out_channels),
        block_channels=[[m for m in b.rep if isinstance(m, nn.BatchNorm2d)][-1].num_features
                        for b in blocks],
        xception_conv3_map=conv3_map,
        conv4=(backbone.conv4.conv1.in_channels, backbone.conv4.pointwise.out_channels),
        separable_example={'channels': 728, 'kernel': k,
                           'separable': get_nof_params(example),
                           'regular': 728 * 728 * k * k},
        based_params=get_nof_params(based), head_layers=head, head_params=get_nof_params(based.fc),
        bonus_params=get_nof_params(BonusNet()))
