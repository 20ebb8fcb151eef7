"""The three analysis scripts on every registered model, and the one rule for the Grad-CAM layer."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from torch import nn

import grad_cam_analysis as gca
from faces_dataset import CLASS_NAMES
from fmd.core.cli import run_cli
from fmd.core.registry import GradCamLayerError, build_model, grad_cam_layer, registered_models
from fmd.training.checkpoints import load_trained_model
from helpers import TINY_COUNTS, untrained_checkpoints
from utils import load_dataset

CPU = torch.device('cpu')
MODELS = ('BonusNet', 'EfficientNetLite0', 'SimpleNet', 'XceptionBased')
# Each model's Grad-CAM layer, read off its architecture: BonusNet's last spatial convolution (the
# global depthwise one is 1x1), EfficientNet-Lite0's 1x1 head convolution, the assignment's conv3.
CAM_LAYERS = {'BonusNet': 'features.5.pointwise', 'EfficientNetLite0': 'head.conv',
              'SimpleNet': 'conv3', 'XceptionBased': 'conv3'}
FIGURES = {'numerical_analysis': ('det_curve', 'roc_curve'),
           'saliency_map': ('mean_saliency_maps', 'saliency_maps_and_images_pairs'),
           'grad_cam_analysis': ('Fake_Image_grad_cam', 'Real_Image_grad_cam')}


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An untrained checkpoint of each registered model."""
    return untrained_checkpoints(tmp_path_factory.mktemp('checkpoints'))


def last_spatial_convolution(model: nn.Module, size: int = 256) -> nn.Conv2d:
    """Reference: the last nn.Conv2d run in a forward pass whose output is larger than 1x1."""
    shapes: list[tuple[nn.Module, torch.Size]] = []
    hooks = [module.register_forward_hook(lambda m, _, out: shapes.append((m, out.shape)))
             for module in model.modules() if isinstance(module, nn.Conv2d)]
    with torch.inference_mode():
        model.eval()(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return [module for module, shape in shapes if shape[-1] > 1 and shape[-2] > 1][-1]


def test_every_registered_model_names_its_grad_cam_layer() -> None:
    assert registered_models() == list(MODELS)
    for name in MODELS:
        model = build_model(name, pretrained=False)
        layer_name, layer = grad_cam_layer(model)
        assert 'grad_cam_layer_name' in type(model).__dict__  # named by the model, not the fallback
        assert layer_name == CAM_LAYERS[name] and layer is model.get_submodule(CAM_LAYERS[name])
        if name in ('BonusNet', 'EfficientNetLite0'):
            assert layer is last_spatial_convolution(model)


def test_a_model_without_the_layer_is_a_named_error() -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(GradCamLayerError, match='Sequential has no conv3 layer'):
        grad_cam_layer(model)
    model.grad_cam_layer_name = '0'
    assert grad_cam_layer(model) == ('0', model[0])


@pytest.mark.parametrize('model_name', MODELS)
@pytest.mark.parametrize('script', list(FIGURES))
def test_every_analysis_script_runs_on_every_model(script: str, model_name: str, checkpoints: dict[str, Path],
                                                   data_root: Path, workdir: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    titles: list[str] = []
    plot = gca.plot_grad_cam
    monkeypatch.setattr(gca, 'plot_grad_cam', lambda *args: titles.append(args[-1]) or plot(*args))
    main = importlib.import_module(script).main
    result = run_cli(main, ['-m', model_name, '--checkpoint', str(checkpoints[model_name]),
                            '-d', 'fakes_dataset', '--data-root', str(data_root), '--workers', '0',
                            '--seed', '0'])
    names = sorted(p.name for p in (workdir / 'figures').iterdir())
    assert names == [f'fakes_dataset_{model_name}_{kind}.png' for kind in FIGURES[script]]
    stdout = capsys.readouterr().out
    if script == 'numerical_analysis':
        assert (result['model'], result['n_real'], result['n_fake']) == \
            (model_name, TINY_COUNTS['fakes_dataset']['real'], TINY_COUNTS['fakes_dataset']['fake'])
    if script == 'grad_cam_analysis':
        expected = f'Grad-CAM of {model_name}.{CAM_LAYERS[model_name]}'
        assert [t.split(' on ')[0] for t in titles] == [expected] * 2
        # The printed verdicts are a plain forward pass on the images the script draws.
        model = load_trained_model(checkpoints[model_name], CPU)
        drawn = gca.draw_one_per_class(load_dataset('fakes_dataset', 'test', data_root), seed=0)
        with torch.no_grad():
            probabilities = torch.softmax(model(torch.stack([drawn[0], drawn[1]])).float(), dim=1)
        for label in (0, 1):
            predicted = int(probabilities[label].argmax())
            assert (f'{CLASS_NAMES[label]} image: predicted {CLASS_NAMES[predicted]} '
                    f'(p = {float(probabilities[label, predicted]):.3f})') in stdout
