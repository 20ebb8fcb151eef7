"""Speed switches in one place: memory format per model, torch.compile with a fallback, batch preparation.

Nothing here changes a number beyond float rounding: channels_last only reorders memory, and the
per-batch normalisation is the same float operations as ToTensor + Normalize
(tests/test_performance_paths.py checks both).

- `CHANNELS_LAST_ON_CPU`: the per-model decision, measured with bench/bench_formats.py.
- `prepare_model`: puts a model in its memory format and optionally compiles it in place.
- `prepare_batch`: device, memory format and (for uint8 image batches) normalisation of a batch.
- `collate_images`: the DataLoader collate that keeps decoded images in their HWC memory layout.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.utils.data import default_collate

from fmd.data.presets import NORMALIZE_MEAN, NORMALIZE_STD

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


def input_memory_format(model: nn.Module) -> torch.memory_format:
    """channels_last when the model's convolution weights are stored channels_last, else
    contiguous: the format its input batches should have."""
    for parameter in model.parameters():
        if (parameter.dim() == 4 and not parameter.is_contiguous()
                and parameter.is_contiguous(memory_format=torch.channels_last)):
            return torch.channels_last
    return torch.contiguous_format


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


def normalize_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (Bx3xHxW or 3xHxW, any memory format) -> float32 normalised like
    TRANSFORM_TEST: the same operations as ToTensor (x / 255) then Normalize ((x - mean) / std),
    so the result is bit-identical to the per-image PIL path."""
    shape = (1, 3, 1, 1) if images.dim() == 4 else (3, 1, 1)
    mean = torch.tensor(NORMALIZE_MEAN, dtype=torch.float32, device=images.device).view(shape)
    std = torch.tensor(NORMALIZE_STD, dtype=torch.float32, device=images.device).view(shape)
    return images.float().div_(255).sub_(mean).div_(std)


def prepare_batch(images: torch.Tensor, device: torch.device,
                  memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """A batch as the model wants it: on `device`, in `memory_format` (4-D batches), and
    normalised when it holds uint8 images (those are normalised here, once per batch, on the
    device: 4x less to copy than float images, and no per-image work in the DataLoader workers)."""
    images = images.to(device, non_blocking=True)
    if images.dim() == 4:
        images = images.contiguous(memory_format=memory_format)
    if images.dtype == torch.uint8:
        images = normalize_uint8(images)
    return images


def collate_images(batch: list) -> object:
    """default_collate, except that uint8 image tensors stored HWC in memory (as torchvision's
    decoder and presets.RandomCropFlip return them) are stacked HWC: the batch comes out as a
    Bx3xHxW tensor in channels_last memory, with no transposing copy per image. Items of
    (image, label, mask) keep their masks as a third, default-collated, element."""
    first = batch[0]
    if isinstance(first, (tuple, list)) and len(first) in (2, 3) and all(
            isinstance(item[0], torch.Tensor) and item[0].dtype == torch.uint8 and item[0].dim() == 3
            and item[0].permute(1, 2, 0).is_contiguous() for item in batch):
        images = default_collate([item[0].permute(1, 2, 0) for item in batch]).permute(0, 3, 1, 2)
        rest = [default_collate([item[k] for item in batch]) for k in range(1, len(first))]
        return (images, *rest)
    return default_collate(batch)
