"""Plot train/val/test loss and accuracy per epoch of the last run in a training JSON log."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fmd.core.analysis_cli import DEFAULT_DATASET, DEFAULT_MODEL, default_run_file, default_run_file_help


def build_parser() -> argparse.ArgumentParser:
    """-m, -j and -d with the course template's long names and defaults (light modules only: --help
    answers before matplotlib is imported)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('-m', '--model', default=DEFAULT_MODEL,
                        help='model name, in the titles and file names (default: %(default)s)')
    parser.add_argument('-j', '--train_details_json', '--json', dest='json', default=None, metavar='JSON',
                        help=f'training log (default: {default_run_file_help("log")})')
    parser.add_argument('-d', '--dataset', default=DEFAULT_DATASET,
                        help='dataset name, in the titles and file names (default: %(default)s)')
    return parser


if __name__ == '__main__':
    build_parser().parse_args()  # --help and usage errors answer here, before matplotlib loads

import json
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from fmd.core.cli import parse_api_args, run_cli, use_agg_backend
from fmd.core.registry import canonical_model_name
from fmd.core.runs import figure_path

SPLITS = ('train', 'val', 'test')


def load_last_run(json_path: str | Path) -> dict:
    """The last record of a training log written by Trainer.write_output."""
    path = Path(json_path)
    if not path.is_file():
        raise FileNotFoundError(f'{path} not found; run train_main.py first.')
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f'{path} is not valid JSON ({error}).') from error
    if not isinstance(records, list) or not records:
        raise ValueError(f'{path} holds no training runs (expected a non-empty JSON list).')
    return records[-1]


def plot_metric(record: dict, metric: str, model_name: str, dataset_name: str,
                output_path: Path) -> Path:
    """One figure with the train/val/test curves of `metric` ('loss' or 'acc') against epoch."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for split in SPLITS:
        values = record[f'{split}_{metric}']
        axes.plot(range(1, len(values) + 1), values, marker='o', label=split)
    axes.set_xlabel('Epoch')
    axes.set_ylabel('Loss (mean per sample)' if metric == 'loss' else 'Accuracy [%]')
    title = 'Loss' if metric == 'loss' else 'Accuracy'
    axes.set_title(f'{title} vs. epoch: {model_name} on {dataset_name}')
    # Whole epochs only, with half an epoch of room: one epoch is one tick at 1, not 0.96-1.04.
    epochs = len(record[f'train_{metric}'])
    axes.set_xlim(0.5, epochs + 0.5)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_path, dpi=120)
    plt.close(figure)
    return output_path


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Write figures/<dataset>_<model>_losses_plot.png and ..._accuracies_plot.png."""
    args = parse_api_args(build_parser(), argv)
    model_name = canonical_model_name(args.model)
    record = load_last_run(args.json or default_run_file('log', args.dataset, model_name))
    written = [plot_metric(record, 'loss', model_name, args.dataset,
                           figure_path(args.dataset, model_name, 'losses_plot')),
               plot_metric(record, 'acc', model_name, args.dataset,
                           figure_path(args.dataset, model_name, 'accuracies_plot'))]
    for path in written:
        print(f'Wrote {path}')
    return written


if __name__ == '__main__':
    use_agg_backend()
    run_cli(main, sys.argv[1:])
