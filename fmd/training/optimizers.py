"""The optimizer, learning-rate schedule and class weights a run trains with (train_main.py's -o,
--scheduler and --class-weights), and the optimizer's settings as the log records them."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from fmd.core.options import OPTIMIZERS
from fmd.training.performance import fused_optimizer


def build_optimizer(name: str, model: nn.Module, lr: float, momentum: float,
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """SGD (with momentum), Adam or AdamW over the trainable parameters (PyTorch's fused kernels
    where the device has them: performance.fused_optimizer)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == 'SGD':
        return fused_optimizer(torch.optim.SGD, params, lr=lr, momentum=momentum,
                               weight_decay=weight_decay)
    if name == 'Adam':
        return fused_optimizer(torch.optim.Adam, params, lr=lr, weight_decay=weight_decay)
    if name == 'AdamW':
        return fused_optimizer(torch.optim.AdamW, params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f'Unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}.')


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, epochs: int,
                    warmup_epochs: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """None, or per-epoch linear warm-up from lr/10 followed by cosine decay to 0."""
    if name == 'none':
        return None
    warmup = min(warmup_epochs, epochs - 1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs - warmup))
    if warmup == 0:
        return cosine
    linear = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


def balanced_class_weights(dataset: Dataset) -> torch.Tensor:
    """n_samples / (2 * n_class) for (real, fake): inverse class frequency, mean weight per sample 1."""
    counts = (dataset.class_counts() if hasattr(dataset, 'class_counts')
              else (len(dataset.real_image_names), len(dataset.fake_image_names)))
    counts = torch.tensor(counts, dtype=torch.float32)
    return counts.sum() / (len(counts) * counts)


def optimizer_hyperparameters(optimizer: torch.optim.Optimizer) -> dict:
    """The first param group without its parameters, as JSON-safe values."""
    group = {k: v for k, v in optimizer.param_groups[0].items() if k not in ('params', 'initial_lr')}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()
            if v is None or isinstance(v, (bool, int, float, str, tuple, list))}
