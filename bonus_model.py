"""BonusNet: a 164,276-parameter manipulation detector (0.97% of SimpleNet) and its checkpoint loader.

Design (chosen for real composites as well as the demo face swaps):

* **Fixed + learned high-pass front end.** Three classic SRM kernels per colour channel (9 fixed
  residual maps) plus 6 *learned constrained* 5x5 filters (2 per colour channel,
  Bayar & Stamm's constrained convolution: centre weight -1, the other 24 weights sum to 1, so
  every filter is a predictor-minus-pixel residual that ignores image content). The constraint is a
  parametrisation (`ConstrainedResidualWeight`), so the filters satisfy it after every optimizer
  step, with no projection hook in the trainer. The SRM kernels capture the camera-noise trace of a
  pasted or re-rendered region; the learned ones can adapt to the resampling, blur and JPEG traces
  of Photoshop composites, which the SRM set was never designed for.
* **Multi-scale residual statistics.** The rectified residuals (clipped at 3) are averaged over 4x4
  cells (a 64x64 energy map beside the 4x4 mean colours, the network's input) and also over 8x8
  and 16x16 cells, which are added (1x1 conv + BN) to the features at the 32x32 and 16x16 stages:
  the deeper stages see the raw noise statistics of their receptive field directly, not only what
  survived the earlier layers.
* **Colour/low-frequency input kept.** The 4x4 mean colours stay in the input: real composites
  often differ from their host in tone and lighting rather than in noise.
* **Small separable CNN + global depthwise conv.** Six depthwise-separable blocks (64x64 -> 8x8)
  and a global depthwise convolution (as in MobileFaceNet) instead of average pooling: faces are
  roughly centred, so *where* the trace is matters.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from common import CHECKPOINT_DIR
from fmd.core.registry import register_model

BONUS_CHECKPOINT = os.path.join(CHECKPOINT_DIR, 'bonus_model.pt')
BONUS_CHECKPOINT_COPY = os.path.join(CHECKPOINT_DIR, 'bonus.pt')  # the assignment's text's name
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

LEARNED_FILTERS = 2  # learned constrained residual filters, each applied to every colour channel
LEARNED_STRIDE = 2
CONSTRAINED_SIZE = 5
N_RESIDUALS = 9 + 3 * LEARNED_FILTERS  # 9 fixed SRM + 6 learned residual maps

ENERGY_CELL = 4  # residual energy and colours are averaged over 4x4 cells: 256x256 -> 64x64
# Coarser residual statistics injected into the features: (cell size, index of the block whose
# output they are added to, that block's channels). Block 0 ends at 32x32, block 2 at 16x16.
COARSE_ENERGY = ((8, 0, 64), (16, 2, 128))
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


class ConstrainedResidualWeight(nn.Module):
    """Parametrisation of a KxK kernel bank: centre -1, the other K*K-1 weights sum to 1.

    Bayar & Stamm re-project their constrained convolution after every step by dividing by the sum
    of the off-centre weights; here the off-centre weights are the raw ones minus their mean plus
    1/(K*K-1) (the Euclidean projection onto the constraint), which needs no division, cannot blow
    up when the raw sum nears zero, and holds exactly whatever the optimizer does to the raw weights.
    """

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Bx1xKxK raw weights -> constrained weights."""
        size = raw.shape[-1]
        centre = torch.zeros_like(raw)
        centre[..., size // 2, size // 2] = 1.0
        off = raw * (1 - centre)
        n_off = size * size - 1
        off = off - (off.sum(dim=(-2, -1), keepdim=True) / n_off - 1.0 / n_off) * (1 - centre)
        return off - centre


class LearnedResiduals(nn.Module):
    """Learned constrained (Bayar) 5x5 high-pass filters shared by the colour channels.

    Each of the LEARNED_FILTERS filters runs on every colour channel; its output is kept at every
    other pixel (stride 2): the filter still sees full-resolution neighbours, but training costs a
    quarter of a full-resolution learned convolution (which dominated a CPU training step).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, LEARNED_FILTERS, CONSTRAINED_SIZE, stride=LEARNED_STRIDE,
                              padding=CONSTRAINED_SIZE // 2, bias=False)
        # Start near a smooth predictor: off-centre weights ~ 1/24 plus noise.
        with torch.no_grad():
            self.conv.weight.uniform_(0.0, 2.0 / (CONSTRAINED_SIZE ** 2 - 1))
        parametrize.register_parametrization(self.conv, 'weight', ConstrainedResidualWeight())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW -> Bx6x(H/2)x(W/2) clipped residuals (channel 2c+k = filter k on colour c).

        One grouped convolution with the filters repeated per colour: the same numbers as running
        self.conv on every colour plane, 3x faster to train on CPU than reshaping the batch into
        B*3 single-channel images (which also copies a channels_last batch)."""
        colours = image.shape[1]
        weight = self.conv.weight.repeat(colours, 1, 1, 1)  # (colours*LEARNED_FILTERS)x1xKxK
        residuals = F.conv2d(image, weight, stride=self.conv.stride, padding=self.conv.padding,
                             groups=colours)
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


@register_model('BonusNet')
class BonusNet(nn.Module):
    """Colour + residual-energy map (18x64x64) -> stem -> 6 separable blocks (coarser residual
    energy added after blocks 0 and 2) -> global depthwise conv -> linear.

    Input Bx3x256x256 (normalised like TRANSFORM_TEST), output Bx2 logits (real, fake).
    """

    # Grad-CAM maps the last convolution with a spatial output (8x8): the pointwise one of the last
    # block; the global depthwise convolution after it outputs 1x1 (registry.grad_cam_layer).
    grad_cam_layer_name = f'features.{len(BLOCKS) - 1}.pointwise'
    # The mask head (fmd.models.mask_head) reads the stem (64x64, fine detail) and the 16x16 stage.
    mask_feature_layers = ('stem', 'features.3')

    def __init__(self) -> None:
        super().__init__()
        self.residuals = SRMResiduals()
        self.learned_residuals = LearnedResiduals()
        self.input_bn = nn.BatchNorm2d(3 + N_RESIDUALS)  # colours and energies on a common scale
        self.stem = nn.Sequential(
            nn.Conv2d(3 + N_RESIDUALS, STEM_CHANNELS, 3, padding=1, bias=False),
            nn.BatchNorm2d(STEM_CHANNELS), nn.ReLU(inplace=True))
        blocks, channels = [], STEM_CHANNELS
        for out_channels, stride in BLOCKS:
            blocks.append(SeparableBlock(channels, out_channels, stride))
            channels = out_channels
        self.features = nn.Sequential(*blocks)
        # Coarse residual energy -> BN -> 1x1 conv -> BN, added to a block's output.
        self.coarse = nn.ModuleDict({
            str(index): nn.Sequential(nn.BatchNorm2d(N_RESIDUALS),
                                      nn.Conv2d(N_RESIDUALS, out, 1, bias=False),
                                      nn.BatchNorm2d(out))
            for _, index, out in COARSE_ENERGY})
        # One FINAL_MAP x FINAL_MAP weight map per channel: position-aware global pooling.
        self.global_depthwise = nn.Conv2d(channels, channels, FINAL_MAP, groups=channels,
                                          bias=False)
        self.global_bn = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(channels, 2)

    def energy_map(self, image: torch.Tensor) -> torch.Tensor:
        """Bx3x256x256 -> Bx18x64x64: per 4x4 cell, the mean colour (3), mean |SRM residual| (9,
        channel 3+3c+k = SRM kernel k on colour c) and mean |learned residual| (6, channel
        12+2c+k = learned filter k on colour c, sampled at every other pixel)."""
        fixed = F.avg_pool2d(self.residuals.energy(image), ENERGY_CELL)
        learned = F.avg_pool2d(self.learned_residuals(image).abs(), ENERGY_CELL // LEARNED_STRIDE)
        return torch.cat([F.avg_pool2d(image, ENERGY_CELL), fixed, learned], dim=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Bx3x256x256 image batch -> Bx2 logits."""
        if image.dim() != 4 or image.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f'BonusNet expects Bx3x{INPUT_SIZE}x{INPUT_SIZE} images, got '
                             f'{tuple(image.shape)}; resize the images to {INPUT_SIZE}x{INPUT_SIZE}.')
        energy_map = self.energy_map(image)
        residual_energy = energy_map[:, 3:]
        features = self.stem(self.input_bn(energy_map))
        for index, block in enumerate(self.features):
            features = block(features)
            for cell, at, _ in COARSE_ENERGY:
                if at == index:  # mean |residual| over cell x cell pixels = pooled 4x4 means
                    coarse = F.avg_pool2d(residual_energy, cell // ENERGY_CELL)
                    features = F.relu(features + self.coarse[str(index)](coarse))
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
    from fmd.core.checkpoint_files import read_checkpoint

    model.load_state_dict(read_checkpoint(BONUS_CHECKPOINT)['model'])
    return model
