"""Trainer: per-sample mean loss, percent accuracy, untouched evaluation, checkpoints and logs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import trainer as trainer_module
from trainer import LoggingParameters, Trainer

# Ten 1-D samples; batches of 4, 4 and 2. The model below predicts "fake" (1) iff x > 0.
X = torch.tensor([[-2.0], [-1.0], [1.0], [2.0], [3.0], [-3.0], [0.5], [-0.5], [4.0], [-4.0]])
Y = torch.tensor([0, 1, 1, 1, 0, 0, 1, 1, 1, 0])


def threshold_model() -> nn.Linear:
    """logits = (0, x): class 1 wins exactly when x > 0."""
    model = nn.Linear(1, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0], [1.0]]))
        model.bias.zero_()
    return model


def hand_loss(x: float, y: int) -> float:
    """Cross entropy of logits (0, x): log(1 + e^x) - x*y."""
    return math.log1p(math.exp(x)) - x * y


EXPECTED_LOSS = sum(hand_loss(x, y) for x, y in zip(X[:, 0].tolist(), Y.tolist(),
                                                     strict=True)) / 10
# Correct: x=1,2 (y=1), -3,-4,-2 (y=0), 0.5 and 4 (y=1); wrong: -1, 3, -0.5 -> 7 of 10.
EXPECTED_ACC = 70.0


def make_trainer(model: nn.Module, lr: float = 0.0, batch_size: int = 4) -> Trainer:
    dataset = TensorDataset(X, Y)
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=lr), nn.CrossEntropyLoss(),
                   batch_size, dataset, dataset, dataset, num_workers=0, show_progress=False)


def test_evaluation_is_per_sample_mean_and_percent() -> None:
    loss, accuracy = make_trainer(threshold_model()).evaluate_model_on_dataloader(
        TensorDataset(X, Y))
    assert loss == pytest.approx(EXPECTED_LOSS, rel=1e-6)
    assert accuracy == pytest.approx(EXPECTED_ACC)
    batch_means = [sum(hand_loss(x, y) for x, y in zip(X[i:i + 4, 0].tolist(),
                                                       Y[i:i + 4].tolist(), strict=True))
                   / len(X[i:i + 4]) for i in (0, 4, 8)]
    assert abs(sum(batch_means) / 3 - EXPECTED_LOSS) > 0.05  # the wrong averaging differs


def test_train_one_epoch_with_zero_lr_matches_hand_values(capsys: pytest.CaptureFixture) -> None:
    trainer = make_trainer(threshold_model())
    trainer.epoch = 1
    loss, accuracy = trainer.train_one_epoch()
    assert loss == pytest.approx(EXPECTED_LOSS, rel=1e-6)
    assert accuracy == pytest.approx(EXPECTED_ACC)
    assert f'Epoch [001] | Loss: {EXPECTED_LOSS:.3f} | Acc: 70.00[%] (7/10)' in \
        capsys.readouterr().out


class RecordingLoss(nn.Module):
    """Cross entropy that remembers every sample's loss and prediction (a second method)."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []
        self.hits: list[bool] = []

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        per_sample = nn.functional.cross_entropy(logits, targets, reduction='none')
        self.losses += per_sample.tolist()
        self.hits += (logits.argmax(1) == targets).tolist()
        return per_sample.mean()


def test_train_one_epoch_averages_over_samples_while_learning() -> None:
    model = threshold_model()
    before = [p.detach().clone() for p in model.parameters()]
    dataset = TensorDataset(X, Y)
    criterion = RecordingLoss()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.5), criterion, 4,
                      dataset, dataset, dataset, num_workers=0, show_progress=False)
    loss, accuracy = trainer.train_one_epoch()
    assert len(criterion.losses) == 10
    assert loss == pytest.approx(sum(criterion.losses) / 10, rel=1e-6)
    assert accuracy == pytest.approx(100.0 * sum(criterion.hits) / 10)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_evaluation_changes_no_parameter_buffer_or_optimizer_state() -> None:
    model = nn.Sequential(nn.Linear(1, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    dataset = TensorDataset(X, Y)
    trainer = Trainer(model, optimizer, nn.CrossEntropyLoss(), 4, dataset, dataset, dataset,
                      num_workers=0, show_progress=False)
    trainer.train_one_epoch()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    exp_avg = [s['exp_avg'].clone() for s in optimizer.state.values()]
    trainer.validate()
    trainer.test()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert optimizer.state_dict()['param_groups'] == optimizer_state['param_groups']
    for saved, now in zip(exp_avg, [s['exp_avg'] for s in optimizer.state.values()],
                          strict=True):
        assert torch.equal(saved, now)
    assert model.training  # evaluation restores the mode it found


def scripted(values: list[tuple[float, float]]):
    iterator = iter(values)
    return lambda: next(iterator)


def test_run_logs_every_epoch_and_keeps_the_best_validation_checkpoint(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = make_trainer(threshold_model(), lr=0.1)
    monkeypatch.setattr(trainer, 'validate', scripted([(0.9, 50.0), (0.5, 80.0), (0.4, 70.0)]))
    monkeypatch.setattr(trainer, 'test', scripted([(1.0, 40.0), (0.6, 65.0), (0.5, 75.0)]))
    saved_epochs = []
    real_save = trainer_module.atomic_torch_save
    monkeypatch.setattr(trainer_module, 'atomic_torch_save',
                        lambda obj, path: (saved_epochs.append((Path(path).name, obj['epoch'])),
                                           real_save(obj, path)))
    params = LoggingParameters('Tiny', 'fakes_dataset', 'SGD', {'lr': 0.1}, extra={'seed': 5})
    record = trainer.run(3, params)

    # The resumable state after every epoch but the last (the results follow it at once), then the
    # best epoch (2: epoch 3 did not improve validation accuracy) as the canonical checkpoint.
    state = 'fakes_dataset_Tiny_SGD.interrupted.pt'
    assert saved_epochs == [(state, 1), (state, 2), ('fakes_dataset_Tiny_SGD.pt', 2)]
    assert not (workdir / 'checkpoints' / state).exists()  # dropped once the run completed
    checkpoint = torch.load(workdir / 'checkpoints' / 'fakes_dataset_Tiny_SGD.pt',
                            weights_only=True)
    assert {'model', 'val_acc', 'test_acc', 'epoch'} <= checkpoint.keys()
    assert (checkpoint['epoch'], checkpoint['val_acc'], checkpoint['test_acc']) == (2, 80.0, 65.0)
    assert checkpoint['model'].keys() == threshold_model().state_dict().keys()

    log = json.loads((workdir / 'out' / 'fakes_dataset_Tiny_SGD.json').read_text())
    assert isinstance(log, list) and log[0] == record
    assert log[0]['model'] == 'Tiny' and log[0]['dataset'] == 'fakes_dataset'
    assert log[0]['optimizer'] == {'name': 'SGD', 'params': {'lr': 0.1}}
    assert log[0]['val_acc'] == [50.0, 80.0, 70.0] and log[0]['test_acc'] == [40.0, 65.0, 75.0]
    assert log[0]['val_loss'] == [0.9, 0.5, 0.4] and log[0]['test_loss'] == [1.0, 0.6, 0.5]
    assert len(log[0]['train_loss']) == len(log[0]['train_acc']) == 3
    assert log[0]['best_epoch'] == 2 and log[0]['seed'] == 5


def test_run_appends_to_the_log_and_backs_up_a_corrupt_one(workdir: Path) -> None:
    params = LoggingParameters('Tiny', 'fakes_dataset', 'SGD', {'lr': 0.0})
    log_path = workdir / 'out' / 'fakes_dataset_Tiny_SGD.json'
    log_path.parent.mkdir()
    log_path.write_text('[{"truncated": ')
    make_trainer(threshold_model()).run(1, params)
    make_trainer(threshold_model()).run(1, params)
    assert len(json.loads(log_path.read_text())) == 2
    backups = list(log_path.parent.glob('*.corrupt-*'))
    assert [b.read_text() for b in backups] == ['[{"truncated": ']
