"""Nothing lost, no tracebacks: real subprocesses, real signals, bad data and bad numbers."""
from __future__ import annotations

import ast
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import numerical_analysis
import train_main
from faces_dataset import read_rgb
from fmd.core import atomic_io
from fmd.data.data_root import resolve_data_root
from helpers import PROJECT_ROOT, make_split, one_line_exit, script_env
from trainer import LoggingParameters, NonFiniteLossError, Trainer
from utils import load_dataset

RUN = 'fakes_dataset_SimpleNet_Adam'
TRAIN = ('train_main.py', '-d', 'fakes_dataset', '-m', 'SimpleNet', '--batch-size', '4', '--workers', '1',
         '--no-progress', '--seed', '3')


def start(script: str, *args: str, cwd: Path) -> subprocess.Popen:
    """A project script as a real child process (its own session, so signals reach only it)."""
    return subprocess.Popen([sys.executable, str(PROJECT_ROOT / script), *args], cwd=cwd,
                            env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def run(script: str, *args: str, cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / script), *args], cwd=cwd,
                          env=script_env(), capture_output=True, text=True, timeout=timeout)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f'process ended early: {process.communicate()}'
        assert time.monotonic() < deadline, f'{path} never appeared'
        time.sleep(0.05)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error: '), result.stderr
    for fragment in fragments:
        assert fragment in last, last


@pytest.fixture(scope='module')
def slow_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fakes_dataset with 16 training images: a SimpleNet epoch takes long enough to interrupt."""
    root = tmp_path_factory.mktemp('slow')
    for index, (split, n_real, n_fake) in enumerate((('train', 10, 6), ('val', 3, 2), ('test', 3, 2))):
        make_split(root / 'fakes_dataset' / split, n_real, n_fake, seed=40 + index)
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize('sig, code', [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_keeps_the_completed_run_and_a_resumable_state(slow_data: Path, tmp_path: Path,
                                                                 sig: int, code: int) -> None:
    first = run(*TRAIN, '-e', '1', '--data-root', str(slow_data), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    checkpoint = tmp_path / 'checkpoints' / f'{RUN}.pt'
    log = tmp_path / 'out' / f'{RUN}.json'
    before = (checkpoint.read_bytes(), log.read_bytes())

    second = start(*TRAIN, '-e', '50', '--data-root', str(slow_data), cwd=tmp_path)
    state = tmp_path / 'checkpoints' / f'{RUN}.interrupted.pt'
    wait_for(state, second)  # epoch 1 has finished: the signal lands in epoch 2
    second.send_signal(sig)
    _, stderr = second.communicate(timeout=300)

    assert second.returncode == code, stderr
    assert 'Traceback' not in stderr
    assert f'state after epoch 1 is in checkpoints/{RUN}.interrupted.pt' in stderr
    assert (checkpoint.read_bytes(), log.read_bytes()) == before  # byte for byte
    saved = torch.load(state, weights_only=True)
    assert saved['epoch'] == 1 and {'optimizer', 'model', 'record', 'rng'} <= saved.keys()
    leftovers = [p.name for p in (tmp_path / 'checkpoints').iterdir() if p.name.endswith('.tmp')]
    assert leftovers == []


def test_resume_continues_to_the_same_result_as_an_uninterrupted_run(slow_data: Path,
                                                                     tmp_path: Path) -> None:
    straight, broken = tmp_path / 'straight', tmp_path / 'broken'
    straight.mkdir()
    broken.mkdir()
    args = (*TRAIN, '-e', '2', '--data-root', str(slow_data))
    assert run(*args, cwd=straight).returncode == 0

    process = start(*args, cwd=broken)
    wait_for(broken / 'checkpoints' / f'{RUN}.interrupted.pt', process)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=300)
    if process.returncode == 0:
        pytest.skip('epoch 2 finished before the signal arrived (machine too fast for this test)')
    resumed = run(*args, '--resume', cwd=broken)
    assert resumed.returncode == 0, resumed.stderr
    assert 'Resuming fakes_dataset_SimpleNet_Adam after epoch 1' in resumed.stdout

    expected = json.loads((straight / 'out' / f'{RUN}.json').read_text())[-1]
    got = json.loads((broken / 'out' / f'{RUN}.json').read_text())[-1]
    for key in ('train_loss', 'train_acc', 'val_loss', 'val_acc', 'test_loss', 'test_acc', 'best_epoch'):
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key
    weights = [torch.load(folder / 'checkpoints' / f'{RUN}.pt', weights_only=True)['model']
               for folder in (straight, broken)]
    for key, tensor in weights[0].items():
        torch.testing.assert_close(weights[1][key], tensor, rtol=0, atol=1e-6)


def test_a_second_training_of_the_same_run_fails_at_start(slow_data: Path, tmp_path: Path) -> None:
    first = start(*TRAIN, '-e', '50', '--data-root', str(slow_data), cwd=tmp_path)
    lock = tmp_path / 'checkpoints' / f'{RUN}.lock'
    try:
        wait_for(lock, first)
        while lock.read_text().strip() != str(first.pid):
            time.sleep(0.05)
        second = run(*TRAIN, '-e', '1', '--data-root', str(slow_data), cwd=tmp_path)
        assert_one_line_error(second, f'Training run {RUN} is already running in process {first.pid}')
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=300)
    assert first.returncode == 143


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / 'run.lock'
    lock.write_text('999999')  # written by a process that died without unlocking
    with atomic_io.RunLock(lock, 'run') as held:
        assert lock.read_text() == str(os.getpid()) and held is not None
    assert lock.read_text() == ''


def test_concurrent_appends_to_a_json_log_lose_nothing(tmp_path: Path) -> None:
    log = tmp_path / 'out' / 'log.json'
    code = ('import sys; from fmd.core.atomic_io import append_json_record\n'
            'for i in range(150): append_json_record(sys.argv[1], {"writer": sys.argv[2], "i": i})')
    writers = [subprocess.Popen([sys.executable, '-c', code, str(log), name], env=script_env())
               for name in ('a', 'b')]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    records = json.loads(log.read_text())
    assert len(records) == 300
    assert sorted((r['writer'], r['i']) for r in records) == [(w, i) for w in 'ab' for i in range(150)]


class NaNAfter(torch.nn.Module):
    """Logits that turn NaN from the `after`-th forward pass in training mode."""

    def __init__(self, after: int):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.calls, self.after = 0, after

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
        logits = images.mean(dim=(2, 3))[:, :2] * self.scale
        return logits * float('nan') if self.training and self.calls >= self.after else logits


def test_non_finite_loss_stops_and_keeps_the_previous_checkpoint(data_root: Path, workdir: Path) -> None:
    datasets = [load_dataset('fakes_dataset', part, data_root) for part in ('train', 'val', 'test')]
    params = LoggingParameters('Tiny', 'fakes_dataset', 'SGD', {'lr': 0.1})
    good = NaNAfter(after=10**9)
    Trainer(good, torch.optim.SGD(good.parameters(), lr=0.1), torch.nn.CrossEntropyLoss(), 4,
            *datasets, device=torch.device('cpu'), num_workers=0, show_progress=False).run(1, params)
    checkpoint = workdir / 'checkpoints' / 'fakes_dataset_Tiny_SGD.pt'
    before = checkpoint.read_bytes()

    bad = NaNAfter(after=3)  # epoch 1 has 2 batches: the NaN comes in epoch 2
    trainer = Trainer(bad, torch.optim.SGD(bad.parameters(), lr=0.1), torch.nn.CrossEntropyLoss(), 4,
                      *datasets, device=torch.device('cpu'), num_workers=0, show_progress=False)
    with pytest.raises(NonFiniteLossError, match='training loss became nan at epoch 2, batch 1'):
        trainer.run(3, params)
    assert checkpoint.read_bytes() == before
    assert len(json.loads((workdir / 'out' / 'fakes_dataset_Tiny_SGD.json').read_text())) == 1


def test_huge_learning_rate_is_a_one_line_error(data_root: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    code, line = one_line_exit(capsys, train_main.main, [*TRAIN[1:], '-e', '3', '--lr', '1e30', '-o', 'SGD',
                                                         '--data-root', str(data_root)])
    assert code == 1 and line.startswith('error: '), line
    assert 'training loss became' in line and 'Lower --lr' in line, line
    assert not (tmp_path / 'checkpoints' / 'fakes_dataset_SimpleNet_SGD.pt').exists()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system (tmpfs), for writes the disk refuses; needs the right to mount."""
    disk = tmp_path / 'disk'
    disk.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f'cannot mount a small tmpfs here ({mounted.stderr.strip()}): needs root')
    try:
        yield disk
    finally:
        subprocess.run(['umount', str(disk)], check=True)


def test_a_full_disk_is_one_line_naming_the_file(data_root: Path, tiny_disk: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tiny_disk)
    code, line = one_line_exit(capsys, train_main.main, [*TRAIN[1:], '-e', '1', '--workers', '0',
                                                         '--data-root', str(data_root)])
    assert code == 1, line
    assert line.startswith(f'error: could not write checkpoints/{RUN}.pt: no space left on its disk ('), line
    assert line.endswith(f'free some space and run again (an earlier {RUN}.pt is kept as it was)'), line
    assert not [p for p in tiny_disk.rglob('*') if p.name.endswith('.tmp')]


def test_a_full_disk_stops_the_demo_generator_in_one_line_and_leaves_nothing(
        tiny_disk: Path, capsys: pytest.CaptureFixture) -> None:
    from fmd.demo_data.cli import main as demo_main

    out = tiny_disk / 'demo'
    code = demo_main(['--out', str(out), '--scale', 'starter', '--workers', '1', '--no-progress'])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f'error: no space left on the disk while writing {out}; free some space and run again']
    assert list(tiny_disk.iterdir()) == []  # the build folder went with the failure


def copy_tiny(data_root: Path, target: Path) -> Path:
    """A writable copy of the tiny fakes_dataset to break."""
    import shutil

    shutil.copytree(data_root / 'fakes_dataset', target / 'fakes_dataset')
    return target


@pytest.mark.parametrize('damage, fragments', [
    ('no root', ('Dataset root', 'is not a folder')),
    ('no split', ('Split folder', 'fakes_dataset/val not found')),
    ('no class', ('Dataset folder', 'fakes_dataset/train/fake is missing')),
    ('empty class', ('fakes_dataset/train/fake has no images',)),
    ('zero bytes', ('Cannot read image', 'zero.png: empty file')),
    ('not an image', ('Cannot read image', 'text.png')),
    ('truncated', ('Cannot read image', 'cut.png')),
])
def test_bad_data_is_one_line_naming_the_file(data_root: Path, tmp_path: Path, damage: str,
                                              fragments: tuple[str, ...], monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    root = copy_tiny(data_root, tmp_path / 'data')
    train = root / 'fakes_dataset' / 'train'
    if damage == 'no root':
        root = tmp_path / 'nowhere'
    elif damage == 'no split':
        import shutil
        shutil.rmtree(root / 'fakes_dataset' / 'val')
    elif damage == 'no class':
        import shutil
        shutil.rmtree(train / 'fake')
    elif damage == 'empty class':
        for path in (train / 'fake').iterdir():
            path.unlink()
    elif damage == 'zero bytes':
        (train / 'real' / 'zero.png').write_bytes(b'')
    elif damage == 'not an image':
        (train / 'real' / 'text.png').write_text('not a picture')
    elif damage == 'truncated':
        whole = (train / 'real' / 'real_000.png').read_bytes()
        (train / 'real' / 'cut.png').write_bytes(whole[:len(whole) // 2])
    monkeypatch.chdir(tmp_path)  # in this process: the subprocess tests above prove the script path
    code, line = one_line_exit(capsys, train_main.main, [*TRAIN[1:], '-e', '1', '--data-root', str(root)])
    assert code == 1 and line.startswith('error: '), line
    for fragment in fragments:
        assert fragment in line, line


def test_images_of_other_sizes_are_resized_with_one_warning(data_root: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    root = copy_tiny(data_root, tmp_path / 'data')
    rng = np.random.default_rng(0)
    for name, (width, height) in (('small.png', (64, 64)), ('wide.png', (1000, 300))):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for split in ('train', 'test'):
            Image.fromarray(pixels).save(root / 'fakes_dataset' / split / 'fake' / name)
    monkeypatch.chdir(tmp_path)
    train_main.main([*TRAIN[1:], '-e', '1', '--data-root', str(root)])
    stderr = capsys.readouterr().err
    assert stderr.count('are not 256x256; they are resized to 256x256') == 2  # train, test
    assert 'WARNING: 2 of 8 images in' in stderr


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    values = np.array([[0, 257, 65535], [32896, 1000, 60000]], dtype=np.uint16)
    path = tmp_path / 'deep.png'
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith('I')
    decoded = np.asarray(read_rgb(path))
    expected = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)  # 0, 1, 255, 128, 4, 233
    assert expected.tolist() == [[0, 1, 255], [128, 4, 233]]
    assert (decoded == expected[:, :, None]).all()


@pytest.mark.parametrize('content, fragment', [
    (b'', 'is not a readable checkpoint'),
    (b'PK\x03\x04 truncated zip', 'is not a readable checkpoint'),
    ('weights_only', 'is not a readable checkpoint'),
    ('no model', 'is not a training checkpoint'),
])
def test_bad_checkpoint_files_are_one_line(trained_runs: Path, data_root: Path, tmp_path: Path,
                                           content: bytes | str, fragment: str,
                                           capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / 'bad.pt'
    if content == 'weights_only':
        torch.save({'model': {}, 'evil': Path('x')}, path)  # a pickled class weights_only refuses
    elif content == 'no model':
        torch.save({'weights': torch.zeros(1)}, path)
    else:
        path.write_bytes(content)
    code, line = one_line_exit(capsys, numerical_analysis.main,
                               ['-m', 'SimpleNet', '--checkpoint', str(path), '-d', 'fakes_dataset',
                                '--data-root', str(data_root), '--workers', '0'])
    assert code == 1 and line.startswith('error: ') and str(path) in line and fragment in line, line


def test_the_parent_folder_holding_both_datasets_is_found(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    course = tmp_path / 'Assignment4_datasets'
    for name in ('fakes_dataset', 'synthetic_dataset'):
        (course / name).mkdir(parents=True)
    solution = course / 'solution'
    solution.mkdir()
    monkeypatch.chdir(solution)
    monkeypatch.delenv('FACES_DATA_ROOT', raising=False)
    assert resolve_data_root(announce=False) == Path('..')
    check = subprocess.run([sys.executable, '-m', 'fmd.data.data_root'], env=script_env())
    assert check.returncode == 0  # run_me.sh's "is there course data?" question


def test_outputs_get_the_usual_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_io.atomic_write_json({'a': 1}, tmp_path / 'x.json')
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_corrupt_log_is_reported_before_training(trained_runs: Path, data_root: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / f'{RUN}.json').write_text('{not json')
    monkeypatch.chdir(tmp_path)
    train_main.main([*TRAIN[1:], '-e', '1', '--data-root', str(data_root)])
    assert 'is not valid JSON' in capsys.readouterr().err
    backups = list((tmp_path / 'out').glob(f'{RUN}.json.corrupt-*'))
    assert len(backups) == 1 and backups[0].read_text() == '{not json'
    record = json.loads((tmp_path / 'out' / f'{RUN}.json').read_text())[-1]
    assert record['workers'] == 1


GRADED = ('faces_dataset.py', 'trainer.py', 'models.py', 'xception.py', 'utils.py', 'common.py',
          'train_main.py', 'plot_accuracy_and_loss.py', 'plot_samples_of_faces_datasets.py',
          'numerical_analysis.py', 'saliency_map.py', 'grad_cam_analysis.py', 'bonus_model.py',
          'bonus_main.py')


@pytest.mark.parametrize('module', GRADED)
def test_graded_modules_parse_as_python_3_9(module: str) -> None:
    """The assignment allows Python 3.9: its grammar, no zip(strict=), annotations only postponed."""
    source = (PROJECT_ROOT / module).read_text()
    tree = ast.parse(source, feature_version=(3, 9))
    assert 'from __future__ import annotations' in source or '->' not in source
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'zip':
            assert not any(k.arg == 'strict' for k in node.keywords), f'{module}:{node.lineno}'
