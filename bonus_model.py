"""BonusNet: a 159k-parameter face-swap detector (0.94% of SimpleNet) and its checkpoint loader.

A swapped inner face is upsampled from a low-resolution render, so it lacks the camera noise of the
rest of the photo. BonusNet therefore looks at a map of local noise energy (fixed SRM high-pass
residuals, rectified and averaged over 4x4 cells) beside the colours, runs a small
depthwise-separable CNN on that 64x64 map, and ends with a global depthwise convolution (as in
MobileFaceNet) instead of global average pooling: faces are roughly centred, so *where* the noise
is missing matters, and a learned per-position weighting can compare the face with its surround.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from common import CHECKPOINT_DIR
from registry import register_model

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

ENERGY_CELL = 4  # residual energy and colours are averaged over 4x4 cells: 256x256 -> 64x64
INPUT_SIZE = 256
STEM_CHANNELS = 32
# (output channels, stride) of the depthwise-separable blocks after the stem: 64x64 -> 8x8.
BLOCKS = ((64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1))
FINAL_MAP = INPUT_SIZE // ENERGY_CELL // 8


class SRMResiduals(nn.Module):
    """Fixed (non-trainable) SRM filters applied to each colour channel: 3 -> 9 residual maps."""

    def __init__(self) -> None:
        super().__init__()
        kernels = torch.stack([torch.tensor(k, dtype=torch.float32) * s
                               for k, s in zip(SRM_KERNELS, SRM_SCALES)])
        # Weight for a grouped conv: every colour channel gets all three kernels.
        self.register_buffer('weight', kernels.unsqueeze(1).repeat(3, 1, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW -> Bx9xHxW clipped residuals (channel 3c+k = kernel k on colour c)."""
        residuals = F.conv2d(image, self.weight, padding=2, groups=3)
        return residuals.clamp(-SRM_CLIP, SRM_CLIP)

    def energy(self, image: torch.Tensor) -> torch.Tensor:
        """|forward(image)|, computed as min(|residual|, SRM_CLIP) (the same numbers) in place on
        the convolution's output: two passes over the 9 full-resolution maps instead of two
        passes plus two copies. When the image needs a gradient (saliency maps), out of place."""
        residuals = F.conv2d(image, self.weight, padding=2, groups=3)
        if residuals.requires_grad:
            return residuals.clamp(-SRM_CLIP, SRM_CLIP).abs()
        return residuals.abs_().clamp_(max=SRM_CLIP)


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


@register_model('BonusNet')
class BonusNet(nn.Module):
    """Noise-energy + colour map (12x64x64) -> stem -> 6 separable blocks -> global depthwise conv.

    Input Bx3x256x256 (normalised like TRANSFORM_TEST), output Bx2 logits (real, fake).
    """

    def __init__(self) -> None:
        super().__init__()
        self.residuals = SRMResiduals()
        self.input_bn = nn.BatchNorm2d(3 + 9)  # puts colours and noise energy on a common scale
        self.stem = nn.Sequential(
            nn.Conv2d(3 + 9, STEM_CHANNELS, 3, padding=1, bias=False),
            nn.BatchNorm2d(STEM_CHANNELS), nn.ReLU(inplace=True))
        blocks, channels = [], STEM_CHANNELS
        for out_channels, stride in BLOCKS:
            blocks.append(SeparableBlock(channels, out_channels, stride))
            channels = out_channels
        self.features = nn.Sequential(*blocks)
        # One FINAL_MAP x FINAL_MAP weight map per channel: position-aware global pooling.
        self.global_depthwise = nn.Conv2d(channels, channels, FINAL_MAP, groups=channels,
                                          bias=False)
        self.global_bn = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(channels, 2)

    def energy_map(self, image: torch.Tensor) -> torch.Tensor:
        """Bx3x256x256 -> Bx12x64x64: mean colour and mean |SRM residual| of every 4x4 cell."""
        energy = self.residuals.energy(image)
        return torch.cat([F.avg_pool2d(image, ENERGY_CELL), F.avg_pool2d(energy, ENERGY_CELL)],
                         dim=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Bx3x256x256 image batch -> Bx2 logits."""
        if image.dim() != 4 or image.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f'BonusNet expects Bx3x{INPUT_SIZE}x{INPUT_SIZE} images, got '
                             f'{tuple(image.shape)}; resize the images to {INPUT_SIZE}x{INPUT_SIZE}.')
        features = self.features(self.stem(self.input_bn(self.energy_map(image))))
        pooled = torch.flatten(self.global_bn(self.global_depthwise(features)), 1)
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
    # The assignment's torch.load line (weights_only, CPU map), with one-line errors for bad files.
    from checkpoints import read_checkpoint

    model.load_state_dict(read_checkpoint(BONUS_CHECKPOINT)['model'])
    return model
