"""SimpleNet: output shape, layer names and the parameter count worked out by hand."""
from __future__ import annotations

import torch
import torch.nn.functional as F

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


def conv_relu_pool(model: SimpleNet, image: torch.Tensor) -> torch.Tensor:
    """SimpleNet written in the assignment's order, conv -> ReLU -> max-pool, as a second method."""
    features = image
    for conv in (model.conv1, model.conv2, model.conv3):
        features = model.pool(F.relu(conv(features)))
    features = F.relu(model.fc1(torch.flatten(features, 1)))
    return model.fc3(F.relu(model.fc2(features)))


def test_simplenet_pools_before_relu_with_the_same_values_and_gradients() -> None:
    torch.manual_seed(0)
    model, image = SimpleNet(), torch.randn(3, 3, 256, 256)
    image[0, :, :32] = -5.0  # whole pooling windows below zero: ReLU's gradient is 0 in both orders
    outputs = []
    for forward in (model, lambda x: conv_relu_pool(model, x)):
        model.zero_grad()
        logits = forward(image)
        logits.square().sum().backward()
        outputs.append((logits.detach(), [p.grad.clone() for p in model.parameters()]))
    (ours, our_grads), (reference, reference_grads) = outputs
    assert torch.equal(ours, reference)
    assert all(torch.equal(a, b) for a, b in zip(our_grads, reference_grads, strict=True))
