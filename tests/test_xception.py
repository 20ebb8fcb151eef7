"""Xception backbone, the Xception-based detector and the offline-safe ImageNet weight lookup."""
from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from torch import nn

import utils
import xception
from models import get_xception_based_model


def separable(cin: int, cout: int) -> int:
    """Depthwise 3x3 (cin*9) + pointwise 1x1 (cin*cout), no biases."""
    return cin * 9 + cin * cout


def bn(channels: int) -> int:
    return 2 * channels  # weight + bias; running stats are buffers


def block(cin: int, cout: int, reps: int, grow_first: bool = True) -> int:
    """Skip 1x1 conv + BN when the shape changes, plus `reps` (separable conv + BN)."""
    skip = cin * cout + bn(cout) if cin != cout else 0
    widths = [cout] * reps if grow_first else [cin] * (reps - 1) + [cout]
    total, channels = skip, cin
    for width in widths:
        total += separable(channels, width) + bn(width)
        channels = width
    return total


# Chollet (2017), Fig. 5, counted by hand from the architecture table:
#   conv1 3*32*9 = 864, bn1 64; conv2 32*64*9 = 18,432, bn2 128                  ->     19,488
#   block1 64->128: 8,192 + 256 + 8,768 + 256 + 17,536 + 256                     ->     35,264
#   block2 128->256: 32,768 + 512 + 33,920 + 512 + 67,840 + 512                  ->    136,064
#   block3 256->728: 186,368 + 1,456 + 188,672 + 1,456 + 536,536 + 1,456         ->    915,944
#   blocks4-11: 8 * 3 * (536,536 + 1,456)                                        -> 12,911,808
#   block12 728->1024: 745,472 + 2,048 + 536,536 + 1,456 + 752,024 + 2,048      ->  2,039,584
#   conv3 1,582,080 + bn3 3,072; conv4 3,159,552 + bn4 4,096                     ->  4,748,800
#   fc 2048*1000 + 1000                                                          ->  2,049,000
#   total                                                                           22,855,952
BACKBONE_PARAMS = 22_855_952
FC_PARAMS = 2048 * 1000 + 1000
MLP_PARAMS = (2048 * 1000 + 1000) + (1000 * 256 + 256) + (256 * 64 + 64) + (64 * 2 + 2)
XCEPTION_BASED_PARAMS = 23_128_786


@pytest.fixture(autouse=True)
def no_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with XCEPTION_WEIGHTS=none unless it sets its own value."""
    monkeypatch.setenv(xception.WEIGHTS_ENV, 'none')


@pytest.fixture
def network_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every attempt to open a connection or download."""
    calls: list[str] = []

    def refuse(name: str):
        def fake(*args, **kwargs):
            calls.append(name)
            raise OSError(f'test: network access via {name} is forbidden')
        return fake

    monkeypatch.setattr(socket.socket, 'connect', refuse('socket.connect'))
    monkeypatch.setattr(socket, 'create_connection', refuse('socket.create_connection'))
    monkeypatch.setattr(urllib.request, 'urlopen', refuse('urlopen'))
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', refuse('load_state_dict_from_url'))
    return calls


@pytest.fixture(scope='module')
def reference_state() -> dict[str, torch.Tensor]:
    """State dict of a seeded backbone: what a weights file should load back exactly."""
    torch.manual_seed(1)
    return xception.Xception().state_dict()


def to_port_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The layout of the original port file: 2-D pointwise, last_linear, no num_batches_tracked."""
    converted = {}
    for key, value in state.items():
        if key.endswith('num_batches_tracked'):
            continue
        if key.endswith('pointwise.weight'):
            value = value.squeeze(-1).squeeze(-1)
        converted[key.replace('fc.', 'last_linear.') if key.startswith('fc.') else key] = value
    return converted


@pytest.fixture(scope='module')
def weight_files(tmp_path_factory: pytest.TempPathFactory,
                 reference_state: dict[str, torch.Tensor]) -> dict[str, Path]:
    """The reference weights saved in both layouts in circulation."""
    folder = tmp_path_factory.mktemp('weights')
    files = {'fc_4d': folder / 'fc_4d.pth', 'last_linear_2d': folder / 'last_linear_2d.pth'}
    torch.save(reference_state, files['fc_4d'])
    port_state = to_port_layout(reference_state)
    assert port_state['block4.rep.1.pointwise.weight'].shape == (728, 728)
    assert 'last_linear.weight' in port_state and 'fc.weight' not in port_state
    torch.save(port_state, files['last_linear_2d'])
    return files


def assert_state_equal(model: nn.Module, reference: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert state.keys() == reference.keys()
    for key, value in reference.items():
        if not key.endswith('num_batches_tracked'):
            assert torch.equal(state[key], value), key


def test_hand_count_matches_architecture_formula() -> None:
    stages = (bn(32) + 3 * 32 * 9 + bn(64) + 32 * 64 * 9
              + block(64, 128, 2) + block(128, 256, 2) + block(256, 728, 2)
              + 8 * block(728, 728, 3) + block(728, 1024, 2, grow_first=False)
              + separable(1024, 1536) + bn(1536) + separable(1536, 2048) + bn(2048) + FC_PARAMS)
    assert stages == BACKBONE_PARAMS
    assert sum(p.numel() for p in xception.Xception().parameters()) == stages
    assert MLP_PARAMS - FC_PARAMS == XCEPTION_BASED_PARAMS - BACKBONE_PARAMS == 272_834


def test_backbone_parameter_count_and_output_shape() -> None:
    model = xception.build_xception_backbone()
    assert isinstance(model, xception.Xception)
    assert utils.get_nof_params(model) == BACKBONE_PARAMS
    assert sum(p.numel() for p in model.parameters()) == BACKBONE_PARAMS
    assert (model.pretrained, model.pretrained_source) == (False, None)
    assert isinstance(model.conv3, xception.SeparableConv2d)
    assert (model.conv3.pointwise.in_channels, model.conv3.pointwise.out_channels) == (1024, 1536)
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 256, 256)).shape == (2, 1000)


def test_xception_based_model_count_shape_and_all_trainable() -> None:
    model = get_xception_based_model()
    assert utils.get_nof_params(model) == XCEPTION_BASED_PARAMS
    assert all(p.requires_grad for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == XCEPTION_BASED_PARAMS
    assert model.pretrained is False
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 256, 256)).shape == (2, 2)
    model.train()(torch.randn(2, 3, 64, 64)).sum().backward()
    no_grad = [name for name, p in model.named_parameters() if p.grad is None]
    assert no_grad == []


def test_convert_state_dict_normalises_both_layouts() -> None:
    pointwise_2d = torch.arange(6.0).view(3, 2)
    state = {'block1.rep.0.pointwise.weight': pointwise_2d,
             'conv3.pointwise.weight': torch.ones(4, 2, 1, 1),
             'last_linear.weight': torch.ones(5, 2), 'last_linear.bias': torch.zeros(5),
             'bn1.weight': torch.ones(2)}
    converted = xception.convert_state_dict(state)
    assert sorted(converted) == sorted(['block1.rep.0.pointwise.weight', 'conv3.pointwise.weight',
                                        'fc.weight', 'fc.bias', 'bn1.weight'])
    assert converted['block1.rep.0.pointwise.weight'].shape == (3, 2, 1, 1)
    assert torch.equal(converted['block1.rep.0.pointwise.weight'][:, :, 0, 0], pointwise_2d)
    assert converted['conv3.pointwise.weight'].shape == (4, 2, 1, 1)
    assert converted['fc.weight'].shape == (5, 2)
    assert 'last_linear.weight' in state  # the input is left untouched


@pytest.mark.parametrize('layout', ['fc_4d', 'last_linear_2d'])
def test_load_pretrained_weights_in_both_layouts(weight_files: dict[str, Path], layout: str,
                                                 reference_state: dict[str, torch.Tensor]) -> None:
    torch.manual_seed(2)
    model = xception.Xception()
    assert not torch.equal(model.conv1.weight, reference_state['conv1.weight'])
    xception.load_pretrained_weights(model, weight_files[layout])
    assert_state_equal(model, reference_state)


def test_weights_from_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           weight_files: dict[str, Path], network_calls: list[str],
                                           reference_state: dict[str, torch.Tensor]) -> None:
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    monkeypatch.setenv(xception.WEIGHTS_ENV, str(weight_files['last_linear_2d']))
    model = get_xception_based_model()
    assert (model.pretrained, model.pretrained_source) == (True, str(weight_files['last_linear_2d']))
    backbone = {k: v for k, v in reference_state.items() if not k.startswith('fc.')}
    state = model.state_dict()
    for key, value in backbone.items():
        if not key.endswith('num_batches_tracked'):
            assert torch.equal(state[key], value), key
    assert network_calls == []


def test_weights_from_hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                weight_files: dict[str, Path], network_calls: list[str],
                                reference_state: dict[str, torch.Tensor]) -> None:
    cached = tmp_path / 'checkpoints' / xception.WEIGHTS_FILE_NAME
    cached.parent.mkdir()
    cached.symlink_to(weight_files['last_linear_2d'])
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    monkeypatch.delenv(xception.WEIGHTS_ENV)
    model = xception.build_xception_backbone()
    assert (model.pretrained, model.pretrained_source) == (True, str(cached))
    assert_state_equal(model, reference_state)
    assert network_calls == []


def test_weights_none_never_touches_network_or_cache(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path, weight_files: dict[str, Path],
                                                    network_calls: list[str],
                                                    capsys: pytest.CaptureFixture) -> None:
    cached = tmp_path / 'checkpoints' / xception.WEIGHTS_FILE_NAME
    cached.parent.mkdir()
    cached.symlink_to(weight_files['fc_4d'])
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    monkeypatch.setenv(xception.WEIGHTS_ENV, 'none')
    model = xception.build_xception_backbone()
    assert (model.pretrained, model.pretrained_source) == (False, None)
    assert network_calls == []
    assert 'WARNING' not in capsys.readouterr().err


def test_pretrained_false_does_no_lookup(monkeypatch: pytest.MonkeyPatch,
                                         network_calls: list[str]) -> None:
    monkeypatch.setenv(xception.WEIGHTS_ENV, '/no/such/file.pth')  # would raise if consulted
    model = xception.build_xception_backbone(pretrained=False)
    assert (model.pretrained, model.pretrained_source) == (False, None)
    assert network_calls == []


def test_missing_weights_path_is_a_named_error(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    missing = tmp_path / 'nowhere' / 'xception.pth'
    monkeypatch.setenv(xception.WEIGHTS_ENV, str(missing))
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        xception.build_xception_backbone()


def test_mismatching_file_names_the_first_bad_key(tmp_path: Path,
                                                  reference_state: dict[str, torch.Tensor]) -> None:
    state = dict(reference_state)
    state['block2.skip.weight'] = torch.zeros(256, 128)  # 2-D but not a pointwise weight
    del state['conv4.pointwise.weight']
    path = tmp_path / 'bad.pth'
    torch.save(state, path)
    with pytest.raises(xception.XceptionWeightsError) as error:
        xception.load_pretrained_weights(xception.Xception(), path)
    message = str(error.value)
    assert str(path) in message
    assert "first: key 'block2.skip.weight' has shape (256, 128)" in message
    assert '2 problems' in message


def test_unreadable_file_is_a_named_error(tmp_path: Path) -> None:
    path = tmp_path / 'garbage.pth'
    path.write_bytes(b'not a torch file')
    with pytest.raises(xception.XceptionWeightsError, match=re.escape(str(path))):
        xception.load_pretrained_weights(xception.Xception(), path)


def test_xception_based_alias() -> None:
    assert utils.canonical_model_name('Xception-Based') == 'XceptionBased'
    model = utils.load_model('Xception-Based')
    assert utils.get_nof_params(model) == XCEPTION_BASED_PARAMS
    assert isinstance(model.fc, nn.Sequential) and model.fc[-1].out_features == 2


def test_fallback_when_cache_empty_and_download_fails(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    downloads: list[dict] = []

    def failing_download(url: str, **kwargs) -> dict:
        downloads.append({'url': url, **kwargs})
        raise urllib.error.URLError('test: no route to host')

    monkeypatch.delenv(xception.WEIGHTS_ENV)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    monkeypatch.setattr(xception, '_probe', lambda url, timeout: None)  # host "reachable"
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', failing_download)
    timeout_before = socket.getdefaulttimeout()
    model = get_xception_based_model()
    assert (model.pretrained, model.pretrained_source) == (False, None)
    assert [d['url'] for d in downloads] == list(xception.WEIGHTS_URLS)
    assert all(d['check_hash'] and d['progress'] for d in downloads)
    assert socket.getdefaulttimeout() == timeout_before
    err = capsys.readouterr().err
    assert err.count('WARNING') == 1
    assert str(tmp_path / 'checkpoints' / xception.WEIGHTS_FILE_NAME) in err
    assert f'{xception.WEIGHTS_ENV}=/path/to/' in err and 'no route to host' in err


def test_fallback_when_host_unreachable_skips_download(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path, network_calls: list[str],
                                                       capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv(xception.WEIGHTS_ENV)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    model = xception.build_xception_backbone()
    assert model.pretrained is False
    assert 'load_state_dict_from_url' not in network_calls
    assert network_calls.count('socket.create_connection') == len(xception.WEIGHTS_URLS)
    err = capsys.readouterr().err
    assert err.count('WARNING') == 1 and 'unreachable' in err


def test_download_success_loads_into_hub_cache_path(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path,
                                                    reference_state: dict[str, torch.Tensor]
                                                    ) -> None:
    def fake_download(url: str, **kwargs) -> dict:
        assert kwargs['model_dir'] == str(tmp_path / 'checkpoints')
        assert kwargs['weights_only'] and kwargs['check_hash']
        return to_port_layout(reference_state)

    monkeypatch.delenv(xception.WEIGHTS_ENV)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    monkeypatch.setattr(xception, '_probe', lambda url, timeout: None)
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', fake_download)
    model = xception.build_xception_backbone()
    expected_path = tmp_path / 'checkpoints' / xception.WEIGHTS_FILE_NAME
    assert (model.pretrained, model.pretrained_source) == (True, str(expected_path))
    assert_state_equal(model, reference_state)
