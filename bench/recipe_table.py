"""The recipe table of docs/training.md: fmd.evaluate rows of several seeds, as mean ± spread per recipe.

Each training run lives in its own folder named `<recipe>_s<seed>` (for example
`runs/forensic_s0/checkpoints/ciplab_BonusNet_AdamW.pt`); fmd.evaluate scores every checkpoint on
every test set and this script groups its rows by (recipe, model, trained on, tested on):

    python -m fmd.evaluate --checkpoint runs/*/checkpoints/*.pt --data /tmp/data_real/ciplab \\
        demo_datasets/fakes_dataset --out runs
    python bench/recipe_table.py runs/evaluation.json

Per group it prints the number of seeds, the test ROC AUC as mean ± standard deviation over the
seeds, the 95% interval of that mean (Student's t over the seeds), the lowest and highest bound of
the seeds' own 95% bootstrap intervals, how many seeds fmd.evaluate marked INVERTED (their whole
interval below 0.5), the balanced accuracy (mean ± sd, at P(fake) >= 0.5) and the accuracy. No
figure is chosen here: the recipes were chosen on validation AUC before the test sets were scored.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

SEED_FOLDER = re.compile(r'^(?P<recipe>.+)_s(?P<seed>\d+)$')


def recipe_and_seed(checkpoint: str) -> tuple[str, int]:
    """('forensic', 0) for .../forensic_s0/checkpoints/x.pt: the run folder above checkpoints/."""
    folder = Path(checkpoint).parent.parent.name
    match = SEED_FOLDER.match(folder)
    if match is None:
        raise ValueError(f'{checkpoint}: its run folder {folder!r} is not named <recipe>_s<seed>')
    return match['recipe'], int(match['seed'])


def mean_sd(values: list[float]) -> str:
    """'0.612 ± 0.021' (sample standard deviation; '± -' for one value)."""
    spread = f'{statistics.stdev(values):.3f}' if len(values) > 1 else '-'
    return f'{statistics.fmean(values):.3f} ± {spread}'


def percent_mean_sd(values: list[float]) -> str:
    """'61.2% ± 2.1' for percentages."""
    spread = f'{statistics.stdev(values):.1f}' if len(values) > 1 else '-'
    return f'{statistics.fmean(values):.1f}% ± {spread}'


def mean_interval(values: list[float]) -> str:
    """'[0.601, 0.699]': the 95% t-interval of the mean over the seeds ('-' for one value)."""
    if len(values) < 2:
        return '-'
    from scipy.stats import t

    half = t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    mean = statistics.fmean(values)
    return f'[{mean - half:.3f}, {mean + half:.3f}]'


def table(rows: list[dict]) -> list[str]:
    """Markdown lines: one row per (recipe, model, trained on, tested on), sorted."""
    groups: dict[tuple[str, str, str, str], list[tuple[int, dict]]] = defaultdict(list)
    for row in rows:
        recipe, seed = recipe_and_seed(row['checkpoint'])
        groups[(row['model'], recipe, row['trained_on'], row['data_name'])].append((seed, row))
    lines = ['| model | recipe | trained on | tested on | seeds | test AUC mean ± sd | 95% CI of the mean | '
             'seeds\' 95% CIs span | INVERTED | balanced acc. | acc. |',
             '|---|---|---|---|---|---:|---:|---:|---:|---:|---:|']
    for (model, recipe, trained_on, tested_on), members in sorted(groups.items()):
        members.sort(key=lambda item: item[0])
        runs = [row for _, row in members]
        aucs = [row['auc'] for row in runs]
        inverted = sum(bool(row.get('inverted')) for row in runs)
        low = min(row['auc_ci'][0] for row in runs)
        high = max(row['auc_ci'][1] for row in runs)
        lines.append(f'| {model} | {recipe} | {trained_on} | {tested_on} | '
                     f'{",".join(str(seed) for seed, _ in members)} | '
                     f'{mean_sd(aucs)} | {mean_interval(aucs)} | [{low:.3f}, {high:.3f}] | '
                     f'{inverted}/{len(runs)} | '
                     f'{percent_mean_sd([row["balanced_accuracy"] for row in runs])} | '
                     f'{percent_mean_sd([row["accuracy"] for row in runs])} |')
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('evaluations', nargs='+', type=Path, help="fmd.evaluate's JSON output(s)")
    args = parser.parse_args(argv)
    rows = []
    for path in args.evaluations:
        try:
            rows.extend(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            sys.exit(f'error: {path}: not a readable fmd.evaluate JSON file ({error}); '
                     'run python -m fmd.evaluate first.')
    try:
        print('\n'.join(table(rows)))
    except (KeyError, ValueError) as error:
        sys.exit(f'error: {error}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
