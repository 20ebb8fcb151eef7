"""Data-parallel training under torchrun: the process group, samplers and collectives Trainer uses.

`torchrun --nproc_per_node=N train_main.py ...` sets RANK/WORLD_SIZE/LOCAL_RANK; `init_from_env()`
then joins the process group (NCCL with one GPU per process, gloo on CPU). A plain
`python train_main.py` gets `SINGLE`, whose methods hand their inputs back untouched, so a
one-process run computes exactly what it did before.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from fmd.core.options import env_world_size, launched_by_torchrun  # noqa: F401 (light: for --help)

T = TypeVar('T')


def unique_train_samples(n: int, rank: int, world_size: int) -> int:
    """How many of DistributedSampler's samples on `rank` are not its padding (the padding is last)."""
    return len(range(rank, n, world_size))


def eval_shards(n: int, batch_size: int, world_size: int) -> list[range]:
    """Contiguous index ranges, one per rank, made of whole batches and covering 0..n-1 once.

    Every rank forms exactly the batches one process with the same batch size would, and the
    shards concatenated in rank order are the dataset order: no sample is padded or counted twice.
    """
    per_rank = math.ceil(math.ceil(n / batch_size) / world_size) * batch_size
    return [range(min(n, r * per_rank), min(n, (r + 1) * per_rank)) for r in range(world_size)]


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job; with world_size 1 and no backend every method is a no-op."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True inside a torchrun job (a process group exists)."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints and writes files."""
        return self.rank == 0

    @property
    def _device(self) -> torch.device:
        """Where collective tensors live: the process's GPU for NCCL, else the CPU."""
        return torch.device('cuda', self.local_rank) if self.backend == 'nccl' else torch.device('cpu')

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train through: DistributedDataParallel, or `model` itself."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.local_rank] if self.backend == 'nccl' else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def sampler(self, dataset: Dataset, shuffle: bool, batch_size: int,
                seed: int) -> Iterable[int] | None:
        """Training: DistributedSampler (shuffled by seed + epoch); evaluation: this rank's shard.

        None in a single process, where the DataLoader shuffles as it always did.
        """
        if not self.enabled:
            return None
        if shuffle:
            return DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank,
                                      shuffle=True, seed=seed, drop_last=False)
        return eval_shards(len(dataset), batch_size, self.world_size)[self.rank]

    def sum(self, loss: float, correct: int, seen: int, *extra: float) -> tuple:
        """Loss sum, correct and seen counts (and any `extra` sums) summed over all processes
        (all_reduce, float64)."""
        if not self.enabled:
            return (loss, correct, seen, *extra)
        values = torch.tensor([loss, correct, seen, *extra], dtype=torch.float64, device=self._device)
        dist.all_reduce(values)
        loss, correct, seen, *extra = values.tolist()
        return (loss, round(correct), round(seen), *extra)

    def gather(self, parts: list[torch.Tensor], n: int, batch_size: int,
               dtype: torch.dtype) -> torch.Tensor:
        """The 1-D evaluation outputs of all `n` samples in dataset order: every rank's `parts`
        (of its eval_shards range) concatenated in rank order."""
        if not self.enabled:
            return torch.cat(parts)
        local = torch.cat(parts).to(dtype) if parts else torch.empty(0, dtype=dtype)
        sizes = [len(shard) for shard in eval_shards(n, batch_size, self.world_size)]
        padded = torch.zeros(max(sizes), dtype=local.dtype, device=self._device)
        padded[:len(local)] = local.to(self._device)
        gathered = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(gathered, padded)
        return torch.cat([part[:size] for part, size in zip(gathered, sizes, strict=True)]).cpu()

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm running statistics) before evaluating, so
        all ranks evaluate the very weights the checkpoint stores."""
        if self.enabled:
            for buffer in model.buffers():
                dist.broadcast(buffer.data, src=0)

    def gather_objects(self, obj: T) -> list[T]:
        """`obj` of every rank, in rank order (all ranks get the list)."""
        if not self.enabled:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def from_main(self, compute: Callable[[], T]) -> T:
        """Run `compute` on rank 0 only and hand every rank its result, or raise its error on all."""
        if not self.enabled:
            return compute()
        outcome: list[Any] = [None]
        if self.is_main:
            try:
                outcome[0] = (True, compute())
            except Exception as error:  # re-raised on every rank below
                outcome[0] = (False, error)
        dist.broadcast_object_list(outcome, src=0)
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    @contextlib.contextmanager
    def held_on_main(self, lock: Any) -> Iterator[None]:
        """Hold `lock` (a RunLock) on rank 0 for the block; if rank 0 cannot take it, every rank
        raises its error, so a second job of the same run stops at start."""
        self.from_main(lambda: lock.acquire() and None)
        try:
            yield
        finally:
            if self.is_main:
                lock.release()


SINGLE = Distributed()


def init_from_env() -> tuple[Distributed, torch.device | None]:
    """Join torchrun's process group: (context, this process's device); (SINGLE, None) without torchrun.

    NCCL and the GPU LOCAL_RANK when CUDA is available, gloo and the CPU otherwise.
    """
    if not launched_by_torchrun():
        return SINGLE, None
    rank, world_size = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    if torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f'LOCAL_RANK {local_rank} but this node has {torch.cuda.device_count()} '
                             'GPUs; start at most one process per GPU (--nproc_per_node).')
        device, backend = torch.device('cuda', local_rank), 'nccl'
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device('cpu'), 'gloo'
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return Distributed(rank, world_size, local_rank, backend), device


@contextlib.contextmanager
def process_group() -> Iterator[tuple[Distributed, torch.device | None]]:
    """init_from_env() for the block; non-main ranks print nothing on stdout; the group is torn
    down on success (after a failure, process exit does it: a broken group can hang in destroy)."""
    context, device = init_from_env()
    stdout = sys.stdout
    if not context.is_main:
        sys.stdout = open(os.devnull, 'w')  # noqa: SIM115 (restored below)
    try:
        yield context, device
        if context.enabled:
            dist.destroy_process_group()
    finally:
        if sys.stdout is not stdout:
            sys.stdout.close()
            sys.stdout = stdout
