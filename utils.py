"""Shared helpers: device, transforms, data-root lookup, dataset/model loading, safe file writes."""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision import transforms

from faces_dataset import FacesDataset


def pick_device() -> torch.device:
    """CUDA if available, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device('cuda')
    if getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available():
        return torch.device('mps')
    return torch.device('cpu')


device = pick_device()

NORMALIZE_MEAN = (0.4914, 0.4822, 0.4465)
NORMALIZE_STD = (0.2023, 0.1994, 0.2010)

TRANSFORM_TRAIN = transforms.Compose([
    transforms.RandomCrop(256, padding=4),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize(mean=NORMALIZE_MEAN, std=NORMALIZE_STD),
])

TRANSFORM_TEST = transforms.Compose([
    transforms.ToTensor(),
    transforms.Normalize(mean=NORMALIZE_MEAN, std=NORMALIZE_STD),
])

DATASET_NAMES = ('fakes_dataset', 'synthetic_dataset')
DATASET_PARTS = ('train', 'val', 'test')
DATA_ROOT_ENV = 'FACES_DATA_ROOT'
COURSE_DATA_DIRS = ('Assignment4_datasets', '../Assignment4_datasets')
DEMO_DATA_DIR = 'demo_datasets'


def unnormalize(images: torch.Tensor) -> torch.Tensor:
    """Undo TRANSFORM_TEST's Normalize: CxHxW or BxCxHxW tensor back to [0, 1] colours."""
    shape = (3, 1, 1) if images.dim() == 3 else (1, 3, 1, 1)
    mean = torch.tensor(NORMALIZE_MEAN, dtype=images.dtype, device=images.device).view(shape)
    std = torch.tensor(NORMALIZE_STD, dtype=images.dtype, device=images.device).view(shape)
    return (images * std + mean).clamp(0.0, 1.0)


class DataRootNotFoundError(FileNotFoundError):
    """No dataset root could be found; the message says where we looked and how to get data."""


def data_root_candidates() -> list[Path]:
    """Folders searched, in order, when neither --data-root nor FACES_DATA_ROOT is given."""
    return [Path(p) for p in (*COURSE_DATA_DIRS, DEMO_DATA_DIR)]


def is_demo_root(root: Path) -> bool:
    """True for a generated stand-in (it carries the generator's MANIFEST.json)."""
    return (root / 'MANIFEST.json').is_file() or root.name == DEMO_DATA_DIR


def resolve_data_root(data_root: str | os.PathLike | None = None, announce: bool = True) -> Path:
    """Find the datasets: explicit argument, else $FACES_DATA_ROOT, else the first existing default."""
    if data_root is not None:
        root, source = Path(data_root), '--data-root'
    elif os.environ.get(DATA_ROOT_ENV):
        root, source = Path(os.environ[DATA_ROOT_ENV]), f'${DATA_ROOT_ENV}'
    else:
        root = next((p for p in data_root_candidates() if p.is_dir()), None)
        source = 'default search'
        if root is None:
            searched = ', '.join(str(p) for p in data_root_candidates())
            raise DataRootNotFoundError(
                f'No dataset folder found (searched --data-root, ${DATA_ROOT_ENV}, {searched}). '
                'Put the course data in ./Assignment4_datasets, point --data-root or '
                f'${DATA_ROOT_ENV} at it, or generate demo data with '
                '`python make_demo_datasets.py --out demo_datasets`.')
    if not root.is_dir():
        raise DataRootNotFoundError(f'Dataset root {root} (from {source}) is not a folder.')
    if announce:
        if is_demo_root(root):
            print(f'*** Using DEMO data from {root} (a generated stand-in, not the course data) ***',
                  file=sys.stderr)
        else:
            print(f'Using data from {root} ({source})', file=sys.stderr)
    return root


def load_dataset(dataset_name: str, dataset_part: str,
                 data_root: str | os.PathLike | None = None) -> Dataset:
    """FacesDataset for one split; train gets TRANSFORM_TRAIN, val/test get TRANSFORM_TEST."""
    if dataset_name not in DATASET_NAMES:
        raise ValueError(f'Unknown dataset {dataset_name!r}; choose one of {list(DATASET_NAMES)}.')
    if dataset_part not in DATASET_PARTS:
        raise ValueError(f'Unknown dataset part {dataset_part!r}; choose one of '
                         f'{list(DATASET_PARTS)}.')
    root = resolve_data_root(data_root, announce=False)
    transform = TRANSFORM_TRAIN if dataset_part == 'train' else TRANSFORM_TEST
    return FacesDataset(str(root / dataset_name / dataset_part), transform=transform)


def _simple_net(pretrained: bool = True) -> nn.Module:
    from models import SimpleNet
    return SimpleNet()


def _xception_based(pretrained: bool = True) -> nn.Module:
    from models import get_xception_based_model
    return get_xception_based_model(pretrained=pretrained)


def _bonus_net(pretrained: bool = True) -> nn.Module:
    from bonus_model import BonusNet
    return BonusNet()


# Builders take `pretrained`; only models with an ImageNet backbone use it. Imports are lazy so a
# script that needs SimpleNet never imports Xception (and never looks for its weights).
MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    'SimpleNet': _simple_net,
    'XceptionBased': _xception_based,
    'BonusNet': _bonus_net,
}
MODEL_ALIASES = {'Xception-Based': 'XceptionBased'}


def canonical_model_name(model_name: str) -> str:
    """Map an accepted spelling (e.g. 'Xception-Based') to its registry name, or raise ValueError."""
    name = MODEL_ALIASES.get(model_name, model_name)
    if name not in MODEL_BUILDERS:
        valid = sorted([*MODEL_BUILDERS, *MODEL_ALIASES])
        raise ValueError(f'Unknown model {model_name!r}; choose one of {valid}.')
    return name


def load_model(model_name: str, pretrained: bool = True) -> nn.Module:
    """Build a fresh model by name; pretrained=False skips ImageNet weights (a checkpoint follows)."""
    return MODEL_BUILDERS[canonical_model_name(model_name)](pretrained=pretrained)


def get_nof_params(model: nn.Module) -> int:
    """Number of trainable parameters (those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_device(model: nn.Module) -> torch.device:
    """The device the model's parameters live on (CPU for a parameter-free model)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device('cpu')


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) for reproducible runs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_workers() -> int:
    """DataLoader workers: one per core, at most 4 (bench/bench_train.py: 2 beat 1 on 2 cores)."""
    return min(4, os.cpu_count() or 1)


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temp file in the same folder, then rename: never a half-written file."""
    _atomic_write(Path(path), lambda handle: torch.save(obj, handle), 'wb')


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    """json.dump to a temp file in the same folder, then rename."""
    _atomic_write(Path(path), lambda handle: json.dump(obj, handle, indent=2), 'w')


def read_json_list(path: str | os.PathLike) -> list:
    """Read a JSON list log; a corrupt or non-list file is moved aside (never lost) and [] returned."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        if isinstance(data, list):
            return data
        problem = f'holds a {type(data).__name__}, not a list'
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problem = f'is not valid JSON ({error})'
    backup = path.with_name(f'{path.name}.corrupt-{time.strftime("%Y%m%d-%H%M%S")}')
    os.replace(path, backup)
    print(f'WARNING: {path} {problem}; moved it to {backup} and started a new log.',
          file=sys.stderr)
    return []


class CheckpointMismatchError(ValueError):
    """A checkpoint does not belong to the model it is being loaded into."""


def load_checkpoint(model: nn.Module, checkpoint_path: str | os.PathLike,
                    model_name: str) -> dict:
    """Load checkpoint['model'] into model (weights_only); a wrong architecture is a named error."""
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint {path} not found; train {model_name} first '
                                '(see README: train_main.py).')
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(checkpoint, dict) or 'model' not in checkpoint:
        raise CheckpointMismatchError(f'{path} is not a training checkpoint (no "model" entry).')
    state = checkpoint['model']
    expected = model.state_dict()
    saved_name = checkpoint.get('model_name')
    problems = []
    if saved_name is not None and saved_name != model_name:
        problems.append(f'it was saved from {saved_name}')
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing:
        problems.append(f'{len(missing)} missing keys (first: {missing[0]})')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected keys (first: {unexpected[0]})')
    if wrong_shape:
        problems.append(f'{len(wrong_shape)} keys of another shape (first: {wrong_shape[0]})')
    if problems:
        raise CheckpointMismatchError(
            f'{path} is not a {model_name} checkpoint: {"; ".join(problems)}. '
            f'Pass the checkpoint that train_main.py wrote for -m {model_name}.')
    model.load_state_dict(state)
    return checkpoint


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--data-root, --seed and --workers, shared by every script."""
    parser.add_argument('--data-root', default=None,
                        help=f'folder holding fakes_dataset/ and synthetic_dataset/ (default: '
                             f'${DATA_ROOT_ENV}, else ./Assignment4_datasets, '
                             '../Assignment4_datasets, ./demo_datasets)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument('--workers', type=int, default=default_workers(),
                        help='DataLoader worker processes (default: %(default)s)')
    return parser


def add_analysis_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """-m/-cpp/-d for the analysis scripts, plus the common arguments."""
    parser.add_argument('-m', '--model', required=True, help='model name, e.g. SimpleNet')
    parser.add_argument('-cpp', '--checkpoint_path', required=True,
                        help='checkpoint written by train_main.py')
    parser.add_argument('-d', '--dataset', required=True, choices=DATASET_NAMES,
                        help='dataset whose test split is analysed')
    return add_common_args(parser)


def load_trained_model(model_name: str, checkpoint_path: str | os.PathLike) -> nn.Module:
    """Build model_name, load its checkpoint, move it to `device` and switch to eval mode."""
    model = load_model(model_name, pretrained=False)
    load_checkpoint(model, checkpoint_path, canonical_model_name(model_name))
    return model.to(device).eval()


def load_analysis_inputs(args: argparse.Namespace) -> tuple[str, Path, nn.Module, Dataset]:
    """For the analysis scripts: model name, data root, trained model and test split.

    Bad input (unknown model, missing data or checkpoint, wrong architecture) exits with one line.
    """
    try:
        model_name = canonical_model_name(args.model)
        data_root = resolve_data_root(args.data_root)
        model = load_trained_model(model_name, args.checkpoint_path)
        test_dataset = load_dataset(args.dataset, 'test', data_root)
    except (CheckpointMismatchError, FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
    return model_name, data_root, model, test_dataset
