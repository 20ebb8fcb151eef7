"""torchrun data parallelism on CPU (gloo): exact whole-split metrics, rank-0 files, the batch rule."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed
from torch import nn
from torch.utils.data import DistributedSampler

import train_main
from fmd.core.atomic_io import RunLock
from fmd.core.runs import checkpoint_path, interrupted_checkpoint_path, lock_path, log_path
from fmd.training.checkpoints import load_trained_model
from fmd.training.distributed import SINGLE, eval_shards, unique_train_samples
from helpers import PROJECT_ROOT, make_split, run_script
from trainer import Trainer
from utils import load_dataset

pytestmark = pytest.mark.skipif(not torch.distributed.is_available()
                                or not torch.distributed.is_gloo_available(),
                                reason='torch.distributed with gloo is needed')

# Odd split sizes: 2 processes cannot share them evenly, so padding or a double count would show.
ODD_COUNTS = {'train': (4, 3), 'val': (3, 2), 'test': (4, 3)}
DATASET, MODEL = 'fakes_dataset', 'BonusNet'  # BonusNet: tiny, and its BatchNorm must stay in sync
GLOBAL_BATCH, PROCESSES = 4, 2
RUN = (DATASET, MODEL, 'Adam')


def torchrun_command(*args: str, processes: int = PROCESSES) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc_per_node=N train_main.py ...`."""
    return [sys.executable, '-m', 'torch.distributed.run', '--standalone',
            f'--nproc_per_node={processes}', str(PROJECT_ROOT / 'train_main.py'), *args]


def train_args(data_root: Path, epochs: int = 1) -> list[str]:
    return ['-d', DATASET, '-m', MODEL, '-e', str(epochs), '--batch-size', str(GLOBAL_BATCH),
            '--data-root', str(data_root), '--workers', '0', '--no-progress']


def script_env() -> dict[str, str]:
    return {**os.environ, 'PYTHONPATH': str(PROJECT_ROOT), 'OMP_NUM_THREADS': '1'}


@pytest.fixture(scope='module')
def odd_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fakes_dataset with 7 train, 5 val and 7 test images."""
    root = tmp_path_factory.mktemp('odd_data')
    for index, (split, (n_real, n_fake)) in enumerate(ODD_COUNTS.items()):
        make_split(root / DATASET / split, n_real, n_fake, seed=40 + index)
    return root


@pytest.fixture(scope='module')
def ddp_run(odd_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A folder where torchrun trained BonusNet for one epoch on 2 CPU processes; and its stdout."""
    workspace = tmp_path_factory.mktemp('ddp_run')
    result = subprocess.run(torchrun_command(*train_args(odd_data)), cwd=workspace, env=script_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f'torchrun failed:\n{result.stdout}\n{result.stderr}'
    return workspace, result.stdout


def last_record(workspace: Path) -> dict:
    return json.loads((workspace / log_path(*RUN)).read_text())[-1]


# --- the pieces, in one process ---------------------------------------------------------------

@pytest.mark.parametrize(('n', 'batch', 'world'), [(5, 2, 2), (7, 2, 2), (7, 3, 4), (1, 4, 3), (32, 8, 3)])
def test_eval_shards_cover_every_sample_once_in_whole_batches(n: int, batch: int, world: int) -> None:
    shards = eval_shards(n, batch, world)
    assert [i for shard in shards for i in shard] == list(range(n))
    assert all(shard.start % batch == 0 for shard in shards if len(shard))


@pytest.mark.parametrize(('n', 'world'), [(7, 2), (5, 4), (2, 3), (8, 2)])
def test_unique_train_samples_drop_exactly_the_distributed_sampler_padding(n: int, world: int) -> None:
    seen = []
    for rank in range(world):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=3)
        seen += list(sampler)[:unique_train_samples(n, rank, world)]
    assert sorted(seen) == list(range(n))


def test_single_process_context_changes_nothing() -> None:
    model = nn.Linear(1, 2)
    parts = [torch.tensor([0.25, 0.5]), torch.tensor([0.75])]
    assert SINGLE.wrap(model) is model
    assert SINGLE.sampler(range(5), True, 2, 0) is None
    assert SINGLE.sum(1.5, 3, 4) == (1.5, 3, 4)
    assert torch.equal(SINGLE.gather(parts, 3, 2, torch.float32), torch.tensor([0.25, 0.5, 0.75]))
    assert SINGLE.from_main(lambda: 7) == 7


def test_global_batch_must_split_evenly_across_processes(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '2')
    with pytest.raises(SystemExit) as exit_info:
        train_main.parse_args(['-b', '3'])
    assert exit_info.value.code == 2
    assert 'does not split evenly across 2 processes' in capsys.readouterr().err
    assert train_main.parse_args(['-b', '4']).batch_size == 4


# --- torchrun, 2 processes ---------------------------------------------------------------------

def test_logged_metrics_equal_a_single_process_evaluation_of_the_checkpoint(
        ddp_run: tuple[Path, str], odd_data: Path) -> None:
    workspace, stdout = ddp_run
    record = last_record(workspace)
    assert (record['world_size'], record['backend'], record['batch_size']) == (2, 'gloo', GLOBAL_BATCH)
    assert f'/{sum(ODD_COUNTS["train"])})' in stdout  # "(correct/7)": padding trained on, not counted
    assert stdout.count('Epoch [001] |') == 1  # only rank 0 prints

    model = load_trained_model(workspace / checkpoint_path(*RUN), torch.device('cpu'), MODEL)
    splits = {part: load_dataset(DATASET, part, odd_data) for part in ODD_COUNTS}
    # One process evaluating with each rank's batch size forms the very batches the ranks did.
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(),
                      GLOBAL_BATCH // PROCESSES, splits['train'], splits['val'], splits['test'],
                      num_workers=0, show_progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank ran (OMP_NUM_THREADS=1): the same kernels, the same floats
    try:
        val_loss, val_acc = trainer.validate()
        scores, labels = trainer.last_scores
        test_loss, test_acc = trainer.test()
    finally:
        torch.set_num_threads(threads)
    assert len(labels) == sum(ODD_COUNTS['val'])
    from sklearn.metrics import roc_auc_score

    assert (record['val_loss'][0], record['val_acc'][0], record['test_loss'][0], record['test_acc'][0]) \
        == (val_loss, val_acc, test_loss, test_acc)
    assert record['val_auc'][0] == float(roc_auc_score(labels.numpy(), scores.numpy()))


def test_checkpoint_is_the_plain_model_and_loads_in_numerical_analysis(
        ddp_run: tuple[Path, str], odd_data: Path) -> None:
    workspace, _ = ddp_run
    state = torch.load(workspace / checkpoint_path(*RUN), weights_only=True)['model']
    assert not any(key.startswith('module.') for key in state)
    run_script('numerical_analysis.py', '-m', MODEL, '--checkpoint', str(checkpoint_path(*RUN)),
               '-d', DATASET, '--data-root', str(odd_data), '--workers', '0', cwd=workspace)
    metrics = json.loads((workspace / 'out' / f'{DATASET}_{MODEL}_metrics.json').read_text())
    assert metrics['n_real'] + metrics['n_fake'] == sum(ODD_COUNTS['test'])
    assert metrics['accuracy_at_argmax_percent'] == pytest.approx(last_record(workspace)['test_acc'][0])


def test_one_and_two_process_runs_log_the_same_keys(ddp_run: tuple[Path, str], odd_data: Path,
                                                     tmp_path: Path) -> None:
    run_script('train_main.py', *train_args(odd_data), cwd=tmp_path)
    single = last_record(tmp_path)
    assert set(single) == set(last_record(ddp_run[0]))
    assert (single['world_size'], single['backend']) == (1, None)


def test_a_second_job_of_the_same_run_stops_at_start(odd_data: Path, tmp_path: Path) -> None:
    with RunLock(tmp_path / lock_path(*RUN), 'the first job'):
        result = subprocess.run(torchrun_command(*train_args(odd_data)), cwd=tmp_path, env=script_env(),
                                capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert result.stderr.count('is already running in process') == PROCESSES  # every rank stops
    assert not (tmp_path / checkpoint_path(*RUN)).exists()


def worker_pids(launcher: int) -> dict[int, int]:
    """{LOCAL_RANK: pid} of the train_main.py children of a torchrun process (Linux /proc)."""
    workers = {}
    for entry in Path('/proc').iterdir():
        try:
            if not entry.name.isdigit() or (entry / 'stat').read_text().split()[3] != str(launcher):
                continue
            variables = (entry / 'environ').read_bytes().decode(errors='replace').split('\0')
            environ = dict(item.split('=', 1) for item in variables if '=' in item)
        except OSError:
            continue
        if 'LOCAL_RANK' in environ:
            workers[int(environ['LOCAL_RANK'])] = int(entry.name)
    return workers


@pytest.mark.skipif(not Path('/proc/self/environ').exists(), reason='finds the workers through /proc')
def test_stopping_one_process_ends_the_job_and_keeps_the_completed_run(
        ddp_run: tuple[Path, str], odd_data: Path, tmp_path: Path) -> None:
    workspace = tmp_path
    for path in (checkpoint_path(*RUN), log_path(*RUN)):
        (workspace / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace / path).write_bytes((ddp_run[0] / path).read_bytes())
    completed = {path: (workspace / path).read_bytes() for path in (checkpoint_path(*RUN), log_path(*RUN))}
    launcher = subprocess.Popen(torchrun_command(*train_args(odd_data, epochs=200)), cwd=workspace,
                                env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    try:
        state = workspace / interrupted_checkpoint_path(*RUN)
        deadline = time.monotonic() + 240
        while not state.exists() and launcher.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = worker_pids(launcher.pid)
        assert state.exists() and sorted(workers) == [0, 1], 'the job did not finish an epoch'
        os.kill(workers[1], signal.SIGTERM)  # as if only rank 1 were stopped
        _, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode != 0
    for pid in workers.values():
        assert not Path(f'/proc/{pid}').exists(), 'a worker outlived the job'
    assert 'continue with the same command plus --resume' in stderr  # rank 0 says what was kept
    for path, content in completed.items():
        assert (workspace / path).read_bytes() == content, f'{path} changed'
    assert state.exists()
