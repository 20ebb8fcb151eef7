"""The validation EER threshold: train_main.py stores the best epoch's, fmd.detect decides with it."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from fmd.core.inference import fake_probability, predict
from fmd.detect import cli as detect
from fmd.training.checkpoints import VAL_THRESHOLD_KEY, load_trained_model
from helpers import untrained_checkpoints
from trainer import LoggingParameters, Trainer
from utils import load_dataset

CPU = torch.device('cpu')


def brute_force_eer_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(smallest |FPR - FNR| over every threshold t in the scores, deciding fake when score >= t, and
    the highest t reaching it), by counting."""
    gaps = {}
    for t in np.unique(scores):
        fpr = np.mean(scores[labels == 0] >= t)
        fnr = np.mean(scores[labels == 1] < t)
        gaps[float(t)] = abs(fpr - fnr)
    best = min(gaps.values())
    return best, max(t for t, gap in gaps.items() if gap == best)


def test_brute_force_reference_on_hand_values() -> None:
    # t = 0.4: reals 0.4 >= t (FPR 1/3), fake 0.3 < t (FNR 1/3); every other t leaves a gap of 1/3.
    labels, scores = np.array([0, 0, 0, 1, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8, 0.3, 0.9])
    assert brute_force_eer_threshold(labels, scores) == (0.0, 0.4)


VAL_SCORES = {1: [0.2, 0.6, 0.7, 0.9], 2: [0.1, 0.4, 0.35, 0.8, 0.3, 0.9], 3: [0.5, 0.1, 0.2, 0.3]}
VAL_LABELS = {1: [0, 0, 1, 1], 2: [0, 0, 0, 1, 1, 1], 3: [0, 0, 1, 1]}


def test_trainer_stores_the_best_epochs_validation_eer_threshold(workdir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = TensorDataset(torch.zeros(4, 1), torch.tensor([0, 0, 1, 1]))
    model = nn.Linear(1, 2)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(), 4,
                      dataset, dataset, dataset, num_workers=0, show_progress=False)
    accuracies = iter([50.0, 80.0, 70.0])  # epoch 2 is the best

    def validate() -> tuple[float, float]:
        epoch = trainer.epoch
        trainer.last_scores = (torch.tensor(VAL_SCORES[epoch]), torch.tensor(VAL_LABELS[epoch]))
        return 0.5, next(accuracies)

    def test() -> tuple[float, float]:  # the test pass replaces last_scores: it must not count
        trainer.last_scores = (torch.tensor([0.99, 0.01]), torch.tensor([0, 1]))
        return 0.5, 50.0

    monkeypatch.setattr(trainer, 'validate', validate)
    monkeypatch.setattr(trainer, 'test', test)
    trainer.run(3, LoggingParameters('Tiny', 'fakes_dataset', 'SGD', {'lr': 0.0}))
    checkpoint = torch.load(workdir / 'checkpoints' / 'fakes_dataset_Tiny_SGD.pt', weights_only=True)
    assert checkpoint['epoch'] == 2
    assert checkpoint[VAL_THRESHOLD_KEY] == pytest.approx(0.4)  # the hand case above


def test_train_main_stores_the_validation_eer_threshold(trained_runs: Path, data_root: Path) -> None:
    path = trained_runs / 'checkpoints' / 'fakes_dataset_SimpleNet_Adam.pt'
    stored = torch.load(path, weights_only=True)[VAL_THRESHOLD_KEY]
    model = load_trained_model(path, CPU)
    logits, labels = predict(model, load_dataset('fakes_dataset', 'val', data_root), device=CPU)
    scores, labels = fake_probability(logits).numpy(), labels.numpy()
    nearest = scores[np.argmin(np.abs(scores - stored))]
    assert abs(nearest - stored) < 1e-5  # one of the val scores (the trainer's batches differ slightly)
    fpr, fnr = np.mean(scores[labels == 0] >= nearest), np.mean(scores[labels == 1] < nearest)
    assert abs(fpr - fnr) == brute_force_eer_threshold(labels, scores)[0]


@pytest.fixture(scope='module')
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five 256x256 noise images (scored with --detector none)."""
    folder = tmp_path_factory.mktemp('crops')
    rng = np.random.default_rng(3)
    for index in range(5):
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(folder / f'{index}.png')
    return folder


@pytest.fixture(scope='module')
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained SimpleNet checkpoint without a validation EER threshold."""
    return untrained_checkpoints(tmp_path_factory.mktemp('checkpoints'), ('SimpleNet',))['SimpleNet']


def with_threshold(path: Path, threshold: float, folder: Path) -> Path:
    """A copy of the checkpoint at `path` in `folder` that stores `threshold` as its val EER threshold."""
    checkpoint = torch.load(path, weights_only=True)
    copy = folder / path.name
    torch.save({**checkpoint, VAL_THRESHOLD_KEY: threshold}, copy)
    return copy


def test_detect_uses_the_stored_threshold_and_the_override_wins(crops: Path, plain: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    default = detect.detect_paths([crops], plain, detector='none', device=CPU)
    assert 'stores no val_eer_threshold' in capsys.readouterr().out
    assert {(r.threshold, r.threshold_source) for r in default} == {(0.5, 'default')}
    p_fakes = sorted(r.p_fake for r in default)
    threshold = (p_fakes[1] + p_fakes[2]) / 2  # three of the five are fake at it
    stored = with_threshold(plain, threshold, tmp_path)

    results = detect.detect_paths([crops], stored, detector='none', device=CPU)
    assert [r.verdict for r in results] == ['fake' if r.p_fake >= threshold else 'real' for r in default]
    assert sum(r.verdict == 'fake' for r in results) == 3
    assert {(r.threshold, r.threshold_source) for r in results} == {(threshold, 'checkpoint')}
    given = detect.detect_paths([crops], stored, detector='none', device=CPU, threshold=1.0)
    assert {(r.verdict, r.threshold, r.threshold_source) for r in given} == {('real', 1.0, 'given')}


@pytest.mark.parametrize('argv, value, source, said', [
    ([], 'stored', 'checkpoint', "the checkpoint's validation EER threshold (val_eer_threshold)"),
    (['--threshold', '0.25'], '0.25', 'given', 'given (--threshold)')])
def test_cli_tables_and_summary_say_which_threshold_and_where_from(
        crops: Path, plain: Path, tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], value: str,
        source: str, said: str) -> None:
    stored = with_threshold(plain, 0.123456789, tmp_path)
    value = repr(0.123456789) if value == 'stored' else value
    out = tmp_path / 'out'
    assert detect.main([str(crops), '--checkpoint', str(stored), '--detector', 'none', '--out', str(out),
                        '--no-progress', *argv]) == 0
    for table in ('faces.csv', 'summary.csv'):
        with open(out / table, newline='') as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 5 and {(r['threshold'], r['threshold_source']) for r in rows} == {(value, source)}
    assert f'threshold: p_fake >= {float(value):g} is fake, {said}' in capsys.readouterr().out
