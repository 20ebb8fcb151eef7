"""Trainer.train_one_epoch is the assignment's plain loop, for a classifier and for a detector that owns
its loss; the run's log holds TrainConfig whole, under the keys train_main.py's logs have."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fmd.models.mask_head import MaskedDetector, MaskHead, mask_loss
from fmd.training.config import TrainConfig
from trainer import LoggingParameters, Trainer

SEED = 3
CPU = torch.device('cpu')


class TinyDetector(nn.Module):
    """Conv, BatchNorm, dropout and a linear head: every kind of state a training step touches."""

    mask_feature_layers = ('conv',)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(16, 2))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.conv(images))))


def tiny_data(with_masks: bool = False) -> TensorDataset:
    """10 images (batches of 4, 4 and 2), both classes, and 64x64 mask targets when asked."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(10, 3, 16, 16, generator=generator)
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    if not with_masks:
        return TensorDataset(images, labels)
    return TensorDataset(images, labels, torch.rand(10, 1, 64, 64, generator=generator))


def reference_epoch(model: nn.Module, dataset: TensorDataset, criterion: nn.Module,
                    weight: float | None = None) -> tuple[float, float, float]:
    """The assignment's loop written out: zero grads, forward, loss, backward, step, running sums.
    (`weight`: the model is a MaskedDetector, whose loss adds weight x its mask loss.)"""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(SEED))
    model.train()
    total_loss, total_mask_loss, correct, seen = 0.0, 0.0, 0, 0
    for images, labels, *masks in loader:
        optimizer.zero_grad()
        if weight is None:
            logits = model(images)
            loss = criterion(logits.float(), labels)
        else:
            logits, mask_logits = model(images)
            masked = mask_loss(mask_logits.float(), masks[0])
            loss = criterion(logits.float(), labels) + weight * masked
            total_mask_loss += masked.item() * len(labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        seen += len(labels)
    return total_loss / seen, 100.0 * correct / seen, total_mask_loss / seen


def trainer_epoch(model: nn.Module, dataset: TensorDataset, criterion: nn.Module) -> Trainer:
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=0.01), criterion, 4, dataset, dataset,
                      dataset, TrainConfig(workers=0, seed=SEED, device='cpu', show_progress=False))
    trainer.epoch = 1
    return trainer


def assert_same_state(trained: nn.Module, reference: nn.Module) -> None:
    expected = reference.state_dict()
    for key, value in trained.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_train_one_epoch_is_the_plain_loop_to_the_bit() -> None:
    torch.manual_seed(0)
    model = TinyDetector()
    reference = copy.deepcopy(model)
    criterion = nn.CrossEntropyLoss(weight=torch.tensor([0.8, 1.3]))
    torch.manual_seed(7)  # the dropout draws
    expected_loss, expected_acc, _ = reference_epoch(reference, tiny_data(), criterion)
    torch.manual_seed(7)
    loss, accuracy = trainer_epoch(model, tiny_data(), criterion).train_one_epoch()
    assert (loss, accuracy) == (expected_loss, expected_acc)
    assert_same_state(model, reference)


def test_a_detector_that_owns_its_loss_trains_through_the_same_loop() -> None:
    torch.manual_seed(0)
    masked = MaskedDetector(TinyDetector(), MaskHead([4]), ['conv'], mask_loss_weight=0.5)
    reference = copy.deepcopy(masked)
    torch.manual_seed(7)
    expected_loss, expected_acc, expected_mask_loss = reference_epoch(
        reference, tiny_data(with_masks=True), nn.CrossEntropyLoss(), weight=0.5)
    torch.manual_seed(7)
    trainer = trainer_epoch(masked, tiny_data(with_masks=True), nn.CrossEntropyLoss())
    score = trainer.train_one_epoch()
    assert tuple(score) == (expected_loss, expected_acc)
    assert score.logs == {'mask_loss': expected_mask_loss}
    assert_same_state(masked, reference)  # the detector and its head
    assert trainer.model is masked.detector  # what is evaluated and saved


# The keys of a train_main.py log today, in order; TrainConfig's fields are the middle block.
RESULT_KEYS = ['model', 'dataset', 'optimizer', 'train_loss', 'train_acc', 'val_loss', 'val_acc', 'val_auc',
               'test_loss', 'test_acc']
CONFIG_KEYS = ['workers', 'select_by', 'seed', 'batch_size', 'epochs', 'nof_params', 'device', 'data_root',
               'threads', 'augment', 'fakes', 'validation', 'mask_loss_weight', 'mask_head_params',
               'weight_decay', 'scheduler', 'freeze_blocks', 'warmup_epochs', 'class_weights', 'patience',
               'resumed', 'lr_find', 'stop_on_collapse', 'world_size', 'backend', 'memory_format', 'compiled']
EPOCH_KEYS = ['epoch_seconds', 'lr', 'collapsed', 'best_epoch']


def test_the_log_stores_the_config_whole_under_train_mains_keys(workdir: Path) -> None:
    model = TinyDetector()
    config = TrainConfig(workers=0, seed=SEED, batch_size=4, epochs=1, device='cpu', augment='assignment',
                         patience=5, amp=False, show_progress=False, pretrained=True,
                         pretrained_source='x.pt')
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(), 4,
                      tiny_data(), tiny_data(), tiny_data(), config)
    record = trainer.run(1, LoggingParameters('Tiny', 'toy', 'SGD', {'lr': 0.0}))
    logged = json.loads((workdir / 'out' / 'toy_Tiny_SGD.json').read_text())[-1]
    assert list(logged) == RESULT_KEYS + CONFIG_KEYS + ['pretrained', 'pretrained_source'] + EPOCH_KEYS
    assert logged == record
    assert {key: logged[key] for key in ('workers', 'seed', 'batch_size', 'device', 'patience')} == \
        {'workers': 0, 'seed': SEED, 'batch_size': 4, 'device': 'cpu', 'patience': 5}
    # without ImageNet weights a model has no pretrained facts; amp and show_progress are never logged
    assert list(TrainConfig().logged()) == CONFIG_KEYS


def test_train_main_logs_the_same_keys(trained_runs: Path) -> None:
    logged = json.loads((trained_runs / 'out' / 'fakes_dataset_SimpleNet_Adam.json').read_text())[-1]
    assert list(logged) == RESULT_KEYS + CONFIG_KEYS + EPOCH_KEYS
