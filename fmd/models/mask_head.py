"""A manipulation-mask head: where in the face the pixels were changed, as a 64x64 map.

After Face X-ray (Li et al., CVPR 2020): a self-blended training fake comes with its exact blend
mask, so a detector can learn to draw it beside its real/fake verdict. The head is a separate
module that reads the detector's intermediate feature maps through forward hooks, so the detector
itself, its `state_dict` keys and its parameter count are unchanged; a checkpoint stores the head
under keys of its own (`mask_head`, `mask_head_layers`).

Layout of the head (2,817 parameters on BonusNet): each tapped feature map -> 1x1 conv to WIDTH
channels + BN, resized to MASK_SIZE and summed -> ReLU -> 3x3 depthwise conv + BN + ReLU -> 1x1 conv
-> one logit per pixel. `mask_loss` compares it with the blend mask by the binary KL divergence
(cross-entropy minus the target's entropy): the gradients of BCE, and exactly 0 for a perfect map.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fmd.core.checkpoint_files import cpu_copy
from fmd.data.training_fakes import MASK_SIZE, mask_target  # noqa: F401 (the targets the head learns)

WIDTH = 16       # channels inside the head
MASK_HEAD_KEY, MASK_LAYERS_KEY = 'mask_head', 'mask_head_layers'  # checkpoint keys


class MaskHeadError(ValueError):
    """A model that has no feature layers for the mask head, or a head that does not fit it."""


def mask_feature_layers(detector: nn.Module) -> tuple[str, ...]:
    """The names of the detector's modules the head reads (its class's `mask_feature_layers`)."""
    layers = getattr(detector, 'mask_feature_layers', None)
    if not layers:
        raise MaskHeadError(f'{type(detector).__name__} has no mask head: --mask-loss-weight works '
                            'with BonusNet and SimpleNet')
    return tuple(layers)


class MaskHead(nn.Module):
    """Feature maps (any sizes) -> Bx1xMASK_SIZExMASK_SIZE manipulation logits."""

    def __init__(self, in_channels: Sequence[int], width: int = WIDTH, size: int = MASK_SIZE):
        super().__init__()
        self.size = size
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, width, 1, bias=False), nn.BatchNorm2d(width))
            for channels in in_channels)
        self.refine = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 1, 1))

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """One feature map per lateral branch, in `in_channels` order -> Bx1xSxS logits."""
        total = None
        for lateral, feature in zip(self.lateral, features, strict=True):
            mapped = F.interpolate(lateral(feature), size=(self.size, self.size), mode='bilinear',
                                   align_corners=False)
            total = mapped if total is None else total + mapped
        return self.refine(total)


class MaskedDetector(nn.Module):
    """A detector and its mask head: forward(images) -> (Bx2 logits, Bx1xSxS mask logits).

    Hooks on the detector's `layers` keep their outputs during this module's forward only, so the
    detector called on its own behaves and costs what it does without a head. (torchvision's
    create_feature_extractor would trace the detector with torch.fx, which BonusNet's input check
    and its parametrized filters do not allow.)

    It owns its training loss (`loss`: the classification criterion + `mask_loss_weight` x the mask
    loss), so the Trainer trains it as it trains a plain classifier (fmd.training.objective.Detector).
    """

    def __init__(self, detector: nn.Module, head: MaskHead, layers: Sequence[str],
                 mask_loss_weight: float = 1.0):
        super().__init__()
        self.detector, self.head, self.layers = detector, head, tuple(layers)
        self.mask_loss_weight = mask_loss_weight
        self._captured: list[torch.Tensor] | None = None
        modules = dict(detector.named_modules())
        missing = [name for name in self.layers if name not in modules]
        if missing:
            raise MaskHeadError(f'{type(detector).__name__} has no layer {missing[0]!r} for the mask head')
        for name in self.layers:
            modules[name].register_forward_hook(self._keep)

    def _keep(self, _module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        if self._captured is not None:
            self._captured.append(output)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._captured = []
        try:
            logits = self.detector(images)
            features = self._captured
        finally:
            self._captured = None
        if len(features) != len(self.layers):
            raise MaskHeadError(f'the mask head expected {len(self.layers)} feature maps, the '
                                f'detector produced {len(features)}')
        return logits, self.head(features)

    @property
    def classifier(self) -> nn.Module:
        """The detector alone: what is evaluated, and saved as a checkpoint's 'model'."""
        return self.detector

    def loss(self, batch: Sequence[torch.Tensor],
             criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """(criterion + mask_loss_weight x mask loss, logits, {'mask_loss': its value}) of a batch of
        (images, labels, mask targets) on the device; both losses on float32 logits."""
        images, labels, masks = batch
        logits, mask_logits = self(images)
        masked = mask_loss(mask_logits.float(), masks)
        return criterion(logits.float(), labels) + self.mask_loss_weight * masked, logits, \
            {'mask_loss': masked.item()}

    def checkpoint_entries(self) -> dict[str, Any]:
        """The head's weights and the layers it reads, under their checkpoint keys."""
        return {MASK_HEAD_KEY: cpu_copy(self.head.state_dict()), MASK_LAYERS_KEY: list(self.layers)}

    def load_checkpoint_entries(self, state: Mapping[str, Any]) -> None:
        """The head's weights from a training state."""
        if MASK_HEAD_KEY not in state:
            raise MaskHeadError('--resume: the interrupted run had no mask head; resume it without '
                                '--mask-loss-weight')
        self.head.load_state_dict(state[MASK_HEAD_KEY])


def build_mask_head(detector: nn.Module, image_size: int = 256,
                    mask_loss_weight: float = 1.0) -> MaskedDetector:
    """A fresh head for `detector`, its input channels found by one forward pass on a dummy image."""
    layers = mask_feature_layers(detector)
    modules = dict(detector.named_modules())
    shapes: list[int] = []
    hooks = [modules[name].register_forward_hook(lambda _m, _i, out: shapes.append(out.shape[1]))
             for name in layers]
    was_training = detector.training
    try:
        detector.eval()
        parameter = next(detector.parameters())
        with torch.no_grad():
            detector(torch.zeros(1, 3, image_size, image_size, device=parameter.device))
    finally:
        detector.train(was_training)
        for hook in hooks:
            hook.remove()
    head = MaskHead(shapes).to(next(detector.parameters()).device)
    return MaskedDetector(detector, head, layers, mask_loss_weight)


def attach_saved_head(detector: nn.Module, checkpoint: Mapping) -> MaskedDetector | None:
    """The detector with the head a checkpoint stores, in eval mode; None when it stores none."""
    state = checkpoint.get(MASK_HEAD_KEY)
    if not isinstance(state, Mapping):
        return None
    saved_layers = tuple(checkpoint.get(MASK_LAYERS_KEY) or ())
    masked = build_mask_head(detector)
    if saved_layers != masked.layers:
        raise MaskHeadError(f'the checkpoint\'s mask head reads {saved_layers}, '
                            f'{type(detector).__name__} offers {masked.layers}')
    try:
        masked.head.load_state_dict(state)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise MaskHeadError(f"the checkpoint's mask head does not fit: {first_line}") from error
    return masked.eval()


def mask_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary KL divergence between target and sigmoid(logits), per pixel: BCE minus the
    target's own entropy (0 log 0 = 0). Zero exactly when sigmoid(logits) equals the target."""
    target = target.to(logits.dtype)
    cross_entropy = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    entropy = -(torch.xlogy(target, target) + torch.xlogy(1 - target, 1 - target))
    return (cross_entropy - entropy).mean()


def predict_masks(masked: MaskedDetector, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Bx2 logits, Bx1xSxS mask probabilities) of normalised images, without gradients."""
    with torch.no_grad():
        logits, mask_logits = masked(images)
    return logits, torch.sigmoid(mask_logits.float())
