"""Shared fixtures: tiny on-disk datasets in the course layout, made fresh for every test session."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import TINY_COUNTS, make_split, run_script, write_image

# pytest-xdist's workers ignore SIGINT, and a child inherits an ignored signal: the scripts these
# tests start would then never see Ctrl-C. A handler (reset to the default in the child) restores it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Never look for ImageNet weights or touch the network from a test.
os.environ['XCEPTION_WEIGHTS'] = 'none'
torch.set_num_threads(2)


@pytest.fixture(scope='session')
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both datasets, all three splits, 256x256 PNGs, some grayscale/RGBA, a stray .DS_Store."""
    root = tmp_path_factory.mktemp('data')
    for dataset_index, (dataset, counts) in enumerate(TINY_COUNTS.items()):
        for split_index, split in enumerate(('train', 'val', 'test')):
            folder = root / dataset / split
            make_split(folder, counts['real'], counts['fake'], seed=10 * dataset_index + split_index)
            (folder / 'real' / '.DS_Store').write_bytes(b'\x00\x01junk')
    rng = np.random.default_rng(99)
    write_image(root / 'fakes_dataset' / 'train' / 'real' / 'real_001.png', rng, mode='L')
    write_image(root / 'fakes_dataset' / 'train' / 'fake' / 'fake_001.png', rng, mode='RGBA')
    return root


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run inside an empty folder so out/, checkpoints/ and figures/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope='session')
def trained_runs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where train_main.py trained SimpleNet for one epoch on each tiny dataset.

    It holds out/<dataset>_SimpleNet_Adam.json and checkpoints/<dataset>_SimpleNet_Adam.pt.
    """
    workspace = tmp_path_factory.mktemp('runs')
    for dataset in TINY_COUNTS:
        run_script('train_main.py', '-d', dataset, '-m', 'SimpleNet', '-e', '1', '--batch-size', '4',
                   '--data-root', str(data_root), '--workers', '0', '--no-progress',
                   cwd=workspace)
    return workspace


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_run_me.py first (QUICK=1 ./run_me.sh end to end, about 4 minutes): under pytest-xdist
    (--dist loadfile) its worker starts it at once while the other worker takes the remaining files,
    instead of one worker starting it near the end. The order within each file is unchanged."""
    items.sort(key=lambda item: item.path.name != 'test_run_me.py')
