"""Write report/report.md and report/report.pdf: the assignment's answers, Q1-Q35 and the bonus.

Every number comes from the files a run left in out/ (training logs, metrics, bonus results,
saliency statistics, step timings) or from the model definitions (parameter counts, layer sizes),
and every signature from the code itself; an input that is missing is listed, never guessed.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: only where to write; everything else is read from the run's folders."""
    parser = argparse.ArgumentParser(prog='faces-report', description=__doc__)
    parser.add_argument('--out', '--out-dir', dest='out', default='report', metavar='DIR',
                        help='folder to write report.md, report.pdf and summary.json into '
                             '(default: report; --out-dir: the same)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Parse the command line, then write the report; torch and fpdf load only here, not for --help."""
    args = parse_args(argv)
    from fmd.reporting.write import write_report

    return write_report(Path(args.out))


def entry() -> None:
    """The console script and `python -m fmd.reporting`: errors are one line (run_cli)."""
    from fmd.core.cli import run_cli

    run_cli(main)


if __name__ == '__main__':
    entry()
