"""Where one run of the assignment's training command spends its wall time, start-up included, beside
a plain solution's run of the same command, as whole processes in one invocation.

Ours: `train_main.py -d DATASET -m SimpleNet --lr 0.001 -b 32 -e E -o Adam`. Plain:
bench/plain_train_main.py (PIL per image, num_workers=0, eager, torch.save, json.dump), the same
command line. Each is a fresh process in a fresh folder; rounds alternate (ours, plain, ours, ...) at
each epoch count, and the table gives every phase's median over the rounds:

    interpreter   process start (the parent's clock at Popen) to the first line of the script
    imports       the script's module-level imports
    data          the splits (ours: listing, image checks, the decoded-image cache)
    model         building the model and optimizer (ours: memory format, parameter count)
    epoch N ...   each epoch's train, validation and test passes (ours: + the metrics, the best state)
    after         after the last test pass: checkpoint, log, summary lines
    exit          the script's return to the process's exit (interpreter shutdown, workers)

Our phases come from wrapping train_main's functions in the child (nothing in train_main.py is
timed); the plain script notes its own. Also prints the imports over 0.1 s of one ours run
(`python -X importtime`), and the whole-process ratio ours / plain per epoch count (below 1: ours
is faster).

    python bench/bench_startup.py --data-root demo_datasets                 # 1 and 2 epochs, 3 rounds
    python bench/bench_startup.py --data-root demo_datasets --epochs 1 5 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAIN = ROOT / 'bench' / 'plain_train_main.py'

# The child that runs train_main.main() with its phases noted: (name, time.time()) pairs to $PHASES_FILE.
OURS_DRIVER = r'''
import json, os, sys, time
phases = [('start', time.time())]
sys.path.insert(0, os.environ['PROJECT_ROOT'])
sys.argv = ['train_main.py', *sys.argv[1:]]
from pathlib import Path
from fmd.core.options import IMAGE_SIZE  # what train_main.py's __main__ block starts (start_prefetch),
from fmd.data import prefetch  # torch-free
from fmd.data.data_root import DATASET_PARTS
prefetch.start([Path(os.environ['DATASET_DIR'], part) for part in DATASET_PARTS], IMAGE_SIZE)
import train_main
import trainer
phases.append(('imports', time.time()))

def noted(owner, name, label):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        phases.append((label(args) if callable(label) else label, time.time()))
        return result
    setattr(owner, name, wrapper)

def evaluation_label(args):
    which = 'val' if args[1] is args[0].validation_dataset else 'test'
    return f'epoch {args[0].epoch} {which}'

noted(train_main, 'load_splits', 'data')
noted(train_main, 'prepare_model', 'model')
noted(trainer.Trainer, 'train_one_epoch', lambda args: f'epoch {args[0].epoch} train')
noted(trainer.Trainer, 'evaluate_model_on_dataloader', evaluation_label)
train_main.use_agg_backend()
train_main.run_cli(train_main.main, sys.argv[1:])  # as train_main.py's __main__ block runs it
phases.append(('after the last epoch', time.time()))
with open(os.environ['PHASES_FILE'], 'w') as handle:
    json.dump(phases, handle)
'''


def command(kind: str, epochs: int, data_root: Path) -> list[str]:
    """The assignment's command for `kind` ('ours' or 'plain')."""
    flags = ['-d', 'fakes_dataset', '-m', 'SimpleNet', '--lr', '0.001', '-b', '32', '-e', str(epochs),
             '-o', 'Adam', '--data-root', str(data_root)]
    if kind == 'ours':
        return [sys.executable, '-c', OURS_DRIVER, *flags, '--no-progress']
    return [sys.executable, str(PLAIN), *flags]


def timed_run(kind: str, epochs: int, data_root: Path, scratch: Path) -> dict[str, float]:
    """One whole process in a fresh folder: {phase: seconds}, 'exit' and 'total' included."""
    folder = Path(tempfile.mkdtemp(prefix=f'{kind}_', dir=scratch))
    phases_file = folder / 'phases.json'
    env = {**os.environ, 'PHASES_FILE': str(phases_file), 'PROJECT_ROOT': str(ROOT),
           'DATASET_DIR': str(data_root / 'fakes_dataset')}
    started = time.time()
    result = subprocess.run(command(kind, epochs, data_root), cwd=folder, env=env,
                            capture_output=True, text=True)
    ended = time.time()
    if result.returncode != 0:
        sys.exit(f'error: the {kind} run failed ({result.returncode}): {result.stderr.strip()[-500:]}')
    noted = json.loads(phases_file.read_text())
    seconds, previous = {'interpreter': noted[0][1] - started}, noted[0][1]
    for name, moment in noted[1:]:
        seconds[name] = seconds.get(name, 0.0) + moment - previous
        previous = moment
    seconds['exit'] = ended - previous
    seconds['total'] = ended - started
    return seconds


def biggest_imports(data_root: Path, scratch: Path, floor: float = 0.1) -> list[tuple[str, float]]:
    """Top-level imports of one ours run (python -X importtime) that took over `floor` seconds."""
    folder = Path(tempfile.mkdtemp(prefix='importtime_', dir=scratch))
    env = {**os.environ, 'PHASES_FILE': str(folder / 'phases.json'), 'PROJECT_ROOT': str(ROOT)}
    result = subprocess.run([sys.executable, '-X', 'importtime', *command('ours', 1, data_root)[1:]],
                            cwd=folder, env=env, capture_output=True, text=True)
    found = []
    for line in result.stderr.splitlines():
        if not line.startswith('import time:') or 'cumulative' in line:
            continue
        _, cumulative, name = line[len('import time:'):].split('|')
        if len(name) - len(name.lstrip()) == 1:  # one space: imported by the script itself
            found.append((name.strip(), int(cumulative) / 1e6))
    return sorted(((name, s) for name, s in found if s >= floor), key=lambda item: -item[1])


def phase_order(runs: list[dict[str, float]]) -> list[str]:
    """Phase names in the order they happened (interpreter first, exit and total last)."""
    names: list[str] = []
    for run in runs:
        names += [name for name in run if name not in names]
    return [name for name in names if name not in ('exit', 'total')] + ['exit', 'total']


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--data-root', type=Path, required=True, help='folder holding fakes_dataset/')
    parser.add_argument('--epochs', type=int, nargs='+', default=[1, 2], help='epoch counts (default: 1 2)')
    parser.add_argument('--rounds', type=int, default=3,
                        help='(ours, plain) pairs per epoch count (default: 3)')
    parser.add_argument('--json', type=Path, default=None, help='also write the medians here')
    args = parser.parse_args(argv)
    if not (args.data_root / 'fakes_dataset').is_dir():
        parser.error(f'argument --data-root: no fakes_dataset/ in {args.data_root}')
    print(f'load average before: {" ".join(f"{x:.1f}" for x in os.getloadavg())}', flush=True)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix='bench_startup_') as scratch:
        imports = biggest_imports(args.data_root, Path(scratch))
        for epochs in args.epochs:
            runs: dict[str, list[dict[str, float]]] = {'ours': [], 'plain': []}
            for round_number in range(args.rounds):
                for kind in ('ours', 'plain'):
                    runs[kind].append(timed_run(kind, epochs, args.data_root, Path(scratch)))
                    print(f'{epochs} epoch(s), round {round_number + 1}, {kind}: '
                          f'{runs[kind][-1]["total"]:.1f} s', flush=True)
            print(f'\n{epochs} epoch(s): median seconds over {args.rounds} rounds')
            print('| phase | ours | plain |\n|---|---:|---:|')
            for name in phase_order(runs['ours'] + runs['plain']):
                cells = [statistics.median(run.get(name, 0.0) for run in runs[kind])
                         for kind in ('ours', 'plain')]
                print(f'| {name} | {cells[0]:.2f} | {cells[1]:.2f} |')
                for kind, value in zip(('ours', 'plain'), cells, strict=True):
                    results.setdefault(f'{kind} {epochs} epochs', {})[name] = value
            ratios = [ours['total'] / plain['total']
                      for ours, plain in zip(runs['ours'], runs['plain'], strict=True)]
            print(f'ours / plain, whole process: median {statistics.median(ratios):.3f} '
                  f'(range {min(ratios):.3f}-{max(ratios):.3f}) = {1 / statistics.median(ratios):.2f}x\n')
            results[f'ratio {epochs} epochs'] = {'median': statistics.median(ratios), 'min': min(ratios),
                                                 'max': max(ratios)}
    print('Imports of one ours run over 0.1 s (python -X importtime, cumulative):')
    for name, seconds in imports:
        print(f'  {name}: {seconds:.2f} s')
    print(f'load average after: {" ".join(f"{x:.1f}" for x in os.getloadavg())}')
    if args.json is not None:
        args.json.write_text(json.dumps({'imports': imports, **results}, indent=2))
    return results


if __name__ == '__main__':
    main()
