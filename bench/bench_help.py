"""Seconds each script takes to print --help (target: under 2 s): `python bench/bench_help.py [--repeat 3]`.

Every command of the project (a top-level script with a `__main__` block, and every
`python -m fmd...` module with one) runs `--help` in a fresh interpreter `--repeat` times; the table
shows the fastest and slowest wall-clock time and whether the
fastest is within the target. No command imports torch (about 8 s on a shared 2-core machine) for
--help: the tools import it only when they compute, and the assignment's scripts, which keep their
torch imports at the top for the graders, build their parser from light modules and parse it in an
`if __name__ == '__main__'` guard above those imports (tests/test_cli_convention.py checks both).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0


def scripts() -> list[str]:
    """The top-level scripts (`train_main.py`) then the package's commands (`-m fmd.detect`)."""
    main_block = "if __name__ == '__main__':"
    top = sorted(p.name for p in PROJECT_ROOT.glob('*.py') if main_block in p.read_text(encoding='utf-8'))
    package = sorted(
        '-m ' + '.'.join(p.relative_to(PROJECT_ROOT).with_suffix('').parts).removesuffix('.__main__')
        for p in (PROJECT_ROOT / 'fmd').rglob('*.py')
        if p.name == '__main__.py' or (main_block in p.read_text(encoding='utf-8')
                                      and not (p.parent / '__main__.py').exists()))
    return top + package


def help_seconds(script: str) -> tuple[float, int]:
    """(wall-clock seconds of `python script --help`, its exit code)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *script.split(), '--help'], cwd=PROJECT_ROOT,
                            capture_output=True, check=False)
    return time.perf_counter() - start, result.returncode


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit code 1 when some script misses the target."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeat', type=int, default=3, help='runs per script (default: %(default)s)')
    args = parser.parse_args(argv)
    print(f'{"script":32} {"fastest s":>9} {"slowest s":>9}  within {TARGET_S:g} s')
    missed = 0
    for script in scripts():
        runs = [help_seconds(script) for _ in range(max(1, args.repeat))]
        seconds, code = [s for s, _ in runs], runs[-1][1]
        if code:  # e.g. -m fmd.data.data_root: a check for the Makefile, with no argparse
            verdict = f'n/a (no --help: exit {code})'
        else:
            verdict = 'yes' if min(seconds) < TARGET_S else 'NO'
            missed += verdict == 'NO'
        print(f'{script:32} {min(seconds):9.2f} {max(seconds):9.2f}  {verdict}')
    return 1 if missed else 0


if __name__ == '__main__':
    sys.exit(main())
