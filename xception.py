"""Xception (Chollet 2017) with the layer names of the common PyTorch port, and offline-safe weights.

The attribute names match Cadene's `pretrainedmodels` port (also timm's `legacy_xception`), so its
ImageNet file `xception-43020ad28.pth` loads with `load_state_dict(strict=True)`.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_ENV = 'XCEPTION_WEIGHTS'
WEIGHTS_FILE_NAME = 'xception-43020ad28.pth'  # '43020ad28' = sha256 prefix checked on download
WEIGHTS_URLS = (
    f'http://data.lip6.fr/cadene/pretrainedmodels/{WEIGHTS_FILE_NAME}',  # the port's own URL
    f'https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/'
    f'{WEIGHTS_FILE_NAME}',  # timm's mirror of the same file
)
DOWNLOAD_BUDGET_S = 15.0  # every download attempt together, when nothing answers
PROBE_TIMEOUT_S = 4.0  # per host, DNS included


class XceptionWeightsError(ValueError):
    """A weights file cannot be read or does not fit the Xception architecture."""


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 conv (`conv1`) then pointwise 1x1 conv (`pointwise`), both without bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding,
                               groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """Residual block: `reps` x (ReLU, SeparableConv 3x3, BN) in `rep`, max-pool when strided.

    The module order inside `rep` (ReLUs included) fixes the state-dict indices of the port.
    """

    def __init__(self, in_filters: int, out_filters: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True) -> None:
        super().__init__()
        if out_filters != in_filters or stride != 1:
            self.skip = nn.Conv2d(in_filters, out_filters, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(out_filters)
        else:
            self.skip = None
            self.skipbn = None
        widths = [out_filters] * reps if grow_first else [in_filters] * (reps - 1) + [out_filters]
        layers: list[nn.Module] = []
        channels = in_filters
        for width in widths:
            # The first ReLU must not be in place: the block's input also feeds the skip path.
            layers += [nn.ReLU(inplace=bool(layers)),
                       SeparableConv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width)]
            channels = width
        if not start_with_relu:
            layers = layers[1:]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*layers)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        skip = inp if self.skip is None else self.skipbn(self.skip(inp))
        return self.rep(inp) + skip


class Xception(nn.Module):
    """Entry flow (conv1, conv2, blocks 1-3), middle flow (blocks 4-11), exit flow (block 12,
    conv3, conv4), global average pooling and `fc`. Any input of at least 32x32 works."""

    grad_cam_layer_name = 'conv3'  # the assignment's Grad-CAM target (registry.grad_cam_layer)

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, stride=2, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU(inplace=True)
        self.block1 = Block(64, 128, 2, 2, start_with_relu=False)
        self.block2 = Block(128, 256, 2, 2)
        self.block3 = Block(256, 728, 2, 2)
        for index in range(4, 12):
            setattr(self, f'block{index}', Block(728, 728, 3, 1))
        self.block12 = Block(728, 1024, 2, 2, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(1536)
        self.relu3 = nn.ReLU(inplace=True)
        self.conv4 = SeparableConv2d(1536, 2048, 3, padding=1)
        self.bn4 = nn.BatchNorm2d(2048)
        self.relu4 = nn.ReLU(inplace=True)
        self.fc = nn.Linear(2048, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
        self.pretrained = False
        self.pretrained_source: str | None = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW image -> Bx2048x(H/32)x(W/32) feature map (after bn4, before the ReLU)."""
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        for index in range(1, 13):
            x = getattr(self, f'block{index}')(x)
        x = self.relu3(self.bn3(self.conv3(x)))
        return self.bn4(self.conv4(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features -> ReLU -> global average pool -> flatten -> fc."""
        x = F.adaptive_avg_pool2d(self.relu4(self.features(x)), 1)
        return self.fc(torch.flatten(x, 1))


def convert_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Normalise a port weights file: `last_linear.*` -> `fc.*`, 2-D pointwise weights -> 4-D."""
    for wrapper in ('state_dict', 'model'):
        if isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    converted = {}
    for key, value in state.items():
        if key.startswith('last_linear.'):
            key = 'fc.' + key[len('last_linear.'):]
        if key.endswith('pointwise.weight') and torch.is_tensor(value) and value.dim() == 2:
            value = value[:, :, None, None]
        converted[key] = value
    return converted


def load_pretrained_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a weights file (either layout) into model strictly; a mismatch names the first key."""
    path = Path(path)
    try:
        raw = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise XceptionWeightsError(
            f'Cannot read Xception weights file {path}: {error}. Replace it with '
            f'{WEIGHTS_FILE_NAME} from {WEIGHTS_URLS[0]}, or set {WEIGHTS_ENV}=none.') from error
    if not isinstance(raw, Mapping):
        raise XceptionWeightsError(f'Xception weights file {path} holds a {type(raw).__name__}, '
                                   'not a state dict.')
    _load_state(model, convert_state_dict(raw), path)


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    from fmd.core.checkpoint_files import state_dict_problems

    expected = model.state_dict()
    for key, tensor in expected.items():  # absent from pre-2018 files; harmless
        if key.endswith('num_batches_tracked') and key not in state:
            state[key] = tensor.clone()
    problems = state_dict_problems(expected, state)
    if problems:
        raise XceptionWeightsError(
            f'Xception weights file {path} does not match the architecture ({len(problems)} '
            f'problems); first: {problems[0]}. Use {WEIGHTS_FILE_NAME} (layouts fc/last_linear, '
            f'2-D/4-D pointwise accepted), or set {WEIGHTS_ENV}=none to train from scratch.')
    model.load_state_dict(state, strict=True)


def _probe(url: str, timeout: float) -> str | None:
    """None if a TCP connection to url's host (or its proxy) opens within timeout, else why not."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == 'https' else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urllib.parse.urlsplit(proxy if '://' in proxy else f'http://{proxy}')
        host, port = proxy_parts.hostname, proxy_parts.port or 80
    outcome: list[str | None] = []

    def connect() -> None:  # in a thread: getaddrinfo ignores socket timeouts
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(f'{host}:{port} unreachable ({error})')

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f'{host}:{port} did not answer within {timeout:.0f} s'


def _download(model: nn.Module, cache_dir: Path, tried: list[str]) -> Path | None:
    """Fetch the weights into the hub cache within DOWNLOAD_BUDGET_S; the cached path or None."""
    deadline = time.monotonic() + DOWNLOAD_BUDGET_S
    for url in WEIGHTS_URLS:
        remaining = deadline - time.monotonic()
        if remaining < 1:
            tried.append(f'download {url} (skipped: {DOWNLOAD_BUDGET_S:.0f} s budget spent)')
            continue
        problem = _probe(url, min(PROBE_TIMEOUT_S, remaining))
        if problem is not None:
            tried.append(f'download {url} ({problem})')
            continue
        previous_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(max(1.0, deadline - time.monotonic()))
        try:
            state = torch.hub.load_state_dict_from_url(
                url, model_dir=str(cache_dir), map_location='cpu', progress=True,
                check_hash=True, file_name=WEIGHTS_FILE_NAME, weights_only=True)
        except Exception as error:
            tried.append(f'download {url} (failed: {error})')
            continue
        finally:
            socket.setdefaulttimeout(previous_timeout)
        path = cache_dir / WEIGHTS_FILE_NAME
        _load_state(model, convert_state_dict(state), path)
        return path
    return None


def _find_and_load(model: nn.Module) -> Path | None:
    """Apply the lookup order ($XCEPTION_WEIGHTS, hub cache, download); the file used or None."""
    setting = os.environ.get(WEIGHTS_ENV, '').strip()
    if setting.lower() == 'none':
        print(f'Xception: {WEIGHTS_ENV}=none, ImageNet weights not loaded (random init).',
              file=sys.stderr)
        return None
    if setting:
        path = Path(setting).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f'{WEIGHTS_ENV}={setting} but {path} is not a file. Point it at '
                f'{WEIGHTS_FILE_NAME} or set {WEIGHTS_ENV}=none to skip ImageNet weights.')
        load_pretrained_weights(model, path)
        return path
    cache_dir = Path(torch.hub.get_dir()) / 'checkpoints'
    cached = cache_dir / WEIGHTS_FILE_NAME
    if cached.is_file():
        load_pretrained_weights(model, cached)
        return cached
    tried = [f'${WEIGHTS_ENV} (not set)', f'hub cache {cached} (absent)']
    path = _download(model, cache_dir, tried)
    if path is None:
        print(f'WARNING: no Xception ImageNet weights; continuing from RANDOM initialisation '
              f'(model.pretrained=False).\n  Tried: {"; ".join(tried)}.\n'
              f'  Fix: place {WEIGHTS_FILE_NAME} (from {WEIGHTS_URLS[0]}) at {cached}, or set '
              f'{WEIGHTS_ENV}=/path/to/{WEIGHTS_FILE_NAME} ({WEIGHTS_ENV}=none skips the lookup).',
              file=sys.stderr)
    return path


def build_xception_backbone(pretrained: bool = True, **kwargs) -> nn.Module:
    """Xception (1000 classes unless num_classes is given), with ImageNet weights when available.

    Sets `model.pretrained` (weights actually loaded) and `model.pretrained_source` (their file).
    """
    model = Xception(**kwargs)
    if pretrained:
        source = _find_and_load(model)
        if source is not None:
            print(f'Xception: loaded ImageNet weights from {source}', file=sys.stderr)
            model.pretrained, model.pretrained_source = True, str(source)
    return model
