"""grad_cam_analysis.py: return types, the bounded one-per-class draw, and the script end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import grad_cam_analysis as gca
from fmd.core.cli import run_cli
from fmd.core.registry import GradCamLayerError
from helpers import make_split
from models import SimpleNet


class TinyConvNet(nn.Module):
    """Three small convs (the last is `conv3`) and a linear head: fast Grad-CAM on 256x256 input."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, stride=4, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x))))))
        return self.head(x.mean(dim=(2, 3)))


def tiny_dataset(labels: list[int]) -> TensorDataset:
    torch.manual_seed(1)
    return TensorDataset(torch.randn(len(labels), 3, 256, 256), torch.tensor(labels))


@pytest.mark.parametrize('model_class', [TinyConvNet, SimpleNet])
def test_visualization_types_shape_and_dtype(model_class: type[nn.Module]) -> None:
    model = model_class()
    visualization, true_label = gca.get_grad_cam_visualization(tiny_dataset([0, 1, 1]), model)
    assert isinstance(visualization, np.ndarray)
    assert visualization.shape == (256, 256, 3) and visualization.dtype == np.uint8
    assert isinstance(true_label, torch.Tensor) and true_label.shape == torch.Size([1])
    assert int(true_label) in (0, 1)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())


def test_overlay_uses_the_top_class_and_its_probability() -> None:
    model = TinyConvNet()
    image = tiny_dataset([0])[0][0]
    with torch.no_grad():
        probabilities = torch.softmax(model(image.unsqueeze(0)), dim=1)[0]
    _, predicted, probability = gca.grad_cam_of_image(image, model)
    assert predicted == int(probabilities.argmax())
    assert probability == pytest.approx(float(probabilities.max()))


class LinearCamNet(nn.Module):
    """conv3 copies the red and green channels; the head is a fixed 2x2 linear map of their means.

    For class c, d logit_c / d A_k(i, j) = W[c, k] / (H * W), so Grad-CAM's channel weights are
    W[c, k] / (H * W) and the map is relu(W[c, 0] * red + W[c, 1] * green) up to that scale.
    """

    HEAD = ((1.0, -1.0), (2.0, 3.0))

    def __init__(self) -> None:
        super().__init__()
        self.conv3 = nn.Conv2d(3, 2, 1, bias=False)
        self.head = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv3.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).view(2, 3, 1, 1))
            self.head.weight.copy_(torch.tensor(self.HEAD))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv3(x).mean(dim=(2, 3)))


def test_grad_cam_equals_the_hand_computed_map() -> None:
    from pytorch_grad_cam.utils.image import show_cam_on_image

    from fmd.data.presets import unnormalize

    image = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(4))
    model = LinearCamNet()
    visualization, predicted, _ = gca.grad_cam_of_image(image, model)

    red, green = image[0].double().numpy(), image[1].double().numpy()
    means = np.array([red.mean(), green.mean()])
    head = np.array(LinearCamNet.HEAD)
    assert predicted == int(np.argmax(head @ means))
    weights = head[predicted] / 64.0  # mean over the 8x8 positions of d logit / d activation
    cam = np.maximum(weights[0] * red + weights[1] * green, 0)
    cam = cam - cam.min()
    cam = cam / (1e-7 + cam.max())
    rgb = unnormalize(image).permute(1, 2, 0).numpy().astype(np.float32)
    expected = show_cam_on_image(rgb, cam.astype(np.float32), use_rgb=True)
    assert np.abs(visualization.astype(int) - expected.astype(int)).max() <= 1


def test_draw_one_per_class_returns_an_image_of_each_label() -> None:
    dataset = tiny_dataset([0, 0, 0, 1])
    found = gca.draw_one_per_class(dataset, seed=3)
    assert sorted(found) == [0, 1]
    assert torch.equal(found[1], dataset[3][0])  # the only fake image


def test_missing_class_is_a_clear_error_not_an_endless_loop() -> None:
    with pytest.raises(gca.MissingClassError, match='no fake image'):
        gca.draw_one_per_class(tiny_dataset([0, 0, 0]))


def test_model_without_conv3_is_a_clear_error() -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(GradCamLayerError, match='no conv3'):
        gca.grad_cam_of_image(torch.randn(3, 8, 8), model)


# The script end to end on every model: tests/test_analysis_scripts.py.
def test_script_exits_with_one_line_when_the_test_set_has_no_fakes(trained_runs: Path, tmp_path: Path,
                                                                   workdir: Path) -> None:
    make_split(tmp_path / 'data' / 'fakes_dataset' / 'test', n_real=2, n_fake=0, seed=5)
    checkpoint = trained_runs / 'checkpoints' / 'fakes_dataset_SimpleNet_Adam.pt'
    with pytest.raises(SystemExit) as exit_info:
        run_cli(gca.main, ['-m', 'SimpleNet', '--checkpoint', str(checkpoint), '-d', 'fakes_dataset',
                           '--data-root', str(tmp_path / 'data'), '--workers', '0'])
    message = str(exit_info.value.code)
    assert message.startswith('error: ') and 'fake has no images' in message and '\n' not in message
    assert not (workdir / 'figures').exists()
