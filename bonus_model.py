"""BonusNet: a ~141k-parameter face-swap detector (0.84% of SimpleNet) and its checkpoint loader.

Face swaps leave their traces in the high frequencies (an upsampled inner face lacks the camera
noise of its surroundings, a blending seam), so the network sees the RGB image together with fixed
SRM noise residuals, then a cheap depthwise-separable CNN pools them into two logits.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common import CHECKPOINT_DIR

BONUS_CHECKPOINT = os.path.join(CHECKPOINT_DIR, 'bonus_model.pt')
TRAIN_COMMAND = 'python train_main.py -d fakes_dataset -m BonusNet --lr 0.001 -b 32 -e 5 -o Adam'
EXPORT_COMMAND = 'python bonus_main.py --export checkpoints/fakes_dataset_BonusNet_Adam.pt'

# Three classic SRM high-pass kernels (Fridrich & Kodovsky's rich model, as used by manipulation
# detectors): 2nd-order "KB", 5x5 "KV" and a horizontal 2nd-order difference. Each sums to zero.
SRM_KERNELS = (
    [[0, 0, 0, 0, 0], [0, -1, 2, -1, 0], [0, 2, -4, 2, 0], [0, -1, 2, -1, 0], [0, 0, 0, 0, 0]],
    [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2],
     [-1, 2, -2, 2, -1]],
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -2, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
)
SRM_SCALES = (1 / 4, 1 / 12, 1 / 2)
SRM_CLIP = 3.0  # truncate residuals (in normalised units), as the rich model does

# (output channels, stride) of the depthwise-separable blocks after the 16-channel stem.
BLOCKS = ((32, 2), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1))
STEM_CHANNELS = 16


class SRMResiduals(nn.Module):
    """Fixed (non-trainable) SRM filters applied to each colour channel: 3 -> 9 residual maps."""

    def __init__(self) -> None:
        super().__init__()
        kernels = torch.stack([torch.tensor(k, dtype=torch.float32) * s
                               for k, s in zip(SRM_KERNELS, SRM_SCALES, strict=True)])
        # Weight for a grouped conv: every colour channel gets all three kernels.
        self.register_buffer('weight', kernels.unsqueeze(1).repeat(3, 1, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW -> Bx9xHxW clipped residuals (channel 3c+k = kernel k on colour c)."""
        residuals = F.conv2d(image, self.weight, padding=2, groups=3)
        return residuals.clamp(-SRM_CLIP, SRM_CLIP)


class SeparableBlock(nn.Module):
    """3x3 depthwise conv + BN + ReLU, 1x1 pointwise conv + BN (+ identity shortcut) + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1,
                                   groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = stride == 1 and in_channels == out_channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Depthwise-separable convolution; residual sum when the shape is kept."""
        out = self.bn2(self.pointwise(F.relu(self.bn1(self.depthwise(features)))))
        return F.relu(out + features if self.shortcut else out)


class BonusNet(nn.Module):
    """RGB + SRM residuals -> 3x3 stride-2 stem -> 7 separable blocks -> global avg pool -> 2 logits.

    Input Bx3x256x256 (normalised like TRANSFORM_TEST), output Bx2 logits (real, fake).
    """

    def __init__(self) -> None:
        super().__init__()
        self.residuals = SRMResiduals()
        self.input_bn = nn.BatchNorm2d(3 + 9)  # puts RGB and residuals on a common scale
        self.stem = nn.Sequential(
            nn.Conv2d(3 + 9, STEM_CHANNELS, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(STEM_CHANNELS), nn.ReLU(inplace=True))
        blocks, channels = [], STEM_CHANNELS
        for out_channels, stride in BLOCKS:
            blocks.append(SeparableBlock(channels, out_channels, stride))
            channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(channels, 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Bx3x256x256 image batch -> Bx2 logits."""
        features = self.input_bn(torch.cat([image, self.residuals(image)], dim=1))
        features = self.features(self.stem(features))
        pooled = torch.flatten(F.adaptive_avg_pool2d(features, 1), 1)
        return self.classifier(self.dropout(pooled))


def missing_checkpoint_message(path: str | os.PathLike) -> str:
    """How to get the bonus checkpoint: train BonusNet, then export its best-validation checkpoint."""
    return (f'Bonus checkpoint {path} not found. Train the model with `{TRAIN_COMMAND}`, then copy '
            f'its best-validation checkpoint to {BONUS_CHECKPOINT} with `{EXPORT_COMMAND}` '
            '(run_me.sh does both).')


def my_bonus_model() -> nn.Module:
    """BonusNet with the trained weights of checkpoints/bonus_model.pt (relative to the cwd)."""
    if not os.path.isfile(BONUS_CHECKPOINT):
        raise FileNotFoundError(missing_checkpoint_message(BONUS_CHECKPOINT))
    model = BonusNet()
    # The assignment's fixed line, with weights_only and a CPU map so GPU-trained files load anywhere.
    model.load_state_dict(torch.load(BONUS_CHECKPOINT, map_location='cpu',
                                     weights_only=True)['model'])
    return model


def export_bonus_checkpoint(source: str | os.PathLike,
                            destination: str | os.PathLike = BONUS_CHECKPOINT) -> Path:
    """Check that `source` is a BonusNet training checkpoint, then copy it atomically to `destination`."""
    from utils import atomic_torch_save, load_checkpoint

    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f'Cannot export {source}: file not found. Train BonusNet first '
                                f'with `{TRAIN_COMMAND}`.')
    checkpoint = load_checkpoint(BonusNet(), source, 'BonusNet')  # named error on a wrong model
    atomic_torch_save(checkpoint, destination)
    return Path(destination)
