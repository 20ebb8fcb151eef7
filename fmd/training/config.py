"""TrainConfig: every setting of a training run beyond the template's Trainer arguments, in one object.

train_main.py builds it once from its command line (`TrainConfig.from_args`) and completes it with
what the run measured before it starts (parameters, threads, memory format, ...); a caller builds it
directly. The Trainer reads its settings from it, and the run's JSON log stores it whole: its fields
are the log's keys between `test_acc` and `epoch_seconds`, in this order (`logged()`).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields, replace
from typing import Any

# Field metadata: when a field is in the log (always, without it).
NOT_LOGGED = {'logged': lambda config: False}  # steers the process (progress bars, mixed precision)
WITH_PRETRAINED = {'logged': lambda config: config.pretrained is not None}  # models with ImageNet weights

# The command-line settings from_args takes by name (the rest are measured or derived).
SETTINGS = ('seed', 'batch_size', 'epochs', 'augment', 'fakes', 'mask_loss_weight', 'weight_decay',
            'scheduler', 'freeze_blocks', 'patience', 'stop_on_collapse', 'select_by', 'amp')


@dataclass
class TrainConfig:
    """A run's settings and the facts it ran with; None where a caller did not say."""

    workers: int | None = None            # DataLoader workers; None: fmd.core.cli.default_workers()
    select_by: str = 'val_acc'            # what picks the best epoch (fmd.core.options.SELECT_BY)
    seed: int = 0                         # shuffling and worker seeds (rank r of torchrun: seed + r)
    batch_size: int | None = None         # the global batch (the Trainer's own is per process)
    epochs: int | None = None
    nof_params: int | None = None         # trainable parameters of the model
    device: str | None = None             # 'cpu', 'cuda', 'cuda:1', ...; None: fmd.core.devices.pick_device()
    data_root: str | None = None
    threads: int | None = None            # torch intra-op threads
    augment: str | None = None            # training augmentation preset
    fakes: str | None = None              # where the training fakes come from (--fakes)
    validation: str | None = None         # what the validation split is, in words
    mask_loss_weight: float | None = None
    mask_head_params: int | None = None
    weight_decay: float | None = None
    scheduler: str | None = None
    freeze_blocks: int | None = None      # early blocks kept at their ImageNet weights (--freeze-blocks)
    warmup_epochs: int | None = None      # of the cosine schedule; None without one
    class_weights: list[float] | None = None  # cross-entropy weights of (real, fake); None: unweighted
    patience: int | None = None           # stop after this many epochs without improvement; None: never
    resumed: bool | None = None           # continued an interrupted run (--resume)
    lr_find: dict | None = None           # the learning-rate range test's summary (--lr auto)
    stop_on_collapse: int | None = None   # end the run after this many collapsed epochs in a row
    world_size: int | None = None         # processes of a torchrun job (1 without)
    backend: str | None = None            # their process group's backend (None without torchrun)
    memory_format: str | None = None      # 'channels_last' or 'contiguous'
    compiled: bool | None = None          # torch.compile'd
    pretrained: bool | None = field(default=None, metadata=WITH_PRETRAINED)   # ImageNet weights loaded
    pretrained_source: str | None = field(default=None, metadata=WITH_PRETRAINED)
    amp: bool | None = field(default=None, metadata=NOT_LOGGED)  # mixed precision; None: on with CUDA
    show_progress: bool = field(default=True, metadata=NOT_LOGGED)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainConfig:
        """The settings of train_main.py's command line (the measured facts stay None)."""
        return cls(**{name: getattr(args, name) for name in SETTINGS},
                   warmup_epochs=args.warmup_epochs if args.scheduler != 'none' else None,
                   resumed=args.resume, show_progress=not args.no_progress)

    def updated(self, **settings: Any) -> TrainConfig:
        """A copy with `settings` replaced; `num_workers` (the template's DataLoader name) sets
        `workers`, and a torch.device sets `device` as its name."""
        if 'num_workers' in settings:
            settings['workers'] = settings.pop('num_workers')
        if settings.get('device') is not None:
            settings['device'] = str(settings['device'])
        return replace(self, **settings)

    def logged(self) -> dict[str, Any]:
        """The fields as the run's JSON record holds them, in order."""
        return {item.name: getattr(self, item.name) for item in fields(self)
                if item.metadata.get('logged', lambda config: True)(self)}
