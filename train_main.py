"""Train a model on one dataset: `python train_main.py -d fakes_dataset -m SimpleNet -e 5 -o Adam`.

`torchrun --nproc_per_node=N train_main.py ...` trains the same run data-parallel on N processes
(DistributedDataParallel; -b stays the global batch size, split evenly across the processes).

Ctrl-C or SIGTERM keeps the state after the last finished epoch in checkpoints/<run>.interrupted.pt
(resume with --resume) and never touches the previous completed run's checkpoint and log.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fmd.core.cli import (
    MODEL_HELP,
    add_batch_size_arg,
    add_common_args,
    add_compile_arg,
    add_progress_arg,
    model_name,
    non_negative_float,
    non_negative_int,
    parse_api_args,
    positive_float,
    positive_int,
)
from fmd.core.options import (
    AUGMENT_PRESETS,
    CLASS_WEIGHTS,
    FAKES_MODES,
    IMAGE_SIZE,
    LR_FIND_STEPS,
    OPTIMIZERS,
    SCHEDULERS,
    SELECT_BY,
    UINT8_PRESETS,
    env_world_size,
)


def learning_rate(text: str) -> float | str:
    """argparse type of --lr: a finite number > 0, or 'auto' (the range test's suggestion)."""
    return 'auto' if text == 'auto' else positive_float(text)


def build_parser() -> argparse.ArgumentParser:
    """Command line of the assignment's training script, plus the research options (all off); built
    from light modules (fmd.core.cli, fmd.core.options): --help answers before torch is imported."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--lr', type=learning_rate, default=0.001,
                        help='learning rate, finite and > 0, or auto: the suggestion of the range '
                             'test of --lr-find (default: 0.001)')
    parser.add_argument('--momentum', type=non_negative_float, default=0.9,
                        help='SGD momentum (default: 0.9; ignored by Adam)')
    add_batch_size_arg(parser, help='training batch size; under torchrun the global batch, split evenly '
                                    'across the processes')
    parser.add_argument('--epochs', '-e', type=positive_int, default=2, help='epochs (default: 2)')
    parser.add_argument('--model', '-m', default='SimpleNet', type=model_name, metavar='MODEL',
                        help=f'model to train (default: SimpleNet): {MODEL_HELP}')
    parser.add_argument('--optimizer', '-o', default='Adam', choices=OPTIMIZERS,
                        help='optimizer (default: Adam)')
    parser.add_argument('--dataset', '-d', default='fakes_dataset',
                        help='dataset folder under the data root (default: fakes_dataset)')
    research = parser.add_argument_group('training recipe (each off by default)')
    research.add_argument('--fakes', default='dataset', choices=FAKES_MODES,
                          help="training fakes: the dataset's own (default), self-blends of its reals "
                               '(needs landmarks.npz: python -m fmd.data.landmarks DATASET; the fake/ '
                               'folders of train and val are never read), or both')
    research.add_argument('--mask-loss-weight', type=non_negative_float, default=0.0, metavar='W',
                          help='also train a mask head (BonusNet, SimpleNet) to draw where each '
                               'self-blend was changed: loss = cross-entropy + W x mask loss; needs '
                               '--fakes self-blend (default: 0 = off, no head)')
    research.add_argument('--augment', default='assignment', choices=AUGMENT_PRESETS,
                          help='training augmentation preset (default: assignment = crop + flip)')
    research.add_argument('--freeze-blocks', type=positive_int, default=None, metavar='N',
                          help='keep the stem and the first N blocks of a pretrained backbone as they '
                               'are (EfficientNetLite0: 16 blocks; default: train everything)')
    research.add_argument('--weight-decay', type=non_negative_float, default=0.0,
                          help='weight decay (default: 0; use with AdamW)')
    research.add_argument('--scheduler', default='none', choices=SCHEDULERS,
                          help='learning-rate schedule per epoch (cosine: linear warm-up, then cosine)')
    research.add_argument('--warmup-epochs', type=non_negative_int, default=1,
                          help='warm-up epochs of --scheduler cosine (default: 1)')
    research.add_argument('--select-by', default='val_acc', choices=SELECT_BY,
                          help='what picks the best epoch (default: val_acc)')
    research.add_argument('--class-weights', default='none', choices=CLASS_WEIGHTS,
                          help='balanced: cross-entropy weighted by inverse class frequency')
    research.add_argument('--patience', type=positive_int, default=None,
                          help='stop after N epochs without improvement (default: never)')
    research.add_argument('--resume', action='store_true',
                          help='continue checkpoints/<run>.interrupted.pt instead of starting anew')
    guards = parser.add_argument_group('training guards (docs/training_guards.md)')
    guards.add_argument('--lr-find', action='store_true',
                        help='only run the learning-rate range test on a copy of the model: print the '
                             'suggested --lr, save figures/<run>_lr_find.png, train nothing')
    guards.add_argument('--lr-find-steps', type=positive_int, default=LR_FIND_STEPS,
                        help=f'steps of the range test (default: {LR_FIND_STEPS})')
    guards.add_argument('--stop-on-collapse', type=positive_int, default=None, metavar='N',
                        help='end the run with an error after N collapsed epochs in a row (default: '
                             'only warn); the previous completed run stays as it was')
    amp = parser.add_mutually_exclusive_group()
    amp.add_argument('--amp', dest='amp', action='store_true', default=None,
                     help='automatic mixed precision (default: on with CUDA, off on CPU)')
    amp.add_argument('--no-amp', dest='amp', action='store_false', help='disable mixed precision')
    parser.add_argument('--require-pretrained', action='store_true',
                        help='fail instead of warning when ImageNet weights cannot be loaded')
    parser.add_argument('--pretrained', action=argparse.BooleanOptionalAction, default=True,
                        help='start ImageNet backbones (XceptionBased, EfficientNetLite0) from their '
                             'ImageNet weights (default); --no-pretrained: random initialisation')
    add_progress_arg(parser)
    add_compile_arg(parser)
    add_common_args(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse `argv` (None: every default, never sys.argv: cli.parse_api_args) and check what
    argparse cannot (usage errors, exit 2)."""
    parser = build_parser()
    args = parse_api_args(parser, argv)
    if args.fakes != 'dataset' and args.augment not in UINT8_PRESETS:
        parser.error(f'argument --fakes {args.fakes}: blends are made on the decoded uint8 images; '
                     f'use --augment {" or ".join(UINT8_PRESETS)}')
    if args.mask_loss_weight and args.fakes != 'self-blend':
        parser.error('argument --mask-loss-weight: the masks come from self-blending; add --fakes '
                     "self-blend (the dataset's own fakes have no masks)")
    if args.require_pretrained and not args.pretrained:
        parser.error('--require-pretrained and --no-pretrained contradict each other')
    world_size = env_world_size()
    if args.batch_size % world_size:
        parser.error(f'argument --batch-size/--batch_size/-b: the global batch size {args.batch_size} '
                     f'does not split evenly across {world_size} processes; pass a multiple of {world_size}')
    if world_size > 1 and (args.lr_find or args.lr == 'auto'):
        parser.error('--lr-find and --lr auto run on one process: run the range test without torchrun '
                     'and pass its suggestion as --lr')
    return args


def start_prefetch(args: argparse.Namespace) -> None:
    """Fork the image decoders of fmd.data.prefetch for the dataset's three splits, before torch is
    imported; a run with self-blended fakes, under torchrun, or without data goes on without them."""
    if args.fakes != 'dataset' or env_world_size() > 1:
        return
    from fmd.data import prefetch
    from fmd.data.data_root import DATASET_PARTS, resolve_data_root

    try:
        dataset_dir = resolve_data_root(args.data_root, announce=False) / args.dataset
    except OSError:  # no data root: the run itself says so, in its own words
        return
    prefetch.start([dataset_dir / part for part in DATASET_PARTS], IMAGE_SIZE)


if __name__ == '__main__':
    # --help and usage errors answer here, before the imports below load torch; the decoders
    # start now so that they work while the imports run
    from fmd.core.interrupts import quiet_start_up

    quiet_start_up()
    start_prefetch(parse_args(sys.argv[1:]))


from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from fmd.core.analysis_cli import use_agg_backend
from fmd.core.atomic_io import RunLockedError
from fmd.core.cli import error_line, run_cli
from fmd.core.devices import default_threads, default_workers, pick_device, seed_everything
from fmd.core.interrupts import end_quiet_start_up, exit_code
from fmd.core.registry import canonical_model_name
from fmd.core.runs import RunId
from fmd.data import prefetch
from fmd.data.decode_cache import prepare_datasets
from fmd.data.presets import uint8_transform
from fmd.data.training_fakes import self_blend_splits
from fmd.training.config import TrainConfig
from fmd.training.distributed import Distributed, process_group
from fmd.training.lr_finder import DEFAULT_START_LR, RangeTest, find_lr
from fmd.training.optimizers import (
    balanced_class_weights,
    build_optimizer,
    build_scheduler,
    optimizer_hyperparameters,
)
from fmd.training.performance import describe, keep_freed_memory, prepare_model
from trainer import LoggingParameters, Trainer
from utils import get_nof_params, load_dataset, load_model, resolve_data_root


def attach_mask_head(model: nn.Module, memory_format: torch.memory_format, weight: float) -> nn.Module:
    """--mask-loss-weight: the model with a fresh mask head (fmd.models.mask_head) whose loss counts
    `weight` times, in the model's memory format; a model without mask layers is a one-line error."""
    from fmd.models.mask_head import MaskHeadError, build_mask_head

    try:
        masked = build_mask_head(model, mask_loss_weight=weight)
    except MaskHeadError as error:
        sys.exit(f'error: argument --mask-loss-weight: {error}')
    masked.head.to(memory_format=memory_format)
    print(f'Mask head: {get_nof_params(masked.head):,} parameters reading {", ".join(masked.layers)}')
    return masked


def freeze_early_blocks(model: nn.Module, model_name: str, blocks: int) -> None:
    """--freeze-blocks: the model's own freeze_early(blocks); a model without one, or too many
    blocks, is a one-line usage error."""
    freeze = getattr(model, 'freeze_early', None)
    if freeze is None:
        sys.exit(f'error: argument --freeze-blocks: {model_name} has no early blocks to freeze; use it '
                 'with EfficientNetLite0')
    try:
        freeze(blocks)
    except ValueError as error:
        sys.exit(f'error: argument --freeze-blocks: {error}')
    print(f'Frozen: the stem and the first {blocks} blocks of {model_name}')


def range_test(args: argparse.Namespace, run: RunId, model: nn.Module, train_dataset: Dataset,
               criterion: nn.Module, device: torch.device, workers: int,
               memory_format: torch.memory_format) -> RangeTest:
    """--lr-find / --lr auto: the range test on copies of the model and of the run's optimizer
    (fmd.training.lr_finder), its figure in figures/<run>_lr_find.png."""
    optimizer = build_optimizer(args.optimizer, model, DEFAULT_START_LR, args.momentum, args.weight_decay)
    return find_lr(model, optimizer, train_dataset, criterion, device, batch_size=args.batch_size,
                   workers=workers, seed=args.seed, steps=args.lr_find_steps, memory_format=memory_format,
                   figure=run.lr_find_figure,
                   title=f'{run.name}: learning-rate range test '
                         f'(batch {args.batch_size}, weight decay {args.weight_decay:g})')


def kept_state(trainer: Trainer, run: RunId) -> str:
    """What an interrupted run left: the epoch in its resumable state, and how to continue it."""
    return (f'the state after epoch {trainer.saved_epoch} is in {run.interrupted}; continue with the '
            'same command plus --resume' if trainer.saved_epoch else 'no epoch had finished')


def import_while_decoding() -> None:
    """Import now, while fmd.data.prefetch's decoders use the other cores, what the run imports
    later anyway on one core: torch._dynamo (every torch optimizer imports it at its first step,
    about 1.7 s) and scikit-learn's metrics (the first validation AUC, about 1.2 s)."""
    import sklearn.metrics  # noqa: F401
    import torch._dynamo  # noqa: F401


@dataclass
class Splits:
    """What train() trains on: the three splits, the training DataLoader workers, what validates."""

    train: Dataset
    val: Dataset
    test: Dataset
    workers: int
    validation: str  # what picks the best epoch, for the log
    line: str


def load_splits(args: argparse.Namespace, data_root: Path, device: torch.device) -> Splits:
    """The splits as --fakes says, their decoded images cached up front."""
    # uint8 images, normalised per batch by the Trainer (performance.prepare_batch): same numbers.
    if args.fakes == 'dataset':
        train = load_dataset(args.dataset, 'train', data_root, augment=args.augment, uint8=True)
        val = load_dataset(args.dataset, 'val', data_root, uint8=True)
        cached, line = [train, val], ''
    else:
        train, val, cached, line = self_blend_splits(data_root, args.dataset, args.fakes,
                                                     uint8_transform(args.augment), args.seed, IMAGE_SIZE,
                                                     with_masks=args.mask_loss_weight > 0)
        line += ' | '
    # a dataset of real faces only (fmd.prepare of real/ alone) has no test fakes to score
    test = load_dataset(args.dataset, 'test', data_root, uint8=True, both_classes=args.fakes == 'dataset')
    validation = 'val reals and their self-blends' if args.fakes == 'self-blend' else 'the val split'
    if prefetch.current() is not None:
        import_while_decoding()
    workers, cache_line = prepare_datasets([*cached, test], device, args.workers,
                                           fill_workers=default_workers())
    return Splits(train, val, test, workers, validation, line + cache_line)


def main(argv: Sequence[str] | None = None) -> dict:
    """Train as `argv` says (None: every default, never sys.argv); returns the run's JSON record."""
    args = parse_args(argv)
    with process_group() as (distributed, device):
        return train(args, distributed, device or pick_device())


def train(args: argparse.Namespace, distributed: Distributed, device: torch.device) -> dict:
    """Train on this process's share (all of it without torchrun); returns the run's JSON record."""
    run = RunId(args.dataset, canonical_model_name(args.model), args.optimizer, args.fakes,
                masks=args.mask_loss_weight > 0)
    config = TrainConfig.from_args(args)
    seed_everything(args.seed)
    torch.set_num_threads(default_threads())
    if device.type == 'cpu':
        keep_freed_memory()
    data_root = resolve_data_root(args.data_root)
    print(f'Device: {device} | model {run.model} | dataset {args.dataset} | '
          f'{args.optimizer} lr={args.lr} batch={args.batch_size} epochs={args.epochs} '
          f'workers={"auto" if args.workers is None else args.workers} '
          f'threads={torch.get_num_threads()}')
    if distributed.enabled:
        print(f'Distributed: {distributed.world_size} processes ({distributed.backend}), '
              f'batch {args.batch_size // distributed.world_size} per process')

    splits = load_splits(args, data_root, device)
    train_dataset, val_dataset, test_dataset = splits.train, splits.val, splits.test
    print(f'Images: train {len(train_dataset)}, val {len(val_dataset)}, '
          f'test {len(test_dataset)} | {splits.line}\n'
          f'Model selection by {args.select_by} on {splits.validation}')

    model = load_model(run.model, pretrained=args.pretrained)
    pretrained = getattr(model, 'pretrained', None)
    if args.require_pretrained and pretrained is False:
        sys.exit(f'error: --require-pretrained: {run.model} could not load its ImageNet weights '
                 '(see the warning above for where to put the file).')
    if args.freeze_blocks:
        freeze_early_blocks(model, run.model, args.freeze_blocks)
    model, memory_format, compiled = prepare_model(model, run.model, device, compile=args.compile)
    nof_params = get_nof_params(model)
    print(f'{run.model}: {nof_params:,} trainable parameters | {describe(memory_format, compiled)}')
    masked = attach_mask_head(model, memory_format, args.mask_loss_weight) if run.masks else None

    class_weights = balanced_class_weights(train_dataset) if args.class_weights == 'balanced' else None
    criterion = nn.CrossEntropyLoss(weight=class_weights)
    lr, lr_find = args.lr, None
    if args.lr_find or args.lr == 'auto':
        found = range_test(args, run, model, train_dataset, criterion, device, splits.workers,
                           memory_format)
        lr, lr_find = found.suggestion, found.summary()
        if args.lr_find:
            return {'lr_find': lr_find}
    trained = model if masked is None else masked
    optimizer = build_optimizer(args.optimizer, trained, lr, args.momentum, args.weight_decay)
    hyperparameters = optimizer_hyperparameters(optimizer)  # before a warm-up lowers the lr
    scheduler = build_scheduler(args.scheduler, optimizer, args.epochs, args.warmup_epochs)
    config = config.updated(
        workers=splits.workers, nof_params=nof_params, device=device, data_root=str(data_root),
        threads=torch.get_num_threads(), validation=splits.validation,
        mask_head_params=get_nof_params(masked.head) if masked is not None else None,
        class_weights=class_weights.tolist() if class_weights is not None else None, lr_find=lr_find,
        world_size=distributed.world_size, backend=distributed.backend,
        memory_format='channels_last' if memory_format == torch.channels_last else 'contiguous',
        compiled=compiled, pretrained=None if pretrained is None else bool(pretrained),
        pretrained_source=getattr(model, 'pretrained_source', None) if pretrained is not None else None)
    logging_parameters = LoggingParameters(model_name=run.model, dataset_name=run.dataset,
                                           optimizer_name=run.optimizer,
                                           optimizer_params=hyperparameters,
                                           fakes=run.fakes, masks=run.masks)
    if distributed.rank:  # other ranks augment and drop out differently; rank 0 keeps the seed
        seed_everything(args.seed + distributed.rank)
    trainer = Trainer(trained, optimizer, criterion, args.batch_size // distributed.world_size,
                      train_dataset, val_dataset, test_dataset, config, scheduler=scheduler,
                      distributed=distributed)
    try:
        record = trainer.run(args.epochs, logging_parameters, resume=args.resume)
    except KeyboardInterrupt as interrupt:
        if distributed.is_main:
            print(f'Interrupted: {kept_state(trainer, run)}. The previous completed run is unchanged.',
                  file=sys.stderr)
        sys.exit(exit_code(interrupt))
    except RuntimeError as error:  # under torchrun, also what a rank sees when another one stops
        if not distributed.enabled or isinstance(error, RunLockedError):
            raise
        raise RuntimeError(f'rank {distributed.rank}: {error_line(error)} | {kept_state(trainer, run)}; '
                           'the previous completed run is unchanged.') from error
    best = record['best_epoch']
    print(f'Best epoch {best} by {args.select_by}: validation accuracy '
          f'{record["val_acc"][best - 1]:.2f}%, test accuracy there {record["test_acc"][best - 1]:.2f}%')
    return record


if __name__ == '__main__':
    end_quiet_start_up()
    use_agg_backend()
    run_cli(main, sys.argv[1:])
