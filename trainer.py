"""Train, validate and test a classifier; keep the best checkpoint and a JSON log, never lose a run.

A run's canonical checkpoint (checkpoints/<run>.pt) and its log (out/<run>.json) change together,
only when the run completes. After every epoch the resumable state goes to
checkpoints/<run>.interrupted.pt, so Ctrl-C, SIGTERM or a crash never costs more than one epoch and
never touches the previous completed run; `train_main.py --resume` continues from it.

The loop is the assignment's; what is not (a detector's own loss, torchrun, mixed precision, the
collapse guard, the resumable state) sits behind the hooks of fmd/training/ (docs/modules.md).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from fmd.core.atomic_io import RunLock, append_json_record, atomic_torch_save, read_json_list
from fmd.core.batches import collate_images, input_memory_format, on_device
from fmd.core.checkpoint_files import VAL_THRESHOLD_KEY, cpu_copy, read_checkpoint
from fmd.core.cli import default_workers
from fmd.core.devices import pick_device
from fmd.core.inference import batch_logits
from fmd.core.interrupts import StopRequest, deferred_interrupts
from fmd.core.metrics import auc_and_threshold
from fmd.core.options import SELECT_BY  # what "best epoch" means
from fmd.core.runs import RunId
from fmd.training.checkpoints import check_resumable
from fmd.training.collapse import CollapseGuard, run_collapsed
from fmd.training.config import TrainConfig
from fmd.training.distributed import SINGLE, Distributed, unique_train_samples
from fmd.training.objective import (
    Criterion,
    Objective,
    checkpoint_entries,
    classifier_of,
    load_checkpoint_entries,
)
from fmd.training.performance import MixedPrecision
from fmd.training.resume import restore_rng_state, rng_state
from fmd.training.running import RunningScore, Score


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite: the run stops, nothing is saved from then on."""


@dataclass
class LoggingParameters:
    """The assignment's name of a run: its identity (fmd.core.runs.RunId: what its files are
    called) and the optimizer's parameters; `extra` adds keys to the JSON record."""

    model_name: str
    dataset_name: str
    optimizer_name: str
    optimizer_params: dict
    extra: dict = field(default_factory=dict)
    fakes: str = 'dataset'  # train_main.py --fakes: a self-blend run gets files of its own
    masks: bool = False     # train_main.py --mask-loss-weight > 0: so does a run with a mask head

    @property
    def run(self) -> RunId:
        return RunId(self.dataset_name, self.model_name, self.optimizer_name, self.fakes, self.masks)

    @property
    def run_name(self) -> str:
        """`<dataset>_<model>_<optimizer>`, the stem of the run's .json and .pt files."""
        return self.run.name

    @property
    def paths(self) -> tuple[Path, Path, Path, Path]:
        """(checkpoint, interrupted state, JSON log, lock) of this run."""
        run = self.run
        return run.checkpoint, run.interrupted, run.log, run.lock


class Trainer:
    """The assignment's training loop: per-sample mean loss and percent accuracy per split.

    `model` is the classifier, or a detector that owns its loss (fmd.training.objective.Detector,
    e.g. a MaskedDetector): the loop is the same. `criterion` is any callable of (float32 logits,
    labels). Every other setting is in `config`; keyword `settings` replace its fields
    (TrainConfig.updated: `num_workers=0`, `show_progress=False`, ...). `scheduler` steps once per
    epoch; `distributed` is this process's place in a torchrun job.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: Criterion,
                 batch_size: int, train_dataset: Dataset, validation_dataset: Dataset,
                 test_dataset: Dataset, config: TrainConfig | None = None, *, scheduler: Any = None,
                 distributed: Distributed = SINGLE, **settings: Any):
        config = (config or TrainConfig()).updated(**settings)
        if config.select_by not in SELECT_BY:
            raise ValueError(f'select_by must be one of {SELECT_BY}, got {config.select_by!r}')
        self.device = torch.device(config.device) if config.device is not None else pick_device()
        if config.workers is None:
            config = config.updated(workers=default_workers())
        self.config = config.updated(device=self.device)
        self.detector = model.to(self.device)  # what is trained
        self.model = classifier_of(model)      # what is evaluated and saved
        self.memory_format = input_memory_format(self.model)  # performance.prepare_model set it
        self.optimizer, self.scheduler, self.batch_size = optimizer, scheduler, batch_size
        self.criterion = criterion.to(self.device) if isinstance(criterion, nn.Module) else criterion
        self.train_dataset = train_dataset
        self.validation_dataset = validation_dataset
        self.test_dataset = test_dataset
        self.precision = MixedPrecision(self.device, config.amp)
        self.scaler = self.precision.scaler
        # torchrun: train through DistributedDataParallel, rank 0 shows the bar, each rank augments
        # with its own seed (rank 0 keeps `seed`, so a single process is unchanged).
        self.distributed = distributed
        self.objective = distributed.wrap(Objective(self.detector, self.criterion))
        self.guard = CollapseGuard(config.stop_on_collapse, warn=distributed.is_main)
        self.show_progress = config.show_progress and distributed.is_main
        self.shuffle_generator = torch.Generator().manual_seed(config.seed + distributed.rank)
        self.epoch = 0
        self.last_scores: tuple[torch.Tensor, torch.Tensor] | None = None  # P(fake), labels
        self.saved_epoch: int | None = None  # epoch of the interrupted state this run wrote/read
        self.stop = StopRequest()  # signals become a flag checked between batches during run()
        self._loaders: dict[int, DataLoader] = {}

    # ------------------------------------------------------------------ the assignment's methods

    def train_one_epoch(self) -> Score:
        """One pass over the shuffled training set; returns (mean loss per sample, accuracy %)."""
        self.detector.train()
        running = RunningScore(self._loss, counted=unique_train_samples(
            len(self.train_dataset), self.distributed.rank, self.distributed.world_size))
        bar = self._progress(self._training_loader(), 'train')
        for number, batch in enumerate(on_device(self._stoppable(bar), self.device,
                                                 self.memory_format), start=1):
            self.optimizer.zero_grad(set_to_none=True)          # 1. zero the gradients
            with self.precision.autocast():
                loss, logits, logs = self.objective(batch)      # 2. forward, 3. loss (the model's)
            loss_value = self._finite(loss, number)
            self.scaler.scale(loss).backward()                  # 4. backward
            self.scaler.step(self.optimizer)                    # 5. optimizer step
            self.scaler.update()
            running.add(loss_value, logits, batch[1], logs)     # 6. running loss and accuracy
            bar.set_postfix(running.postfix())
        score = running.total(self.distributed)
        self.distributed.broadcast_buffers(self.detector)
        print(score.line(self.epoch), flush=True)
        return score

    def evaluate_model_on_dataloader(self, dataset: Dataset) -> Score:
        """Mean loss per sample and accuracy % on `dataset`, in eval mode without gradients, through
        the one inference loop (fmd.core.inference.batch_logits).

        P(fake) and the label of every sample stay in `self.last_scores` (for the validation AUC).
        """
        running = RunningScore(self._loss)
        probabilities, labels = [], []
        batches = self._stoppable(self._progress(self._loader(dataset, shuffle=False), 'eval'))
        for logits, targets in batch_logits(self.model, batches, self.device,
                                            autocast=self.precision.autocast):
            running.add(self._loss(logits, targets).item(), logits, targets)
            probabilities.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu())
            labels.append(targets.cpu())
        score = running.total(self.distributed)
        self.last_scores = (
            self.distributed.gather(probabilities, len(dataset), self.batch_size, torch.float32),
            self.distributed.gather(labels, len(dataset), self.batch_size, torch.int64))
        return score

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

    def run(self, epochs: int, logging_parameters: LoggingParameters,
            resume: bool = False) -> dict[str, Any]:
        """Train for `epochs`, keep the best epoch (by `select_by`), log all figures.

        Holds the run's lock throughout; a second process training the same run fails at start.
        Under torchrun rank 0 holds the lock and alone writes files.
        """
        checkpoint, interrupted, log, lock = logging_parameters.paths
        patience = self.config.patience
        with self.distributed.held_on_main(RunLock(lock, f'Training run {logging_parameters.run_name}')), \
                self.stop:
            # a corrupt log is reported (and moved aside) now, not at the end
            self.distributed.from_main(lambda: len(read_json_list(log)))
            record, best, stale_epochs = self._start(logging_parameters, interrupted, resume)
            for epoch in range(self.epoch + 1, epochs + 1):
                self.epoch = epoch
                if patience is not None and stale_epochs >= patience:
                    print(f'Early stop: no {self.config.select_by} improvement in {patience} epochs.')
                    break
                stale_epochs = self._one_epoch(record, best, stale_epochs)
                self.stop.check()
                # After the last epoch _finish writes the results at once (signals deferred), so its
                # resumable state is only written when the collapse guard ends the run here.
                if epoch < epochs or self.guard.stops(record):
                    state = self._state(record, best, stale_epochs)
                    if self.distributed.is_main:
                        atomic_torch_save(state, interrupted)
                    self.saved_epoch = self.epoch
                self.guard.stop_if_collapsed(self.epoch, record)
            self._loaders.clear()
            if self.distributed.is_main:
                self._finish(record, best, logging_parameters, checkpoint, interrupted)
        return record

    # ------------------------------------------------------------------ one epoch of run()

    def _one_epoch(self, record: dict, best: dict, stale_epochs: int) -> int:
        """Train, validate and test once; update the record and the best state; returns stale epochs."""
        started = time.perf_counter()
        record['lr'].append(self.optimizer.param_groups[0]['lr'])
        train = self.train_one_epoch()
        for name, value in getattr(train, 'logs', {}).items():  # the model's own, e.g. its mask loss
            record.setdefault(f'train_{name}', []).append(value)
        train_loss, train_acc = train
        self.last_scores = None
        val_loss, val_acc = self.validate()
        scores, labels = self.last_scores or (None, None)
        val_auc, val_threshold = auc_and_threshold(labels, scores) if labels is not None else (None, None)
        self.guard.check(self.epoch, record, None if scores is None else (scores > 0.5).numpy(),
                         train_loss)
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
        select_by = self.config.select_by
        score = val_acc if select_by == 'val_acc' else (val_auc if val_auc is not None else -1.0)
        if score > best['score']:
            best.update(epoch=self.epoch, score=score, val_acc=val_acc, test_acc=test_acc,
                        val_auc=val_auc, val_eer_threshold=val_threshold,
                        model=cpu_copy(self.model.state_dict()),
                        entries=checkpoint_entries(self.detector))
            record['best_epoch'] = self.epoch
            print(f'New best epoch {self.epoch} ({select_by} {score:.4f})')
            return 0
        return stale_epochs + 1

    # ------------------------------------------------------------------ hooks of the loops

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The classification loss of evaluation: the criterion on float32 logits."""
        return self.criterion(logits.float(), targets)

    def _finite(self, loss: torch.Tensor, batch_number: int) -> float:
        """The batch's loss as a number; NonFiniteLossError when it is NaN or infinite."""
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f'training loss became {value} at epoch {self.epoch}, batch {batch_number}; '
                'nothing was saved from this point. Lower --lr and train again.')
        return value

    def _training_loader(self) -> DataLoader:
        """The shuffled training batches of this epoch (self-blends draw this epoch's fakes)."""
        if hasattr(self.train_dataset, 'set_epoch'):
            self.train_dataset.set_epoch(self.epoch)
        return self._loader(self.train_dataset, shuffle=True)

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        """DataLoaders kept for the run. Evaluation workers persist; training workers start each
        epoch with seeds drawn from the shuffle generator, so a resumed run augments identically."""
        key = id(dataset)
        if key not in self._loaders:
            workers, seed = self.config.workers, self.config.seed
            sampler = self.distributed.sampler(dataset, shuffle, self.batch_size, seed)
            self._loaders[key] = DataLoader(
                dataset, batch_size=self.batch_size, shuffle=shuffle and sampler is None,
                sampler=sampler, num_workers=workers, persistent_workers=workers > 0 and not shuffle,
                pin_memory=self.device.type == 'cuda', collate_fn=collate_images,
                # Evaluation draws its (unused) worker seeds from a generator of its own, never from
                # the global RNG that augmentation uses, so a resumed run stays on the same stream.
                generator=self.shuffle_generator if shuffle else torch.Generator().manual_seed(seed))
        loader = self._loaders[key]
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(self.epoch)
        return loader

    def _progress(self, loader: DataLoader, what: str) -> tqdm:
        # disable=None lets tqdm hide the bar when stderr is not a terminal (logs, CI).
        return tqdm(loader, desc=f'Epoch [{self.epoch:03d}] {what}', leave=False,
                    disable=None if self.show_progress else True, dynamic_ncols=True)

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

    # ------------------------------------------------------------------ the run's files

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
            **self.config.logged(), **logging_parameters.extra,
            'epoch_seconds': [], 'lr': [], 'collapsed': [],
            'best_epoch': None,
        }
        best = {'epoch': None, 'score': -math.inf, 'model': None, 'val_acc': None,
                'test_acc': None, 'val_auc': None, 'entries': {}}
        return record, best, 0

    @staticmethod
    def _read_interrupted(interrupted: Path, run_name: str) -> dict:
        """The resumable state of an interrupted run; a missing file is a named error."""
        if not interrupted.is_file():
            raise FileNotFoundError(f'--resume: no interrupted state {interrupted} to resume '
                                    f'for run {run_name}.')
        return read_checkpoint(interrupted)

    def _state(self, record: dict, best: dict, stale_epochs: int) -> dict:
        """Everything needed to continue the run after this epoch."""
        state = {'epoch': self.epoch, 'model': self.model.state_dict(),
                 'optimizer': self.optimizer.state_dict(),
                 'scheduler': self.scheduler.state_dict() if self.scheduler is not None else None,
                 'scaler': self.scaler.state_dict(), 'record': record, 'best': best,
                 'stale_epochs': stale_epochs, 'rng': rng_state(self.shuffle_generator)}
        if self.distributed.enabled:  # every rank's random state (`rng` alone is rank 0's)
            state['rng_ranks'] = self.distributed.gather_objects(rng_state(self.shuffle_generator))
        return {**state, **checkpoint_entries(self.detector)}

    def _load_state(self, state: dict) -> tuple[dict, dict, int]:
        """Continue from an interrupted state; returns its (record, best, stale epochs)."""
        self.model.load_state_dict(state['model'])
        load_checkpoint_entries(self.detector, state)
        self.optimizer.load_state_dict(state['optimizer'])
        if self.scheduler is not None and state.get('scheduler') is not None:
            self.scheduler.load_state_dict(state['scheduler'])
        self.scaler.load_state_dict(state['scaler'])
        ranks = state.get('rng_ranks') or []
        restore_rng_state(ranks[self.distributed.rank] if len(ranks) == self.distributed.world_size
                          else state['rng'], self.shuffle_generator)
        self.epoch = state['epoch']
        return state['record'], state['best'], state['stale_epochs']

    def _finish(self, record: dict, best: dict, logging_parameters: LoggingParameters,
                checkpoint: Path, interrupted: Path) -> None:
        """Write the best checkpoint and the log together (no signal can split them), then drop
        the interrupted state."""
        with deferred_interrupts():
            atomic_torch_save({'model': best['model'], 'val_acc': best['val_acc'],
                               'test_acc': best['test_acc'], 'val_auc': best['val_auc'],
                               'epoch': best['epoch'], 'select_by': self.config.select_by,
                               VAL_THRESHOLD_KEY: best.get('val_eer_threshold'),  # None: no both-class val
                               'collapsed': run_collapsed(record),
                               'model_name': logging_parameters.model_name,
                               'dataset': logging_parameters.dataset_name,
                               'fakes': logging_parameters.fakes,
                               **best['entries']}, checkpoint)
            print(f'Saved checkpoint {checkpoint} (best epoch {best["epoch"]}, '
                  f'val acc {best["val_acc"]:.2f}%)')
            self.write_output(logging_parameters, record)
            interrupted.unlink(missing_ok=True)

