"""Images/s of every model, train and eval: eager NCHW vs channels_last vs compiled, with peak RSS.

Pure compute on one in-memory batch (forward + backward + Adam step, fused as in train_main.py, in
every variant; eval: forward under inference_mode). Each (model, variant) runs in its own child
process, so each has its own peak RSS and compile cost; the children run in alternating rounds
(A B C A B C ...) and the best round is kept, which evens out a shared machine's load. The variants:

- `eager`: contiguous (NCHW) memory, no compilation: what a template solution runs.
- `channels_last`: model and batch in channels_last memory, eager.
- `compiled`: the model's chosen memory format (performance.CHANNELS_LAST_ON_CPU) + torch.compile;
  "compile s" is the extra time of the first train step and the first eval forward.

    python bench/bench_formats.py                                  # all models, 2 rounds
    python bench/bench_formats.py --models BonusNet --variants eager channels_last --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ('SimpleNet', 'XceptionBased', 'BonusNet', 'EfficientNetLite0')
VARIANTS = ('eager', 'channels_last', 'compiled')
# Default (batch size, timed train batches, timed eval batches) per model: XceptionBased is ~25x
# slower than SimpleNet, so it gets smaller and fewer batches to stay within minutes.
DEFAULT_WORK = {'SimpleNet': (32, 4, 8), 'XceptionBased': (8, 2, 4), 'BonusNet': (32, 4, 8),
                'EfficientNetLite0': (32, 3, 6)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Which models and variants, how much work, how many rounds."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument('--rounds', type=int, default=2,
                        help='alternating rounds over all (model, variant) pairs (default: 2)')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='batch size for every model (default: 32, XceptionBased 8)')
    parser.add_argument('--train-batches', type=int, default=None, help='timed train batches')
    parser.add_argument('--eval-batches', type=int, default=None, help='timed eval batches')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: devices.default_threads())')
    parser.add_argument('--json', type=Path, default=None, help='also write the results here')
    parser.add_argument('--child', nargs=2, metavar=('MODEL', 'VARIANT'), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure(model_name: str, variant: str, batch_size: int, train_batches: int,
            eval_batches: int, threads: int) -> dict:
    """In this (child) process: images/s of training and evaluation, compile time, peak RSS."""
    import torch
    from torch import nn

    from fmd.core.devices import pick_device, seed_everything
    from fmd.core.registry import build_model
    from fmd.training import performance
    from fmd.training.optimizers import build_optimizer

    torch.set_num_threads(threads)
    seed_everything(0)
    device = pick_device()
    model = build_model(model_name, pretrained=False)
    if variant == 'eager':
        memory_format, compiled = torch.contiguous_format, False
        model = model.to(device)
    elif variant == 'channels_last':
        memory_format, compiled = torch.channels_last, False
        model = model.to(device=device, memory_format=memory_format)
    else:
        model, memory_format, compiled = performance.prepare_model(model, model_name, device,
                                                                   compile=True)
    images = torch.randn(batch_size, 3, 256, 256, device=device).contiguous(
        memory_format=memory_format)
    labels = torch.randint(0, 2, (batch_size,), device=device)
    optimizer = build_optimizer('Adam', model, 1e-4, 0.0)  # as train_main.py: fused
    criterion = nn.CrossEntropyLoss()

    def sync() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        criterion(model(images), labels).backward()
        optimizer.step()

    def eval_step() -> None:
        with torch.inference_mode():
            model(images)

    def timed(step, count: int) -> float:
        sync()
        started = time.perf_counter()
        for _ in range(count):
            step()
        sync()
        return time.perf_counter() - started

    model.train()
    first_train = timed(train_step, 1)
    train_seconds = timed(train_step, train_batches)
    model.eval()
    first_eval = timed(eval_step, 1)
    eval_seconds = timed(eval_step, eval_batches)
    # The first step of each mode also compiles; what it took beyond a normal step is compile time.
    compile_seconds = (max(0.0, first_train - train_seconds / train_batches)
                       + max(0.0, first_eval - eval_seconds / eval_batches)) if compiled else 0.0
    return {'model': model_name, 'variant': variant, 'compiled': compiled,
            'memory_format': 'channels_last' if memory_format == torch.channels_last else 'contiguous',
            'batch_size': batch_size, 'threads': threads,
            'train_images_per_s': train_batches * batch_size / train_seconds,
            'eval_images_per_s': eval_batches * batch_size / eval_seconds,
            'compile_seconds': compile_seconds,
            'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(model_name: str, variant: str, args: argparse.Namespace, threads: int) -> dict:
    """One measurement in a fresh interpreter (its own peak RSS, no state shared between variants)."""
    batch_size, train_batches, eval_batches = DEFAULT_WORK[model_name]
    command = [sys.executable, str(Path(__file__).resolve()), '--child', model_name, variant,
               '--batch-size', str(args.batch_size or batch_size),
               '--train-batches', str(args.train_batches or train_batches),
               '--eval-batches', str(args.eval_batches or eval_batches), '--threads', str(threads)]
    env = {**os.environ, 'XCEPTION_WEIGHTS': os.environ.get('XCEPTION_WEIGHTS', 'none')}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f'{model_name}/{variant} failed:\n{result.stderr[-2000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(best: dict[tuple[str, str], dict], models: list[str], variants: list[str]) -> str:
    """Markdown table: images/s (and the ratio to eager) for train and eval, compile s, peak RSS."""
    lines = ['| model | variant | batch | train img/s | x eager | eval img/s | x eager | compile s '
             '| peak RSS MiB |', '|---|---|---:|---:|---:|---:|---:|---:|---:|']
    for model_name in models:
        base = best.get((model_name, 'eager'))
        for variant in variants:
            row = best.get((model_name, variant))
            if row is None:
                continue
            label = variant if variant != 'compiled' else f'compiled ({row["memory_format"]})'
            if variant == 'compiled' and not row['compiled']:
                label = 'compiled (unavailable: eager)'

            def ratio(key: str, row: dict = row, base: dict | None = base) -> str:
                return f'{row[key] / base[key]:.2f}' if base else 'n/a'

            lines.append(f'| {model_name} | {label} | {row["batch_size"]} | '
                         f'{row["train_images_per_s"]:.3g} | {ratio("train_images_per_s")} | '
                         f'{row["eval_images_per_s"]:.3g} | {ratio("eval_images_per_s")} | '
                         f'{row["compile_seconds"]:.0f} | {row["peak_rss_mib"]:.0f} |')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Run the rounds and print the table; returns {(model, variant): best row}."""
    args = parse_args(argv)
    from fmd.core.devices import default_threads

    threads = args.threads or default_threads()
    if args.child:
        model_name, variant = args.child
        print(json.dumps(measure(model_name, variant, args.batch_size, args.train_batches,
                                 args.eval_batches, threads)))
        return {}
    best: dict[tuple[str, str], dict] = {}
    print(f'load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; '
          f'{threads} torch threads', flush=True)
    for round_index in range(args.rounds):
        for model_name in args.models:
            for variant in args.variants:
                row = run_child(model_name, variant, args, threads)
                print(f'round {round_index + 1}: {model_name:13} {variant:13} '
                      f'train {row["train_images_per_s"]:7.2f} img/s  eval '
                      f'{row["eval_images_per_s"]:7.2f} img/s  compile {row["compile_seconds"]:5.1f} s'
                      f'  RSS {row["peak_rss_mib"]:.0f} MiB  (load {os.getloadavg()[0]:.1f})',
                      flush=True)
                key = (model_name, variant)
                kept = best.setdefault(key, row)
                for phase in ('train_images_per_s', 'eval_images_per_s'):
                    kept[phase] = max(kept[phase], row[phase])
                kept['peak_rss_mib'] = max(kept['peak_rss_mib'], row['peak_rss_mib'])
                kept['compile_seconds'] = min(kept['compile_seconds'], row['compile_seconds'])
    print(table(best, args.models, args.variants))
    print(f'load average after: {os.getloadavg()[0]:.1f}')
    if args.json:
        args.json.write_text(json.dumps([*best.values()], indent=1))
    return best


if __name__ == '__main__':
    main()
