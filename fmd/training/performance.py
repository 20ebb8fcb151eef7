"""Speed switches in one place: memory format per model, torch.compile with a fallback, mixed
precision, fused optimizers.

Nothing here changes a number beyond float rounding: channels_last only reorders memory
(tests/test_performance_paths.py checks it). How batches reach the model is fmd.core.batches.

- `CHANNELS_LAST_ON_CPU`: the per-model decision, measured with bench/bench_formats.py.
- `prepare_model`: puts a model in its memory format and optionally compiles it in place.
- `MixedPrecision`: --amp's autocast and gradient scaler.
- `keep_freed_memory`: glibc keeps a step's freed activations for the next step.
"""
from __future__ import annotations

import contextlib
import ctypes
import sys
import warnings

import torch
from torch import nn

from fmd.core.batches import (  # noqa: F401 (their owner is fmd.core.batches; kept importable here)
    collate_images,
    input_memory_format,
    normalize_uint8,
    prepare_batch,
)

# Train and eval images/s with channels_last over contiguous (NCHW), eager, on the reference machine
# (2 CPU cores, batch 32; bench/bench_formats.py, docs/benchmarks.md). True where it is faster.
CHANNELS_LAST_ON_CPU = {
    'SimpleNet': True,
    'XceptionBased': True,
    'BonusNet': True,
    'EfficientNetLite0': True,  # 1.7x eager's train, 2.3x its eval img/s (depthwise convolutions)
}
# CUDA: channels_last is what cuDNN's tensor-core kernels want under mixed precision (PyTorch's
# own guidance; not measured here, the reference machine has no GPU). MPS: left contiguous.
CHANNELS_LAST_ON_CUDA = True


def uses_channels_last(model_name: str, device: torch.device) -> bool:
    """Whether `model_name` runs in channels_last on `device` (unlisted models: no)."""
    if device.type == 'cuda':
        return CHANNELS_LAST_ON_CUDA
    if device.type == 'cpu':
        return CHANNELS_LAST_ON_CPU.get(model_name, False)
    return False


def memory_format_for(model_name: str, device: torch.device) -> torch.memory_format:
    """torch.channels_last or torch.contiguous_format for this model on this device."""
    return torch.channels_last if uses_channels_last(model_name, device) else torch.contiguous_format


# glibc's mallopt() parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 2 ** 30  # blocks above 1 GiB are still mapped and unmapped one by one


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process instead of returning it to the kernel.

    By default glibc maps every block over 32 MiB (SimpleNet's first activations are 46 MiB) on its
    own and unmaps it when freed, and trims the heap's free top: each training step then faults
    its activations back in page by page (about 50,000 page faults and 100 ms of kernel time per
    SimpleNet step on 2 cores). Kept, the next step reuses them: 0 faults, the step about 7% faster
    (bench/bench_train.py). The numbers are the same; memory is given back at exit, not before, so
    the process stays at its peak size. Returns whether glibc took both settings (False elsewhere).
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1)) & bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def compiler_unavailable_reason(device: torch.device) -> str | None:
    """Why torch.compile (inductor) cannot work here, or None when it should."""
    try:
        import torch._dynamo as dynamo

        if not dynamo.is_dynamo_supported():
            return 'TorchDynamo does not support this Python/platform'
        if device.type == 'cpu':
            from torch._inductor import cpp_builder

            cpp_builder.get_cpp_compiler()  # raises when no C++ compiler is found
        elif device.type == 'cuda':
            from torch.utils._triton import has_triton

            if not has_triton():
                return 'Triton is not installed'
    except Exception as error:  # any import or probe failure means: no compiler
        return f'{type(error).__name__}: {error}'.strip()
    return None


def compile_model(model: nn.Module, device: torch.device) -> bool:
    """Compile `model` in place (nn.Module.compile: its state_dict keys stay the same, no
    `_orig_mod.` prefix). Returns True when compiled; otherwise warns once and leaves it eager.

    The first forward pass of each mode (train, eval) and batch shape pays the compile time; a
    graph that fails to compile later runs eagerly (torch._dynamo suppress_errors).
    """
    reason = compiler_unavailable_reason(device)
    if reason is None:
        try:
            model.compile()
        except Exception as error:
            reason = f'{type(error).__name__}: {error}'.strip()
        else:
            import torch._dynamo

            torch._dynamo.config.suppress_errors = True
            return True
    warnings.warn(f'--compile: torch.compile is not available ({reason}); running the model '
                  'eagerly (same results, without the compile speed-up).', RuntimeWarning,
                  stacklevel=2)
    return False


def prepare_model(model: nn.Module, model_name: str, device: torch.device, *,
                  compile: bool = False) -> tuple[nn.Module, torch.memory_format, bool]:
    """Move `model` to `device` in its memory format, compile it when asked.

    Returns (model, the memory format its input batches should have, whether it was compiled).
    """
    memory_format = memory_format_for(model_name, device)
    model = model.to(device=device, memory_format=memory_format)
    compiled = compile_model(model, device) if compile else False
    return model, memory_format, compiled


def fused_optimizer(optimizer_class: type[torch.optim.Optimizer], params: list,
                    **hyperparameters: object) -> torch.optim.Optimizer:
    """`optimizer_class(params, fused=True, ...)` where PyTorch has a fused kernel for the device
    (CPU and CUDA: one pass over each parameter instead of a dozen; SimpleNet's Adam step takes
    11 ms instead of 98 on 2 cores, results equal to ~1e-9), else the plain implementation."""
    if params and all(p.device.type in ('cpu', 'cuda') and p.is_floating_point() for p in params):
        try:
            return optimizer_class(params, fused=True, **hyperparameters)
        except (RuntimeError, ValueError, TypeError):
            pass
    return optimizer_class(params, **hyperparameters)


def describe(memory_format: torch.memory_format, compiled: bool) -> str:
    """'channels_last, compiled' and the like, for the run's log line."""
    layout = 'channels_last' if memory_format == torch.channels_last else 'contiguous (NCHW)'
    return f'{layout}, {"compiled" if compiled else "eager"}'


class MixedPrecision:
    """--amp on CUDA: forward passes under autocast (bfloat16 where the GPU has it, else float16 with
    a gradient scaler); elsewhere, or switched off, `autocast()` does nothing and `scaler` passes
    losses and steps through unchanged."""

    def __init__(self, device: torch.device, enabled: bool | None = None):
        self.enabled = device.type == 'cuda' if enabled is None else (enabled and device.type == 'cuda')
        self.dtype = torch.bfloat16 if self.enabled and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.enabled and self.dtype == torch.float16)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context a forward pass runs in."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type='cuda', dtype=self.dtype)
