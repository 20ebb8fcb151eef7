"""Train, validate and test a classifier; keep the best-validation checkpoint and a JSON log."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from common import CHECKPOINT_DIR, OUTPUT_DIR
from utils import atomic_torch_save, atomic_write_json, default_workers, device, read_json_list


@dataclass
class LoggingParameters:
    """What a run is called in file names and logs; `extra` adds keys to the JSON record."""

    model_name: str
    dataset_name: str
    optimizer_name: str
    optimizer_params: dict
    extra: dict = field(default_factory=dict)

    @property
    def run_name(self) -> str:
        """`<dataset>_<model>_<optimizer>`, the stem of the run's .json and .pt files."""
        return f'{self.dataset_name}_{self.model_name}_{self.optimizer_name}'


def format_progress(epoch: int, loss: float, accuracy: float, correct: int, seen: int) -> str:
    """`Epoch [001] | Loss: 0.693 | Acc: 50.00[%] (16/32)`."""
    return (f'Epoch [{epoch:03d}] | Loss: {loss:.3f} | Acc: {accuracy:.2f}[%] '
            f'({correct}/{seen})')


class Trainer:
    """The assignment's training loop: per-sample mean loss and percent accuracy per split."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module,
                 batch_size: int, train_dataset: Dataset, validation_dataset: Dataset,
                 test_dataset: Dataset, *, num_workers: int | None = None,
                 amp: bool | None = None, seed: int = 0, show_progress: bool = True):
        self.model = model.to(device)
        self.optimizer = optimizer
        self.criterion = criterion
        self.batch_size = batch_size
        self.train_dataset = train_dataset
        self.validation_dataset = validation_dataset
        self.test_dataset = test_dataset
        self.num_workers = default_workers() if num_workers is None else num_workers
        self.amp = (device.type == 'cuda') if amp is None else (amp and device.type == 'cuda')
        self.amp_dtype = (torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported()
                          else torch.float16)
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.amp and
                                           self.amp_dtype == torch.float16)
        self.show_progress = show_progress
        self.shuffle_generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self._loaders: dict[int, DataLoader] = {}

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        """One DataLoader per dataset, kept for the run so worker processes are started once."""
        key = id(dataset)
        if key not in self._loaders:
            self._loaders[key] = DataLoader(
                dataset, batch_size=self.batch_size, shuffle=shuffle,
                num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                pin_memory=device.type == 'cuda',
                generator=self.shuffle_generator if shuffle else None)
        return self._loaders[key]

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type='cuda', dtype=self.amp_dtype)

    def _progress(self, loader: DataLoader, description: str) -> tqdm:
        # disable=None lets tqdm hide the bar when stderr is not a terminal (logs, CI).
        return tqdm(loader, desc=description, leave=False, disable=None if self.show_progress else True,
                    dynamic_ncols=True)

    def train_one_epoch(self) -> tuple[float, float]:
        """One pass over the shuffled training set; returns (mean loss per sample, accuracy %)."""
        self.model.train()
        total_loss, correct, seen = 0.0, 0, 0
        bar = self._progress(self._loader(self.train_dataset, shuffle=True),
                             f'Epoch [{self.epoch:03d}] train')
        for inputs, targets in bar:
            inputs = inputs.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                outputs = self.model(inputs)
                loss = self.criterion(outputs, targets)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total_loss += loss.item() * targets.size(0)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            seen += targets.size(0)
            bar.set_postfix(loss=f'{total_loss / seen:.3f}', acc=f'{100 * correct / seen:.2f}%')
        avg_loss, accuracy = total_loss / seen, 100.0 * correct / seen
        print(format_progress(self.epoch, avg_loss, accuracy, correct, seen), flush=True)
        return avg_loss, accuracy

    def evaluate_model_on_dataloader(self, dataset: Dataset) -> tuple[float, float]:
        """Mean loss per sample and accuracy % on `dataset`, in eval mode without gradients."""
        was_training = self.model.training
        self.model.eval()
        total_loss, correct, seen = 0.0, 0, 0
        with torch.no_grad():
            for inputs, targets in self._progress(self._loader(dataset, shuffle=False),
                                                  f'Epoch [{self.epoch:03d}] eval'):
                inputs = inputs.to(device, non_blocking=True)
                targets = targets.to(device, non_blocking=True)
                with self._autocast():
                    outputs = self.model(inputs)
                    loss = self.criterion(outputs.float(), targets)
                total_loss += loss.item() * targets.size(0)
                correct += (outputs.argmax(dim=1) == targets).sum().item()
                seen += targets.size(0)
        self.model.train(was_training)
        return total_loss / seen, 100.0 * correct / seen

    def validate(self) -> tuple[float, float]:
        """Evaluate on the validation set."""
        return self.evaluate_model_on_dataloader(self.validation_dataset)

    def test(self) -> tuple[float, float]:
        """Evaluate on the test set."""
        return self.evaluate_model_on_dataloader(self.test_dataset)

    @staticmethod
    def write_output(logging_parameters: LoggingParameters, data: dict[str, Any]) -> Path:
        """Append `data` to the JSON list in out/<dataset>_<model>_<optimizer>.json (atomically)."""
        path = Path(OUTPUT_DIR) / f'{logging_parameters.run_name}.json'
        records = read_json_list(path)
        records.append(data)
        atomic_write_json(records, path)
        print(f'Wrote {path}')
        return path

    def run(self, epochs: int, logging_parameters: LoggingParameters) -> dict[str, Any]:
        """Train for `epochs`, checkpoint on every validation improvement, log all figures."""
        output_data: dict[str, Any] = {
            'model': logging_parameters.model_name,
            'dataset': logging_parameters.dataset_name,
            'optimizer': {'name': logging_parameters.optimizer_name,
                          'params': logging_parameters.optimizer_params},
            'train_loss': [], 'train_acc': [], 'val_loss': [], 'val_acc': [],
            'test_loss': [], 'test_acc': [],
            **logging_parameters.extra,
            'epoch_seconds': [],
            'best_epoch': None,
        }
        checkpoint_path = Path(CHECKPOINT_DIR) / f'{logging_parameters.run_name}.pt'
        best_val_acc = -1.0
        for self.epoch in range(1, epochs + 1):
            started = time.perf_counter()
            train_loss, train_acc = self.train_one_epoch()
            val_loss, val_acc = self.validate()
            test_loss, test_acc = self.test()
            seconds = time.perf_counter() - started
            print(f'            val  | Loss: {val_loss:.3f} | Acc: {val_acc:.2f}[%]\n'
                  f'            test | Loss: {test_loss:.3f} | Acc: {test_acc:.2f}[%] '
                  f'| {seconds:.1f} s', flush=True)
            for key, value in (('train_loss', train_loss), ('train_acc', train_acc),
                               ('val_loss', val_loss), ('val_acc', val_acc),
                               ('test_loss', test_loss), ('test_acc', test_acc),
                               ('epoch_seconds', seconds)):
                output_data[key].append(value)
            if val_acc > best_val_acc:
                best_val_acc = val_acc
                output_data['best_epoch'] = self.epoch
                atomic_torch_save({'model': self.model.state_dict(), 'val_acc': val_acc,
                                   'test_acc': test_acc, 'epoch': self.epoch,
                                   'model_name': logging_parameters.model_name,
                                   'dataset': logging_parameters.dataset_name},
                                  checkpoint_path)
                print(f'Saved checkpoint {checkpoint_path} (val acc {val_acc:.2f}%)')
        self._loaders.clear()
        self.write_output(logging_parameters, output_data)
        return output_data
