"""Training recipe options: augmentation presets, best epoch by validation AUC, class weights."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.utils.data import TensorDataset

import train_main
from fmd.data.presets import AUGMENT_PRESETS, train_transform
from helpers import PROJECT_ROOT
from trainer import LoggingParameters, Trainer
from utils import load_dataset


@pytest.mark.parametrize('augment', AUGMENT_PRESETS)
def test_presets_keep_label_and_shape_and_repeat_for_a_seed(data_root: Path, augment: str) -> None:
    dataset = load_dataset('fakes_dataset', 'train', data_root, augment=augment)
    for index in (0, len(dataset) - 1):
        torch.manual_seed(11)
        first, label = dataset[index]
        torch.manual_seed(11)
        again, label_again = dataset[index]
        assert first.shape == (3, 256, 256) and first.dtype == torch.float32
        assert label == label_again == dataset.image_path(index)[1]
        assert torch.equal(first, again)


def test_forensic_draws_differ_between_seeds(data_root: Path) -> None:
    from faces_dataset import read_rgb

    image = read_rgb(next((data_root / 'fakes_dataset' / 'train' / 'real').glob('*.png')))
    transform = train_transform('forensic')
    draws = []
    for seed in range(6):
        torch.manual_seed(seed)
        draws.append(transform(image))
    assert len({tuple(d.flatten()[:4096].tolist()) for d in draws}) > 1


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Unknown augmentation preset 'strong'"):
        train_transform('strong')


def scripted_validation(trainer: Trainer, accuracies: list[float],
                        scores: list[list[float]], labels: list[int]):
    """validate() returning the given accuracies and leaving the given P(fake) in last_scores."""
    epochs = iter(zip(accuracies, scores, strict=True))

    def validate() -> tuple[float, float]:
        accuracy, epoch_scores = next(epochs)
        trainer.last_scores = (torch.tensor(epoch_scores), torch.tensor(labels))
        return 0.5, accuracy
    return validate


@pytest.mark.parametrize('select_by, expected_epoch', [('val_acc', 3), ('val_auc', 2)])
def test_select_by_picks_the_epoch_the_log_says(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                 select_by: str, expected_epoch: int) -> None:
    x = torch.randn(8, 1)
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    model = nn.Linear(1, 2)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(), 4,
                      TensorDataset(x, y), TensorDataset(x, y), TensorDataset(x, y),
                      device=torch.device('cpu'), num_workers=0, show_progress=False,
                      select_by=select_by)
    labels = [0, 0, 1, 1]
    scores = [[0.6, 0.5, 0.1, 0.3],   # AUC 0.0: every fake below every real
              [0.1, 0.2, 0.8, 0.9],   # AUC 1.0
              [0.1, 0.4, 0.3, 0.9]]   # AUC 0.75
    expected_aucs = [roc_auc_score(labels, s) for s in scores]
    assert expected_aucs == [0.0, 1.0, 0.75]
    monkeypatch.setattr(trainer, 'validate', scripted_validation(trainer, [60.0, 50.0, 70.0], scores,
                                                                 labels))
    record = trainer.run(3, LoggingParameters('Tiny', 'toy', 'SGD', {}))
    assert record['val_auc'] == pytest.approx(expected_aucs)
    assert record['best_epoch'] == expected_epoch
    saved = torch.load(workdir / 'checkpoints' / 'toy_Tiny_SGD.pt', weights_only=True)
    assert saved['epoch'] == expected_epoch and saved['select_by'] == select_by


def test_patience_stops_after_that_many_epochs_without_improvement(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = torch.randn(4, 1), torch.tensor([0, 1, 0, 1])
    model = nn.Linear(1, 2)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(), 4,
                      TensorDataset(x, y), TensorDataset(x, y), TensorDataset(x, y),
                      device=torch.device('cpu'), num_workers=0, show_progress=False, patience=2)
    accuracies = iter([50.0, 60.0, 55.0, 58.0, 99.0])
    monkeypatch.setattr(trainer, 'validate', lambda: (0.5, next(accuracies)))
    record = trainer.run(5, LoggingParameters('Tiny', 'toy', 'SGD', {}))
    assert record['val_acc'] == [50.0, 60.0, 55.0, 58.0]  # epochs 3 and 4 did not improve: stop
    assert record['best_epoch'] == 2


def test_balanced_class_weights_are_inverse_frequencies(data_root: Path) -> None:
    dataset = load_dataset('fakes_dataset', 'train', data_root)  # 4 real, 2 fake
    labels = [dataset.image_path(i)[1] for i in range(len(dataset))]
    expected = compute_class_weight('balanced', classes=np.array([0, 1]), y=np.array(labels))
    assert expected.tolist() == [0.75, 1.5]  # 6 / (2 * 4) and 6 / (2 * 2)
    assert train_main.balanced_class_weights(dataset).tolist() == pytest.approx(expected.tolist())


def test_cosine_schedule_warms_up_then_decays() -> None:
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1.0)
    scheduler = train_main.build_scheduler('cosine', optimizer, epochs=5, warmup_epochs=1)
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    # warm-up from lr/10, then cosine over the 4 remaining epochs: 1, cos steps of pi/4
    expected = [0.1, 1.0] + [0.5 * (1 + np.cos(np.pi * k / 4)) for k in (1, 2, 3)]
    assert rates == pytest.approx(expected)


def test_recipe_table_gives_mean_and_sd_over_seeds_per_group(tmp_path: Path) -> None:
    def row(recipe: str, seed: int, auc: float, ci: tuple[float, float], balanced: float) -> dict:
        return {'checkpoint': f'runs/{recipe}_s{seed}/checkpoints/ciplab_BonusNet_AdamW.pt',
                'model': 'BonusNet', 'trained_on': 'ciplab', 'data_name': 'ciplab', 'auc': auc,
                'auc_ci': list(ci), 'balanced_accuracy': balanced, 'accuracy': 50.0}

    rows = [row('real', 2, 0.70, (0.65, 0.75), 60.0), row('real', 0, 0.60, (0.55, 0.66), 56.0),
            row('real', 1, 0.65, (0.58, 0.71), 58.0), row('assignment', 0, 0.45, (0.40, 0.49), 51.0)]
    rows[-1]['inverted'] = True
    evaluation = tmp_path / 'evaluation.json'
    evaluation.write_text(json.dumps(rows))
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / 'bench' / 'recipe_table.py'),
                             str(evaluation)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # sample sd of 0.60, 0.65, 0.70 = 0.05; of 56, 58, 60 = 2.0; the mean's 95% interval:
    # 0.65 ± t(0.975, 2) * 0.05 / sqrt(3) = 0.65 ± 4.302653 * 0.028868 = 0.65 ± 0.124208
    assert lines[2] == ('| BonusNet | assignment | ciplab | ciplab | 0 | 0.450 ± - | - | [0.400, 0.490] | '
                        '1/1 | 51.0% ± - | 50.0% ± - |')
    assert lines[3] == ('| BonusNet | real | ciplab | ciplab | 0,1,2 | 0.650 ± 0.050 | [0.526, 0.774] | '
                        '[0.550, 0.750] | 0/3 | 58.0% ± 2.0 | 50.0% ± 0.0 |')
    evaluation.write_text(json.dumps([{**rows[0], 'checkpoint': 'runs/unnamed/checkpoints/x.pt'}]))
    bad = subprocess.run([sys.executable, str(PROJECT_ROOT / 'bench' / 'recipe_table.py'),
                          str(evaluation)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.count('\n') == 1 and '<recipe>_s<seed>' in bad.stderr
