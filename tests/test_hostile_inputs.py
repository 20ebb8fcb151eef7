"""Hostile inputs end in one line: a decompression bomb in every image reader, numbers past their
bounds, a checkpoint without model_name, and --resume of another run's interrupted state."""
from __future__ import annotations

import argparse
import importlib
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

from faces_dataset import FacesDataset, ImageReadError, read_rgb, read_rgb_tensor
from fmd.core import cli
from fmd.core.images import MAX_PIXELS, open_image
from fmd.data import face_crop
from fmd.training.checkpoints import CheckpointError, CheckpointMismatchError, load_trained_model
from helpers import PROJECT_ROOT, one_line_exit, script_env, untrained_checkpoints
from utils import check_images

BOMB_SIDE = 30_000  # 900,000,000 pixels in a 57-byte file


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height grey pixels and holds no pixel data (a bomb needs no more to
    be refused: the size is in the header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(b''))
                     + chunk(b'IEND', b''))
    return path


def bomb(path: Path) -> Path:
    return png_header(path, BOMB_SIDE, BOMB_SIDE)


BOMB_REASON = f'900,000,000 pixels, more than the limit of {MAX_PIXELS:,} (a decompression bomb?)'


@pytest.fixture
def bomb_root(data_root: Path, tmp_path: Path) -> Path:
    """A copy of the tiny fakes_dataset with a bomb among the train and the test fakes."""
    shutil.copytree(data_root / 'fakes_dataset', tmp_path / 'root' / 'fakes_dataset')
    for split in ('train', 'test'):
        bomb(tmp_path / 'root' / 'fakes_dataset' / split / 'fake' / 'zz_bomb.png')
    return tmp_path / 'root'


def test_the_pixel_limit_is_exact_and_both_pil_bomb_levels_are_one_error(tmp_path: Path) -> None:
    assert MAX_PIXELS == 5 * 17_895_697  # so a 5-pixel-wide image meets the limit exactly
    with open_image(png_header(tmp_path / 'at.png', 5, 17_895_697)) as image:
        assert image.size == (5, 17_895_697)
    # one row more: over the limit, within PIL's warning range; 30000 x 30000: PIL's error range
    for name, (width, height), pixels in (('over.png', (5, 17_895_698), '89,478,490'),
                                          ('bomb.png', (BOMB_SIDE, BOMB_SIDE), '900,000,000')):
        with pytest.raises(ImageReadError) as raised, open_image(png_header(tmp_path / name, width, height)):
            pass
        assert str(raised.value) == (f'Cannot read image {tmp_path / name}: {pixels} pixels, more than the '
                                     f'limit of {MAX_PIXELS:,} (a decompression bomb?). Remove or replace '
                                     'the file.')


def test_every_image_reader_refuses_a_bomb_naming_it(bomb_root: Path) -> None:
    path = bomb_root / 'fakes_dataset' / 'test' / 'fake' / 'zz_bomb.png'
    expected = f'Cannot read image {path}: {BOMB_REASON}. Remove or replace the file.'
    for read in (read_rgb, read_rgb_tensor):  # the dataset's two decoders (libpng never sees it)
        with pytest.raises(ImageReadError) as raised:
            read(path)
        assert str(raised.value) == expected
    with pytest.raises(ImageReadError) as raised:  # the image check of every loader
        check_images(FacesDataset(str(path.parent.parent)))
    assert str(raised.value) == expected
    with pytest.raises(face_crop.InputReadError) as raised:  # fmd.detect and fmd.prepare
        face_crop.read_image_rgb(path)
    assert raised.value.reason == BOMB_REASON


def test_the_tools_end_a_bomb_in_one_line(bomb_root: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    from fmd.detect import cli as detect
    from fmd.evaluate import cli as evaluate
    from fmd.explain import cli as explain
    from fmd.prepare import cli as prepare

    path = bomb_root / 'fakes_dataset' / 'test' / 'fake' / 'zz_bomb.png'
    checkpoint = untrained_checkpoints(tmp_path, ('SimpleNet',))['SimpleNet']
    expected = f'error: Cannot read image {path}: {BOMB_REASON}. Remove or replace the file.'
    assert one_line_exit(capsys, explain.main, [str(path), '--checkpoint', str(checkpoint)]) == (1, expected)
    assert one_line_exit(capsys, evaluate.main, ['--checkpoint', str(checkpoint), '--data',
                                                 str(bomb_root / 'fakes_dataset'), '--out',
                                                 str(tmp_path / 'ev')]) == (1, expected)
    assert one_line_exit(capsys, detect.main, [str(path), '--checkpoint', str(checkpoint), '--workers', '0',
                                               '--out', str(tmp_path / 'det'), '--no-progress']) == \
        (1, f'error: {path}: cannot read it: {BOMB_REASON}')
    src = tmp_path / 'src'
    for label in ('real', 'fake'):
        (src / label).mkdir(parents=True)
    bomb(src / 'fake' / 'bomb.png')
    shutil.copy(bomb_root / 'fakes_dataset' / 'test' / 'real' / 'real_000.png', src / 'real')
    assert prepare.main([str(src), '--out', str(tmp_path / 'prep'), '--name', 'x', '--detector', 'none',
                         '--workers', '1', '--no-progress']) == 0
    assert (tmp_path / 'prep' / 'x' / 'skipped.csv').read_text().splitlines()[1:] == \
        [f'fake/bomb.png,"unreadable: {BOMB_REASON}"']


def test_training_on_a_split_with_a_bomb_is_one_line(bomb_root: Path, tmp_path: Path) -> None:
    """The analysis scripts load their data as train_main.py does (utils.load_dataset)."""
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / 'train_main.py'), '-d', 'fakes_dataset',
                             '-m', 'SimpleNet', '--data-root', str(bomb_root), '--workers', '0',
                             '--no-progress'], cwd=tmp_path, env=script_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr
    path = Path('fakes_dataset') / 'train' / 'fake' / 'zz_bomb.png'  # the first split checked
    assert result.stderr.strip().splitlines()[-1] == \
        f'error: Cannot read image {bomb_root / path}: {BOMB_REASON}. Remove or replace the file.'


# ----------------------------------------------------------------------------- bounds

def parse_error(module: str, argv: list[str], capsys: pytest.CaptureFixture) -> str:
    parser: argparse.ArgumentParser = importlib.import_module(module).build_parser()
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(argv)
    assert stop.value.code == cli.EXIT_USAGE
    return capsys.readouterr().err.strip().splitlines()[-1]


HUGE = '99999999999999999999'


@pytest.mark.parametrize('module, required', [
    ('fmd.detect.cli', ['x.png', '--checkpoint', 'c.pt']),
    ('fmd.evaluate.cli', ['--checkpoint', 'c.pt', '--data', 'd']),
    ('train_main', []),
])
def test_a_huge_batch_size_is_a_usage_error_naming_the_flag(module: str, required: list[str],
                                                            capsys: pytest.CaptureFixture) -> None:
    assert parse_error(module, [*required, '--batch-size', HUGE], capsys).endswith(
        f'error: argument --batch-size/--batch_size/-b: must be an integer in 1..65536, got {HUGE}')


@pytest.mark.parametrize('module, argv, message', [
    ('fmd.detect.cli', ['x', '--checkpoint', 'c', '--frames-per-video', '257'],
     '--frames-per-video: must be an integer in 1..256, got 257'),
    ('fmd.prepare.cli', ['s', '--out', 'o', '--name', 'n', '--frames-per-video', '0'],
     '--frames-per-video: must be an integer in 1..256, got 0'),
    ('fmd.evaluate.cli', ['--checkpoint', 'c', '--data', 'd', '--bootstrap', '100001'],
     '--bootstrap: must be an integer in 1..100000, got 100001'),
    ('numerical_analysis', ['-m', 'SimpleNet', '-cpp', 'c', '-d', 'x', '--bootstrap', '0'],
     '--bootstrap: must be an integer in 1..100000, got 0'),
    ('fmd.detect.cli', ['x', '--checkpoint', 'c', '--size', '1025'], '--size: must be an integer in 8..1024'),
])
def test_counts_past_their_bounds_are_usage_errors(module: str, argv: list[str], message: str,
                                                   capsys: pytest.CaptureFixture) -> None:
    assert message in parse_error(module, argv, capsys)


def test_too_many_workers_are_clamped_with_a_note(capsys: pytest.CaptureFixture) -> None:
    most = 4 * cli.usable_cores()
    assert cli.max_workers() == most
    assert cli.workers_arg(str(most)) == most and capsys.readouterr().err == ''
    for parser in (importlib.import_module(m).build_parser() for m in ('fmd.detect.cli', 'fmd.evaluate.cli')):
        required = ['x', '--checkpoint', 'c'] if parser.prog == 'faces-detect' else ['--checkpoint', 'c',
                                                                                        '--data', 'd']
        assert parser.parse_args([*required, '--workers', '100000']).workers == most
        assert capsys.readouterr().err == (f'note: --workers 100000 is more than 4 per usable core; using '
                                           f'{most} ({cli.usable_cores()} usable cores)\n')


# ----------------------------------------------------------------------------- checkpoints

def test_a_checkpoint_without_model_name_gets_advice_without_m(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    from fmd.detect import cli as detect

    path = untrained_checkpoints(tmp_path, ('SimpleNet',))['SimpleNet']
    saved = torch.load(path, weights_only=True)
    del saved['model_name']
    torch.save(saved, path)
    expected = (f'{path} does not record which model it holds (no model_name key), so the model cannot be '
                'built from it; pass a checkpoint that train_main.py wrote (it records model_name).')
    with pytest.raises(CheckpointError) as raised:
        load_trained_model(path, torch.device('cpu'))
    assert str(raised.value) == expected and '-m' not in expected
    assert one_line_exit(capsys, detect.main, [str(path), '--checkpoint', str(path), '--workers', '0',
                                               '--no-progress', '--out', str(tmp_path / 'o')]) == \
        (1, f'error: {expected}')


def interrupted_state(model_name: str, record_model: str | None) -> dict:
    """What Trainer._state saves, for a fresh `model_name` with Adam, its record naming `record_model`."""
    from fmd.core.registry import build_model

    model = build_model(model_name, pretrained=False)
    optimizer = torch.optim.Adam(model.parameters())
    return {'epoch': 1, 'model': model.state_dict(), 'optimizer': optimizer.state_dict(), 'scaler': {},
            'record': {'model': record_model, 'dataset': 'fakes_dataset', 'optimizer': {'name': 'Adam'}},
            'best': {}, 'stale_epochs': 0, 'rng': {}}


def test_resume_checks_whose_state_it_found(tmp_path: Path) -> None:
    from fmd.core.registry import build_model
    from fmd.training.checkpoints import check_resumable
    from trainer import LoggingParameters

    model = build_model('SimpleNet', pretrained=False)
    optimizer = torch.optim.Adam(model.parameters())
    run = LoggingParameters('SimpleNet', 'fakes_dataset', 'Adam', {})
    check_resumable(interrupted_state('SimpleNet', 'SimpleNet'), 'state.pt', model, optimizer, run)  # fits
    with pytest.raises(CheckpointMismatchError, match=r"^--resume: state.pt does not fit SimpleNet: \d+ "
                                                      r"problems with its weights \(first: missing key "):
        check_resumable(interrupted_state('BonusNet', None), 'state.pt', model, optimizer, run)
    parameters = list(model.parameters())
    sgd = torch.optim.SGD([{'params': parameters[:2]}, {'params': parameters[2:]}])
    with pytest.raises(CheckpointMismatchError, match=r'the optimizer state in state\.pt does not fit'):
        check_resumable(interrupted_state('SimpleNet', 'SimpleNet'), 'state.pt', model, sgd, run)
    with pytest.raises(CheckpointMismatchError,
                       match=r'state\.pt is not the resumable state of an interrupted run \(no epoch, rng\)'):
        check_resumable({k: v for k, v in interrupted_state('SimpleNet', 'SimpleNet').items()
                         if k not in ('epoch', 'rng')}, 'state.pt', model, optimizer, run)


def test_resume_of_another_models_state_is_one_line(data_root: Path, tmp_path: Path) -> None:
    state = tmp_path / 'checkpoints' / 'fakes_dataset_SimpleNet_Adam.interrupted.pt'
    state.parent.mkdir()
    torch.save(interrupted_state('BonusNet', 'BonusNet'), state)
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / 'train_main.py'), '-d', 'fakes_dataset', '-m',
                             'SimpleNet', '--data-root', str(data_root), '--workers', '0', '--no-progress',
                             '--resume'], cwd=tmp_path, env=script_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        'error: --resume: checkpoints/fakes_dataset_SimpleNet_Adam.interrupted.pt was left by a run of model '
        'BonusNet, not by this run (model SimpleNet, dataset fakes_dataset, optimizer Adam); resume with the '
        'flags that run was started with, or start this run without --resume (the file is then replaced '
        'after its first epoch).')
