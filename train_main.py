"""Train a model on one dataset: `python train_main.py -d fakes_dataset -m SimpleNet -e 5 -o Adam`."""
from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from trainer import LoggingParameters, Trainer
from utils import (
    DATASET_NAMES,
    MODEL_ALIASES,
    MODEL_BUILDERS,
    add_common_args,
    canonical_model_name,
    device,
    get_nof_params,
    load_dataset,
    load_model,
    resolve_data_root,
    seed_everything,
)

OPTIMIZERS = ('SGD', 'Adam')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the assignment's training script, plus --seed/--workers/--data-root."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--lr', type=float, default=0.001, help='learning rate (default: 0.001)')
    parser.add_argument('--momentum', type=float, default=0.9,
                        help='SGD momentum (default: 0.9; ignored by Adam)')
    parser.add_argument('--batch_size', '-b', type=int, default=32,
                        help='training batch size (default: 32)')
    parser.add_argument('--epochs', '-e', type=int, default=2, help='epochs (default: 2)')
    parser.add_argument('--model', '-m', default='SimpleNet',
                        choices=sorted([*MODEL_BUILDERS, *MODEL_ALIASES]),
                        help='model to train (default: SimpleNet)')
    parser.add_argument('--optimizer', '-o', default='Adam', choices=OPTIMIZERS,
                        help='optimizer (default: Adam)')
    parser.add_argument('--dataset', '-d', default='fakes_dataset', choices=DATASET_NAMES,
                        help='dataset to train on (default: fakes_dataset)')
    amp = parser.add_mutually_exclusive_group()
    amp.add_argument('--amp', dest='amp', action='store_true', default=None,
                     help='automatic mixed precision (default: on with CUDA, off on CPU)')
    amp.add_argument('--no-amp', dest='amp', action='store_false', help='disable mixed precision')
    parser.add_argument('--require-pretrained', action='store_true',
                        help='fail instead of warning when ImageNet weights cannot be loaded')
    parser.add_argument('--no-progress', action='store_true', help='hide the tqdm bars')
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        parser.error('--epochs and --batch_size must be >= 1 and --lr > 0')
    return args


def build_optimizer(name: str, model: nn.Module, lr: float,
                    momentum: float) -> torch.optim.Optimizer:
    """SGD (with momentum) or Adam over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == 'SGD':
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == 'Adam':
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f'Unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}.')


def optimizer_hyperparameters(optimizer: torch.optim.Optimizer) -> dict:
    """The first param group without its parameters, as JSON-safe values."""
    group = {k: v for k, v in optimizer.param_groups[0].items() if k != 'params'}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()
            if v is None or isinstance(v, (bool, int, float, str, tuple, list))}


def main(argv: list[str] | None = None) -> dict:
    """Train as the command line says; returns the run's JSON record."""
    args = parse_args(argv)
    model_name = canonical_model_name(args.model)
    seed_everything(args.seed)
    data_root = resolve_data_root(args.data_root)
    print(f'Device: {device} | model {model_name} | dataset {args.dataset} | '
          f'{args.optimizer} lr={args.lr} batch={args.batch_size} epochs={args.epochs}')

    train_dataset = load_dataset(args.dataset, 'train', data_root)
    val_dataset = load_dataset(args.dataset, 'val', data_root)
    test_dataset = load_dataset(args.dataset, 'test', data_root)
    print(f'Images: train {len(train_dataset)}, val {len(val_dataset)}, '
          f'test {len(test_dataset)}')

    model = load_model(model_name)
    pretrained = getattr(model, 'pretrained', None)
    if args.require_pretrained and pretrained is False:
        sys.exit(f'error: --require-pretrained: {model_name} could not load its ImageNet weights '
                 '(see the warning above for where to put the file).')
    nof_params = get_nof_params(model)
    print(f'{model_name}: {nof_params:,} trainable parameters')

    optimizer = build_optimizer(args.optimizer, model, args.lr, args.momentum)
    extra = {'seed': args.seed, 'batch_size': args.batch_size, 'epochs': args.epochs,
             'nof_params': nof_params, 'device': str(device), 'data_root': str(data_root)}
    if pretrained is not None:
        extra['pretrained'] = bool(pretrained)
        extra['pretrained_source'] = getattr(model, 'pretrained_source', None)
    logging_parameters = LoggingParameters(model_name=model_name, dataset_name=args.dataset,
                                           optimizer_name=args.optimizer,
                                           optimizer_params=optimizer_hyperparameters(optimizer),
                                           extra=extra)
    trainer = Trainer(model, optimizer, nn.CrossEntropyLoss(), args.batch_size, train_dataset,
                      val_dataset, test_dataset, num_workers=args.workers, amp=args.amp,
                      seed=args.seed, show_progress=not args.no_progress)
    record = trainer.run(args.epochs, logging_parameters)
    best = record['best_epoch']
    print(f'Best validation accuracy {record["val_acc"][best - 1]:.2f}% at epoch {best}; '
          f'test accuracy there {record["test_acc"][best - 1]:.2f}%')
    return record


if __name__ == '__main__':
    main()
