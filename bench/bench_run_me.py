"""How long `make run` takes, step by step: `python bench/bench_run_me.py [--scale starter] [--keep DIR]`.

Copies the project's tracked code into a fresh folder (no data, no outputs), runs `./run_me.sh`
there with this interpreter, as `make run` does once `.venv` exists, and prints a markdown table
of the steps run_me.sh timed itself (`out/run_me_timings.tsv`: wall seconds and peak RSS), their
share of the total, the total per model, and the whole command's wall time. The scratch folder
holds no course data, so the demo data is generated at `--scale` (run_me.sh's DEMO_SCALE).
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 600.0  # the 10-minute budget of `make run` on 2 CPU cores


def copy_project(destination: Path) -> None:
    """Every tracked file of the checkout (code, package data, run_me.sh) into destination."""
    names = subprocess.run(['git', 'ls-files'], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in names:
        source = PROJECT_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def read_timings(path: Path) -> list[tuple[str, float, str]]:
    """(step, seconds, peak RSS MiB) rows of run_me.sh's timing file."""
    with path.open(newline='') as handle:
        return [(row['step'], float(row['seconds']), row['peak_rss_mib'])
                for row in csv.DictReader(handle, delimiter='\t')]


def model_of(step: str) -> str:
    """The model a step works on ('SimpleNet' for 'train-fakes_dataset-SimpleNet'), else the step."""
    if step == 'bonus-main':
        return 'BonusNet'
    parts = step.split('-')
    return parts[-1] if len(parts) >= 3 else step


def print_table(rows: list[tuple[str, float, str]], wall: float) -> None:
    """The markdown breakdown: every step, then the total per model, then the wall time."""
    steps_total = sum(seconds for _, seconds, _ in rows)
    print('| step | seconds | share | peak RSS MiB |')
    print('|---|---:|---:|---:|')
    for step, seconds, rss in rows:
        print(f'| {step} | {seconds:.1f} | {100 * seconds / steps_total:.0f}% | {rss} |')
    print()
    per_model: dict[str, float] = {}
    for step, seconds, _ in rows:
        per_model[model_of(step)] = per_model.get(model_of(step), 0.0) + seconds
    print('| model or step | seconds (training and its analyses) |')
    print('|---|---:|')
    for name, seconds in sorted(per_model.items(), key=lambda item: -item[1]):
        print(f'| {name} | {seconds:.1f} |')
    print()
    verdict = 'within' if wall <= TARGET_S else 'OVER'
    print(f'steps: {steps_total:.1f} s; whole run_me.sh: {wall:.1f} s = {wall / 60:.1f} min '
          f'({verdict} the {TARGET_S / 60:.0f}-minute target)')


def main(argv: list[str] | None = None) -> int:
    """Run the chain in a scratch copy and print its breakdown; exit 1 if run_me.sh failed."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--scale', default='starter',
                        help='demo data scale (run_me.sh DEMO_SCALE; default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='run_me.sh SEED (default: %(default)s)')
    parser.add_argument('--keep', type=Path,
                        help='run in this new folder and keep it (default: a temporary one)')
    args = parser.parse_args(argv)
    if args.keep is not None and args.keep.exists():
        parser.error(f'--keep {args.keep} exists; give a new folder')
    work = args.keep or Path(tempfile.mkdtemp(prefix='bench_run_me_'))
    work.mkdir(parents=True, exist_ok=True)
    copy_project(work)
    env = {**os.environ, 'PYTHON': sys.executable, 'DEMO_SCALE': args.scale, 'SEED': str(args.seed),
           'PATH': f'{Path(sys.executable).parent}:{os.environ["PATH"]}'}
    for name in ('FACES_DATA_ROOT', 'QUICK'):
        env.pop(name, None)
    print(f'running ./run_me.sh in {work} (demo scale {args.scale}, seed {args.seed}) ...', flush=True)
    start = time.perf_counter()
    with (work / 'run_me.log').open('w') as log:
        result = subprocess.run(['bash', 'run_me.sh'], cwd=work, env=env, stdout=log,
                                stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - start
    if result.returncode:
        print(f'run_me.sh failed (exit {result.returncode}); see {work / "run_me.log"}', file=sys.stderr)
        return 1
    print_table(read_timings(work / 'out' / 'run_me_timings.tsv'), wall)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
