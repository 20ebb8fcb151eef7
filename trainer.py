"""Train, validate and test a classifier; keep the best checkpoint and a JSON log, never lose a run.

A run's canonical checkpoint (checkpoints/<run>.pt) and its log (out/<run>.json) change together,
only when the run completes. After every epoch the resumable state goes to
checkpoints/<run>.interrupted.pt, so Ctrl-C, SIGTERM or a crash never costs more than one epoch and
never touches the previous completed run; `train_main.py --resume` continues from it.
"""
from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from fmd.core.atomic_io import RunLock, append_json_record, atomic_torch_save, read_json_list
from fmd.core.devices import default_workers
from fmd.core.interrupts import StopRequest, deferred_interrupts
from fmd.core.options import SELECT_BY  # what "best epoch" means
from fmd.core.runs import checkpoint_path, interrupted_checkpoint_path, lock_path, log_path
from fmd.models.mask_head import MASK_HEAD_KEY, MASK_LAYERS_KEY, mask_loss
from fmd.training.checkpoints import VAL_THRESHOLD_KEY, check_resumable, read_checkpoint
from fmd.training.collapse import (
    Verdict,
    collapse_verdict,
    consecutive_collapsed,
    run_collapsed,
    stop_error,
    warning_line,
)
from fmd.training.distributed import SINGLE, Distributed, unique_train_samples
from fmd.training.performance import collate_images, input_memory_format, prepare_batch


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite: the run stops, nothing is saved from then on."""


@dataclass
class LoggingParameters:
    """What a run is called in file names and logs; `extra` adds keys to the JSON record."""

    model_name: str
    dataset_name: str
    optimizer_name: str
    optimizer_params: dict
    extra: dict = field(default_factory=dict)
    fakes: str = 'dataset'  # train_main.py --fakes: a self-blend run gets files of its own
    masks: bool = False     # train_main.py --mask-loss-weight > 0: so does a run with a mask head

    @property
    def run_name(self) -> str:
        """`<dataset>_<model>_<optimizer>`, the stem of the run's .json and .pt files."""
        from fmd.core.runs import run_name, training_set_name

        return run_name(training_set_name(self.dataset_name, self.fakes, self.masks), self.model_name,
                        self.optimizer_name)

    @property
    def paths(self) -> tuple[Path, Path, Path, Path]:
        """(checkpoint, interrupted state, JSON log, lock) of this run."""
        from fmd.core.runs import training_set_name

        key = (training_set_name(self.dataset_name, self.fakes, self.masks), self.model_name,
               self.optimizer_name)
        return (checkpoint_path(*key), interrupted_checkpoint_path(*key), log_path(*key),
                lock_path(*key))


def format_progress(epoch: int, loss: float, accuracy: float, correct: int, seen: int) -> str:
    """`Epoch [001] | Loss: 0.693 | Acc: 50.00[%] (16/32)`."""
    return (f'Epoch [{epoch:03d}] | Loss: {loss:.3f} | Acc: {accuracy:.2f}[%] '
            f'({correct}/{seen})')


def rng_state(generator: torch.Generator) -> dict:
    """Every random state a run draws from, so a resumed run repeats the uninterrupted one."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian)
    return {'torch': torch.get_rng_state(), 'shuffle': generator.get_state(),
            'numpy': numpy_state, 'python': random.getstate()}


def restore_rng_state(state: dict, generator: torch.Generator) -> None:
    """Undo rng_state."""
    torch.set_rng_state(state['torch'])
    generator.set_state(state['shuffle'])
    name, keys, position, has_gauss, cached_gaussian = state['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    random.setstate(state['python'])


class Trainer:
    """The assignment's training loop: per-sample mean loss and percent accuracy per split."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module,
                 batch_size: int, train_dataset: Dataset, validation_dataset: Dataset,
                 test_dataset: Dataset, *, device: torch.device | None = None,
                 num_workers: int | None = None, amp: bool | None = None, seed: int = 0,
                 show_progress: bool = True, scheduler: Any = None, select_by: str = 'val_acc',
                 patience: int | None = None, distributed: Distributed = SINGLE,
                 memory_format: torch.memory_format | None = None, stop_on_collapse: int | None = None,
                 masked: nn.Module | None = None, mask_loss_weight: float = 0.0):
        if device is None:
            from utils import device
        if select_by not in SELECT_BY:
            raise ValueError(f'select_by must be one of {SELECT_BY}, got {select_by!r}')
        self.device = device
        self.model = model.to(device)
        # Input batches follow the model's memory format (performance.prepare_model sets it).
        self.memory_format = input_memory_format(model) if memory_format is None else memory_format
        self.optimizer = optimizer
        self.criterion = criterion.to(device)
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
        self.scheduler = scheduler
        self.select_by = select_by
        self.patience = patience
        self.stop_on_collapse = stop_on_collapse  # end the run after this many collapsed epochs in a row
        # torchrun: train through DistributedDataParallel, rank 0 shows the bar, each rank augments
        # with its own seed (rank 0 keeps `seed`, so a single process is unchanged).
        self.distributed = distributed
        self.seed = seed
        # --mask-loss-weight: `masked` (fmd.models.mask_head.MaskedDetector) wraps the model and its
        # mask head; training batches then carry masks, and the loss adds weight x the mask loss.
        self.masked, self.mask_loss_weight = masked, mask_loss_weight
        if masked is not None:
            masked.to(device)
        self.train_model = distributed.wrap(self.model if masked is None else masked)
        self.show_progress = show_progress and distributed.is_main
        self.shuffle_generator = torch.Generator().manual_seed(seed + distributed.rank)
        self.epoch = 0
        self.last_scores: tuple[torch.Tensor, torch.Tensor] | None = None
        self.saved_epoch: int | None = None  # epoch of the interrupted state this run wrote/read
        self.last_verdict: Verdict | None = None  # the collapse guard's verdict on the last epoch
        self.last_mask_loss: float | None = None  # the mask head's mean loss in the last epoch
        self.stop = StopRequest()  # signals become a flag checked between batches during run()
        self._loaders: dict[int, DataLoader] = {}

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        """DataLoaders kept for the run. Evaluation workers persist; training workers start each
        epoch with seeds drawn from the shuffle generator, so a resumed run augments identically."""
        key = id(dataset)
        if key not in self._loaders:
            sampler = self.distributed.sampler(dataset, shuffle, self.batch_size, self.seed)
            self._loaders[key] = DataLoader(
                dataset, batch_size=self.batch_size, shuffle=shuffle and sampler is None,
                sampler=sampler, num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0 and not shuffle,
                pin_memory=self.device.type == 'cuda', collate_fn=collate_images,
                # Evaluation draws its (unused) worker seeds from a generator of its own, never from
                # the global RNG that augmentation uses, so a resumed run stays on the same stream.
                generator=self.shuffle_generator if shuffle else torch.Generator().manual_seed(self.seed))
        loader = self._loaders[key]
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(self.epoch)
        return loader

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type='cuda', dtype=self.amp_dtype)

    def _progress(self, loader: DataLoader, description: str) -> tqdm:
        # disable=None lets tqdm hide the bar when stderr is not a terminal (logs, CI).
        return tqdm(loader, desc=description, leave=False, disable=None if self.show_progress else True,
                    dynamic_ncols=True)

    def _stoppable(self, batches: Any) -> Any:
        """Yield batches, raising a pending Ctrl-C/SIGTERM between them. A DataLoader whose workers
        died from the same Ctrl-C raises an error of its own: that, too, is the interrupt."""
        iterator = iter(batches)
        while True:
            self.stop.check()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except Exception:
                self.stop.check()
                raise
            yield batch

    def _loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The one loss of training and evaluation: the criterion on float32 logits."""
        return self.criterion(outputs.float(), targets)

    def train_one_epoch(self) -> tuple[float, float]:
        """One pass over the shuffled training set; returns (mean loss per sample, accuracy %)."""
        self.model.train()
        if hasattr(self.train_dataset, 'set_epoch'):  # self-blends: fresh fakes every epoch
            self.train_dataset.set_epoch(self.epoch)
        total_loss, correct, seen, total_mask_loss = 0.0, 0, 0, 0.0
        uncounted_from = unique_train_samples(len(self.train_dataset), self.distributed.rank,
                                              self.distributed.world_size)
        bar = self._progress(self._loader(self.train_dataset, shuffle=True),
                             f'Epoch [{self.epoch:03d}] train')
        for batch_index, (inputs, targets, *masks) in enumerate(self._stoppable(bar)):
            inputs = prepare_batch(inputs, self.device, self.memory_format)
            targets = targets.to(self.device, non_blocking=True)
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                outputs = self.train_model(inputs)
            if self.masked is not None:
                outputs, mask_logits = outputs
                masked_loss = self._mask_loss(mask_logits, masks[0])
                total_mask_loss += masked_loss.item() * targets.size(0)
                loss = self._loss(outputs, targets) + self.mask_loss_weight * masked_loss
            else:
                loss = self._loss(outputs, targets)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(
                    f'training loss became {loss_value} at epoch {self.epoch}, batch {batch_index + 1}; '
                    'nothing was saved from this point. Lower --lr and train again.')
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            keep = max(0, min(targets.size(0), uncounted_from - seen))
            if keep < targets.size(0):  # DistributedSampler's padding: trained on, never counted
                outputs, targets = outputs[:keep].detach(), targets[:keep]
                loss_value = self._loss(outputs, targets).item() if keep else 0.0
            total_loss += loss_value * targets.size(0)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            seen += targets.size(0)
            bar.set_postfix(loss=f'{total_loss / max(seen, 1):.3f}',
                            acc=f'{100 * correct / max(seen, 1):.2f}%')
        total_loss, correct, seen, total_mask_loss = self.distributed.sum(total_loss, correct, seen,
                                                                          total_mask_loss)
        self.distributed.broadcast_buffers(self.model if self.masked is None else self.masked)
        avg_loss, accuracy = total_loss / seen, 100.0 * correct / seen
        self.last_mask_loss = total_mask_loss / seen if self.masked is not None else None
        mask_text = f' | Mask loss: {self.last_mask_loss:.4f}' if self.masked is not None else ''
        print(format_progress(self.epoch, avg_loss, accuracy, correct, seen) + mask_text, flush=True)
        return avg_loss, accuracy

    def _mask_loss(self, mask_logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The mask head's loss against the batch's manipulation masks (float32)."""
        return mask_loss(mask_logits.float(), masks.to(self.device, non_blocking=True))

    def _evaluate(self, dataset: Dataset) -> tuple[float, float, torch.Tensor, torch.Tensor]:
        """(mean loss per sample, accuracy %, P(fake) per sample, labels) in eval mode, no grad."""
        was_training = self.model.training
        self.model.eval()
        total_loss, correct, seen = 0.0, 0, 0
        probabilities, labels = [], []
        with torch.no_grad():
            for inputs, targets in self._stoppable(self._progress(self._loader(dataset, shuffle=False),
                                                                  f'Epoch [{self.epoch:03d}] eval')):
                inputs = prepare_batch(inputs, self.device, self.memory_format)
                targets = targets.to(self.device, non_blocking=True)
                with self._autocast():
                    outputs = self.model(inputs)
                total_loss += self._loss(outputs, targets).item() * targets.size(0)
                correct += (outputs.argmax(dim=1) == targets).sum().item()
                seen += targets.size(0)
                probabilities.append(torch.softmax(outputs.float(), dim=1)[:, 1].cpu())
                labels.append(targets.cpu())
        self.model.train(was_training)
        total_loss, correct, seen = self.distributed.sum(total_loss, correct, seen)
        probabilities = self.distributed.gather(probabilities, len(dataset), self.batch_size,
                                                torch.float32)
        labels = self.distributed.gather(labels, len(dataset), self.batch_size, torch.int64)
        return total_loss / seen, 100.0 * correct / seen, probabilities, labels

    def evaluate_model_on_dataloader(self, dataset: Dataset) -> tuple[float, float]:
        """Mean loss per sample and accuracy % on `dataset`, in eval mode without gradients.

        P(fake) and the labels of that pass stay in `self.last_scores` (for the validation AUC).
        """
        loss, accuracy, probabilities, labels = self._evaluate(dataset)
        self.last_scores = (probabilities, labels)
        return loss, accuracy

    def validate(self) -> tuple[float, float]:
        """Evaluate on the validation set."""
        return self.evaluate_model_on_dataloader(self.validation_dataset)

    def test(self) -> tuple[float, float]:
        """Evaluate on the test set."""
        return self.evaluate_model_on_dataloader(self.test_dataset)

    @staticmethod
    def write_output(logging_parameters: LoggingParameters, data: dict[str, Any]) -> Path:
        """Append `data` to the JSON list in out/<dataset>_<model>_<optimizer>.json (locked, atomic)."""
        path = append_json_record(logging_parameters.paths[2], data)
        print(f'Wrote {path}')
        return path

    def _state(self, record: dict, best: dict, stale_epochs: int) -> dict:
        """Everything needed to continue the run after this epoch."""
        return {'epoch': self.epoch, 'model': self.model.state_dict(),
                'optimizer': self.optimizer.state_dict(),
                'scheduler': self.scheduler.state_dict() if self.scheduler is not None else None,
                'scaler': self.scaler.state_dict(), 'record': record, 'best': best,
                'stale_epochs': stale_epochs, 'rng': rng_state(self.shuffle_generator),
                **self._rank_rng_states(), **self._mask_head_state()}

    def _mask_head_state(self) -> dict:
        """The mask head's weights and the layers it reads, under their checkpoint keys ({} without)."""
        if self.masked is None:
            return {}
        return {MASK_HEAD_KEY: {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
                                for k, v in self.masked.head.state_dict().items()},
                MASK_LAYERS_KEY: list(self.masked.layers)}

    def _rank_rng_states(self) -> dict:
        """Under torchrun, every rank's random state (`rng` alone is rank 0's)."""
        if not self.distributed.enabled:
            return {}
        return {'rng_ranks': self.distributed.gather_objects(rng_state(self.shuffle_generator))}

    def _load_state(self, state: dict) -> tuple[dict, dict, int]:
        self.model.load_state_dict(state['model'])
        if self.masked is not None:
            if MASK_HEAD_KEY not in state:
                raise ValueError('--resume: the interrupted run had no mask head; resume it without '
                                 '--mask-loss-weight')
            self.masked.head.load_state_dict(state[MASK_HEAD_KEY])
        self.optimizer.load_state_dict(state['optimizer'])
        if self.scheduler is not None and state.get('scheduler') is not None:
            self.scheduler.load_state_dict(state['scheduler'])
        self.scaler.load_state_dict(state['scaler'])
        ranks = state.get('rng_ranks') or []
        restore_rng_state(ranks[self.distributed.rank] if len(ranks) == self.distributed.world_size
                          else state['rng'], self.shuffle_generator)
        self.epoch = state['epoch']
        return state['record'], state['best'], state['stale_epochs']

    def run(self, epochs: int, logging_parameters: LoggingParameters,
            resume: bool = False) -> dict[str, Any]:
        """Train for `epochs`, keep the best epoch (by `select_by`), log all figures.

        Holds the run's lock throughout; a second process training the same run fails at start.
        Under torchrun rank 0 holds the lock and alone writes files.
        """
        checkpoint, interrupted, log, lock = logging_parameters.paths
        with self.distributed.held_on_main(RunLock(lock, f'Training run {logging_parameters.run_name}')), \
                self.stop:
            # a corrupt log is reported (and moved aside) now, not at the end
            self.distributed.from_main(lambda: len(read_json_list(log)))
            record, best, stale_epochs = self._start(logging_parameters, interrupted, resume)
            for epoch in range(self.epoch + 1, epochs + 1):
                self.epoch = epoch
                if self.patience is not None and stale_epochs >= self.patience:
                    print(f'Early stop: no {self.select_by} improvement in {self.patience} epochs.')
                    break
                stale_epochs = self._one_epoch(record, best, stale_epochs)
                self.stop.check()
                state = self._state(record, best, stale_epochs)
                if self.distributed.is_main:
                    atomic_torch_save(state, interrupted)
                self.saved_epoch = self.epoch
                limit = self.stop_on_collapse
                if limit and consecutive_collapsed(record['collapsed']) >= limit:
                    raise stop_error(self.epoch, limit, self.last_verdict)
            self._loaders.clear()
            if self.distributed.is_main:
                self._finish(record, best, logging_parameters, checkpoint, interrupted)
        return record

    def _start(self, logging_parameters: LoggingParameters, interrupted: Path,
               resume: bool) -> tuple[dict, dict, int]:
        """A fresh record, or the state of the interrupted run when resuming."""
        if resume:
            state = self.distributed.from_main(
                lambda: self._read_interrupted(interrupted, logging_parameters.run_name))
            check_resumable(state, interrupted, self.model, self.optimizer, logging_parameters)
            record, best, stale_epochs = self._load_state(state)
            self.saved_epoch = self.epoch
            print(f'Resuming {logging_parameters.run_name} after epoch {self.epoch} from {interrupted}')
            return record, best, stale_epochs
        if interrupted.is_file():
            print(f'Note: {interrupted} (an earlier interrupted run) will be replaced after epoch 1; '
                  'stop now and pass --resume to continue it instead.')
        record: dict[str, Any] = {
            'model': logging_parameters.model_name,
            'dataset': logging_parameters.dataset_name,
            'optimizer': {'name': logging_parameters.optimizer_name,
                          'params': logging_parameters.optimizer_params},
            'train_loss': [], 'train_acc': [], 'val_loss': [], 'val_acc': [], 'val_auc': [],
            'test_loss': [], 'test_acc': [],
            'workers': self.num_workers, 'select_by': self.select_by,
            **logging_parameters.extra,
            'epoch_seconds': [], 'lr': [], 'collapsed': [],
            'best_epoch': None,
        }
        best = {'epoch': None, 'score': -math.inf, 'model': None, 'val_acc': None,
                'test_acc': None, 'val_auc': None}
        return record, best, 0

    @staticmethod
    def _read_interrupted(interrupted: Path, run_name: str) -> dict:
        """The resumable state of an interrupted run; a missing file is a named error."""
        if not interrupted.is_file():
            raise FileNotFoundError(f'--resume: no interrupted state {interrupted} to resume '
                                    f'for run {run_name}.')
        return read_checkpoint(interrupted)

    def _one_epoch(self, record: dict, best: dict, stale_epochs: int) -> int:
        """Train, validate and test once; update the record and the best state; returns stale epochs."""
        started = time.perf_counter()
        record['lr'].append(self.optimizer.param_groups[0]['lr'])
        train_loss, train_acc = self.train_one_epoch()
        if self.masked is not None:
            record.setdefault('train_mask_loss', []).append(self.last_mask_loss)
        self.last_scores = None
        val_loss, val_acc = self.validate()
        val_auc = val_threshold = None
        if self.last_scores is not None and len(self.last_scores[1].unique()) == 2:
            from sklearn.metrics import roc_auc_score  # here: importing sklearn costs ~1.5 s per process

            from fmd.core.metrics import eer_threshold

            val_scores, val_labels = self.last_scores
            val_auc = float(roc_auc_score(val_labels.numpy(), val_scores.numpy()))
            val_threshold = eer_threshold(val_labels.numpy(), val_scores.numpy())
        self._guard(record, train_loss)
        test_loss, test_acc = self.test()
        if self.scheduler is not None:
            self.scheduler.step()
        seconds = time.perf_counter() - started
        auc_text = f' | AUC: {val_auc:.3f}' if val_auc is not None else ''
        print(f'            val  | Loss: {val_loss:.3f} | Acc: {val_acc:.2f}[%]{auc_text}\n'
              f'            test | Loss: {test_loss:.3f} | Acc: {test_acc:.2f}[%] '
              f'| {seconds:.1f} s', flush=True)
        for key, value in (('train_loss', train_loss), ('train_acc', train_acc),
                           ('val_loss', val_loss), ('val_acc', val_acc), ('val_auc', val_auc),
                           ('test_loss', test_loss), ('test_acc', test_acc),
                           ('epoch_seconds', seconds)):
            record[key].append(value)
        score = val_acc if self.select_by == 'val_acc' else (val_auc if val_auc is not None else -1.0)
        if score > best['score']:
            best.update(epoch=self.epoch, score=score, val_acc=val_acc, test_acc=test_acc,
                        val_auc=val_auc, val_eer_threshold=val_threshold,
                        model={k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
                               for k, v in self.model.state_dict().items()},
                        **self._mask_head_state())
            record['best_epoch'] = self.epoch
            print(f'New best epoch {self.epoch} ({self.select_by} {score:.4f})')
            return 0
        return stale_epochs + 1

    def _guard(self, record: dict, train_loss: float) -> None:
        """Collapse guard after validation: record the epoch's verdict, one stderr line if collapsed."""
        predicted = (self.last_scores[0] > 0.5).numpy() if self.last_scores is not None else None
        losses = [*record['train_loss'], train_loss]  # this epoch's is appended after validation
        self.last_verdict = collapse_verdict(predicted, losses)
        flags = record.setdefault('collapsed', [None] * len(record['train_loss']))  # older states
        flags.append(self.last_verdict.collapsed)
        if self.last_verdict.collapsed and self.distributed.is_main:
            print(warning_line(self.epoch, self.last_verdict), file=sys.stderr, flush=True)

    def _finish(self, record: dict, best: dict, logging_parameters: LoggingParameters,
                checkpoint: Path, interrupted: Path) -> None:
        """Write the best checkpoint and the log together (no signal can split them), then drop
        the interrupted state."""
        with deferred_interrupts():
            atomic_torch_save({'model': best['model'], 'val_acc': best['val_acc'],
                               'test_acc': best['test_acc'], 'val_auc': best['val_auc'],
                               'epoch': best['epoch'], 'select_by': self.select_by,
                               VAL_THRESHOLD_KEY: best.get('val_eer_threshold'),  # None: no both-class val
                               'collapsed': run_collapsed(record),
                               'model_name': logging_parameters.model_name,
                               'dataset': logging_parameters.dataset_name,
                               'fakes': logging_parameters.fakes,
                               **{key: best[key] for key in (MASK_HEAD_KEY, MASK_LAYERS_KEY)
                                  if key in best}}, checkpoint)
            print(f'Saved checkpoint {checkpoint} (best epoch {best["epoch"]}, '
                  f'val acc {best["val_acc"]:.2f}%)')
            self.write_output(logging_parameters, record)
            interrupted.unlink(missing_ok=True)
