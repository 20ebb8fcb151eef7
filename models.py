"""The assignment's detectors: SimpleNet and the ImageNet-pretrained Xception with an MLP head."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fmd.core.registry import register_model


@register_model('SimpleNet')
class SimpleNet(nn.Module):
    """Three 7x7 conv + max-pool stages and three fully connected layers; 256x256 input, 2 logits."""

    grad_cam_layer_name = 'conv3'  # the assignment's Grad-CAM target (registry.grad_cam_layer)
    mask_feature_layers = ('conv2', 'conv3')  # what the mask head reads (fmd.models.mask_head)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=7)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=7)
        self.conv3 = nn.Conv2d(16, 24, kernel_size=7)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(24 * 26 * 26, 1024)
        self.fc2 = nn.Linear(1024, 256)
        self.fc3 = nn.Linear(256, 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Bx3x256x256 image batch -> Bx2 logits (real, fake).

        Each stage is conv -> ReLU -> max-pool, computed as relu(pool(conv)): ReLU is monotonic, so
        the two orders give the same values and gradients to the bit (tests/test_models.py), and
        ReLU then runs on a quarter of the elements (4% of a training step on 2 CPU cores).
        """
        features = F.relu(self.pool(self.conv1(image)))
        features = F.relu(self.pool(self.conv2(features)))
        features = F.relu(self.pool(self.conv3(features)))
        features = torch.flatten(features, 1)
        features = F.relu(self.fc1(features))
        features = F.relu(self.fc2(features))
        return self.fc3(features)


@register_model('XceptionBased', aliases=('Xception-Based',), pretrained=True)
def get_xception_based_model(pretrained: bool = True) -> nn.Module:
    """ImageNet Xception whose fc is an MLP 2048->1000->256->64->2; every parameter trainable."""
    from xception import build_xception_backbone

    model = build_xception_backbone(pretrained=pretrained)
    model.fc = nn.Sequential(
        nn.Linear(2048, 1000), nn.ReLU(),
        nn.Linear(1000, 256), nn.ReLU(),
        nn.Linear(256, 64), nn.ReLU(),
        nn.Linear(64, 2),
    )
    for parameter in model.parameters():
        parameter.requires_grad = True
    return model
