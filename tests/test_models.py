"""SimpleNet: output shape, layer names and the parameter count worked out by hand."""
from __future__ import annotations

import torch

from models import SimpleNet
from utils import get_nof_params

# conv1 3*6*49+6 = 888, conv2 6*16*49+16 = 4,720, conv3 16*24*49+24 = 18,840,
# fc1 (24*26*26)*1024+1024 = 16,614,400, fc2 1024*256+256 = 262,400, fc3 256*2+2 = 514.
SIMPLENET_PARAMS = 888 + 4_720 + 18_840 + 16_614_400 + 262_400 + 514


def test_simplenet_parameter_count() -> None:
    assert SIMPLENET_PARAMS == 16_901_762
    assert get_nof_params(SimpleNet()) == SIMPLENET_PARAMS


def test_simplenet_maps_256_images_to_two_logits() -> None:
    model = SimpleNet().eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 256, 256)).shape == (2, 2)


def test_simplenet_layers_have_the_assignment_names() -> None:
    model = SimpleNet()
    assert [name for name, _ in model.named_children()][:3] == ['conv1', 'conv2', 'conv3']
    assert model.conv3.out_channels == 24 and model.conv3.kernel_size == (7, 7)
    assert model.fc1.in_features == 24 * 26 * 26 and model.fc3.out_features == 2
