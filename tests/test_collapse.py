"""Collapse guard: the pure verdict, the Trainer's per-epoch record, --stop-on-collapse end to end."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

import train_main
from fmd.core import runs
from fmd.evaluate import cli as evaluate
from fmd.evaluate.specs import DataSpec
from fmd.evaluate.tables import evaluation_markdown
from fmd.reporting.facts import RunFacts
from fmd.reporting.front_matter import headline_rows
from fmd.training.collapse import (
    collapse_note,
    collapse_verdict,
    consecutive_collapsed,
    run_collapsed,
)
from helpers import PROJECT_ROOT, script_env
from trainer import LoggingParameters, Trainer


def test_one_class_for_every_image_is_collapsed() -> None:
    verdict = collapse_verdict([0] * 50, [0.69])
    assert verdict.collapsed and verdict.reason == 'every 50 validation images called real'
    assert collapse_verdict([1] * 99 + [0], [0.69]).reason == '99.0% of the 100 validation images called fake'


def test_a_training_loss_that_has_not_moved_is_collapsed() -> None:
    verdict = collapse_verdict([0, 1] * 10, [0.6940, 0.6936, 0.6932])
    assert verdict.collapsed and 'training loss 0.6932 within 0.5% of epoch 1' in verdict.reason


def test_a_learning_epoch_is_not_collapsed() -> None:
    assert not collapse_verdict([0, 1, 1, 0] * 10, [0.69, 0.55]).collapsed
    assert not collapse_verdict([0, 1] * 10, [0.691, 0.698]).collapsed  # warm-up: it rose 1%
    assert not collapse_verdict([0] * 97 + [1] * 3, [0.69]).collapsed  # 97% < 98%
    assert not collapse_verdict(None, [0.69]).collapsed  # epoch 1: no loss to compare, no scores


def test_a_run_is_flagged_by_its_best_or_last_epoch_only() -> None:
    recovered = {'collapsed': [True, False, False], 'best_epoch': 3}
    assert not run_collapsed(recovered) and collapse_note(recovered) == ''
    ended = {'collapsed': [False, True, True, True], 'best_epoch': 1}
    assert run_collapsed(ended) and collapse_note(ended) == ' (COLLAPSED: epochs 2, 3, 4 of 4)'
    assert not run_collapsed({'val_acc': [50.0]})  # a log written before the guard
    assert consecutive_collapsed([True, False, True, True]) == 2
    assert consecutive_collapsed([True, None]) == 0


class ConstantOutput(nn.Module):
    """Logits (1, 0) for every input: a model forced to call every image real."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.tensor([1.0, 0.0]).expand(len(inputs), 2) + 0 * self.unused


def separable() -> TensorDataset:
    """64 1-D samples, fake (1) iff x > 0: a linear model learns it in a few epochs."""
    x = torch.linspace(-2, 2, 64).unsqueeze(1)
    return TensorDataset(x, (x[:, 0] > 0).long())


def run_trainer(model: nn.Module, epochs: int, capsys: pytest.CaptureFixture) -> tuple[dict, str]:
    dataset = separable()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.5), nn.CrossEntropyLoss(), 16,
                      dataset, dataset, dataset, num_workers=0, show_progress=False)
    record = trainer.run(epochs, LoggingParameters('Tiny', 'fakes_dataset', 'SGD', {'lr': 0.5}))
    return record, capsys.readouterr().err


def test_the_guard_fires_on_a_constant_model_and_not_on_a_learning_one(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    record, err = run_trainer(ConstantOutput(), 3, capsys)
    assert record['collapsed'] == [True, True, True]
    lines = [line for line in err.splitlines() if 'collapse guard' in line]
    assert len(lines) == 3 and lines[0].startswith('WARNING: collapse guard: epoch 1 looks collapsed')
    assert 'every 64 validation images called real' in lines[1] and 'training loss' in lines[1]
    checkpoint = torch.load(workdir / 'checkpoints' / 'fakes_dataset_Tiny_SGD.pt', weights_only=True)
    assert checkpoint['collapsed'] is True

    record, err = run_trainer(nn.Linear(1, 2), 3, capsys)
    assert record['collapsed'] == [False, False, False] and 'collapse guard' not in err
    log = json.loads((workdir / 'out' / 'fakes_dataset_Tiny_SGD.json').read_text())
    assert [r['collapsed'] for r in log] == [[True, True, True], [False, False, False]]


def write_blank_dataset(root: Path) -> Path:
    """fakes_dataset whose every image is the same grey square: nothing to learn, a sure collapse."""
    image = Image.new('RGB', (256, 256), (120, 120, 120))
    for split in ('train', 'val', 'test'):
        for label, count in (('real', 4), ('fake', 2)):
            folder = root / 'fakes_dataset' / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                image.save(folder / f'{label}_{index}.png')
    return root


def test_stop_on_collapse_exits_with_one_line_and_keeps_the_previous_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    data = write_blank_dataset(tmp_path / 'data')
    work = tmp_path / 'work'
    work.mkdir()
    monkeypatch.chdir(work)
    train = ['-d', 'fakes_dataset', '--batch-size', '4', '--workers', '0', '--no-progress',
             '--data-root', str(data)]

    train_main.main([*train, '-e', '1'])  # without the flag the guard only warns; the run completes
    assert 'WARNING: collapse guard: epoch 1 looks collapsed (every 6 validation images called' \
        in capsys.readouterr().err
    run = 'fakes_dataset_SimpleNet_Adam'
    checkpoint, log = work / 'checkpoints' / f'{run}.pt', work / 'out' / f'{run}.json'
    assert json.loads(log.read_text())[-1]['collapsed'] == [True]
    before = (checkpoint.read_bytes(), log.read_bytes())

    second = subprocess.run([sys.executable, str(PROJECT_ROOT / 'train_main.py'), *train, '-e', '3',
                             '--stop-on-collapse', '1'], cwd=work, env=script_env(), capture_output=True,
                            text=True, timeout=300)
    assert second.returncode == 1, second.stderr
    assert 'Traceback' not in second.stderr
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith('error: --stop-on-collapse 1: epoch 1 was collapsed (epoch 1: every 6'), last
    assert "previous completed run's checkpoint and log are unchanged" in last
    assert 'Epoch [002]' not in second.stdout  # it stopped after epoch 1
    assert (checkpoint.read_bytes(), log.read_bytes()) == before  # byte for byte


def test_evaluate_and_report_tables_flag_a_collapsed_run(tmp_path: Path) -> None:
    args = argparse.Namespace(bootstrap=20, seed=0)
    scores = (np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    spec = DataSpec('root/alpha', tmp_path / 'alpha' / 'test', 'test')
    rows = [evaluate.evaluation_row(Path(f'{name}.pt'), {'model_name': 'SimpleNet', 'dataset': 'alpha',
                                                         **flag}, spec, scores, None, None, args)
            for name, flag in (('bad', {'collapsed': True}), ('good', {'collapsed': False}), ('old', {}))]
    assert [row['collapsed'] for row in rows] == [True, False, None]
    lines = evaluation_markdown(rows).splitlines()
    assert '| SimpleNet / alpha (COLLAPSED) |' in lines[2]
    assert 'COLLAPSED' not in lines[3] + lines[4]

    run = runs.ASSIGNMENT_RUNS[0]
    record = {'val_acc': [66.7, 66.7], 'test_acc': [66.7, 66.7], 'best_epoch': 1,
              'collapsed': [True, True]}
    facts = types.SimpleNamespace(runs={(run.dataset, run.model): RunFacts(run, record, None)})
    assert headline_rows(facts)[0][0] == 'SimpleNet (COLLAPSED: epochs 1, 2 of 2)'
