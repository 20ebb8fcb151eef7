"""One owner for run names, output paths and the assignment's chain of runs.

Every script, run_me.sh, fmd.reporting, bench/ and the tests name a run's files through these
functions, so renaming an output or adding a run is a one-line change here.
`python runs.py [--quick]` prints the chain as `dataset model epochs analyses...` lines for run_me.sh.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from common import CHECKPOINT_DIR, FIGURES_DIR, OUTPUT_DIR

DEFAULT_OPTIMIZER = 'Adam'

# Figure kinds written per (dataset, model), with the caption the report gives them.
FIGURE_KINDS = {
    'losses_plot': 'Mean loss per sample on train/val/test by epoch',
    'accuracies_plot': 'Accuracy [%] on train/val/test by epoch',
    'roc_curve': 'ROC curves of the first (real) and second (fake) output on the test set',
    'det_curve': 'DET curves of both outputs on the test set (normal-deviate axes)',
    'saliency_maps_and_images_pairs': 'Test images beside their vanilla-gradient saliency maps',
    'mean_saliency_maps': 'Mean (min-max normalised) saliency map of real and of fake test images',
    'Real_Image_grad_cam': 'Grad-CAM on the last convolution for a real test image',
    'Fake_Image_grad_cam': 'Grad-CAM on the last convolution for a fake test image',
}
SAMPLES_FIGURE = Path(FIGURES_DIR) / 'datasets_samples.png'
BONUS_CHECKPOINT = Path(CHECKPOINT_DIR) / 'bonus_model.pt'
BONUS_RESULTS = Path(OUTPUT_DIR) / 'bonus_main.json'
TIMINGS = Path(OUTPUT_DIR) / 'run_me_timings.tsv'
EVALUATION_JSON = Path(OUTPUT_DIR) / 'evaluation.json'  # fmd.evaluate's rows; evaluation.md beside it
CROSS_DATASET_FIGURE = Path(FIGURES_DIR) / 'cross_dataset_auc.png'
VAL_THRESHOLD_KEY = 'val_eer_threshold'  # the checkpoint key of the best epoch's validation EER threshold


def run_name(dataset: str, model: str, optimizer: str = DEFAULT_OPTIMIZER) -> str:
    """`<dataset>_<model>_<optimizer>`: the stem of a training run's log and checkpoint."""
    return f'{dataset}_{model}_{optimizer}'


def training_set_name(dataset: str, fakes: str = 'dataset', masks: bool = False) -> str:
    """What a run trained on, as its file names and tables say it: `ciplab`, `ciplab+self-blend`,
    and `ciplab+self-blend+mask` for a run that also trained a mask head."""
    name = dataset if fakes == 'dataset' else f'{dataset}+{fakes}'
    return f'{name}+mask' if masks else name


def log_path(dataset: str, model: str, optimizer: str = DEFAULT_OPTIMIZER) -> Path:
    """out/<run>.json: the list of JSON records Trainer.run appends to."""
    return Path(OUTPUT_DIR) / f'{run_name(dataset, model, optimizer)}.json'


def checkpoint_path(dataset: str, model: str, optimizer: str = DEFAULT_OPTIMIZER) -> Path:
    """checkpoints/<run>.pt: the best-validation weights of the last completed run."""
    return Path(CHECKPOINT_DIR) / f'{run_name(dataset, model, optimizer)}.pt'


def interrupted_checkpoint_path(dataset: str, model: str,
                                optimizer: str = DEFAULT_OPTIMIZER) -> Path:
    """checkpoints/<run>.interrupted.pt: the resumable state of a run stopped before its end."""
    return Path(CHECKPOINT_DIR) / f'{run_name(dataset, model, optimizer)}.interrupted.pt'


def lock_path(dataset: str, model: str, optimizer: str = DEFAULT_OPTIMIZER) -> Path:
    """checkpoints/<run>.lock: held by the one process training this run."""
    return Path(CHECKPOINT_DIR) / f'{run_name(dataset, model, optimizer)}.lock'


def lr_find_figure_path(dataset: str, model: str, optimizer: str = DEFAULT_OPTIMIZER) -> Path:
    """figures/<run>_lr_find.png: the learning-rate range test of `train_main.py --lr-find`."""
    return Path(FIGURES_DIR) / f'{run_name(dataset, model, optimizer)}_lr_find.png'


def metrics_path(dataset: str, model: str) -> Path:
    """out/<dataset>_<model>_metrics.json, written by numerical_analysis.py."""
    return Path(OUTPUT_DIR) / f'{dataset}_{model}_metrics.json'


def saliency_stats_path(dataset: str, model: str) -> Path:
    """out/<dataset>_<model>_saliency_stats.json: where saliency_map.py's mean maps put their mass."""
    return Path(OUTPUT_DIR) / f'{dataset}_{model}_saliency_stats.json'


def logged_pretrained(dataset: str, model: str, optimizer: str = DEFAULT_OPTIMIZER) -> bool | None:
    """`pretrained` of the last record in the run's training log; None when not recorded."""
    try:
        records = json.loads(log_path(dataset, model, optimizer).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(records, list) or not records or not isinstance(records[-1], dict):
        return None
    value = records[-1].get('pretrained')
    return value if isinstance(value, bool) else None


def initialisation_note(dataset: str, model: str, optimizer: str = DEFAULT_OPTIMIZER) -> str:
    """' (RANDOM INIT: no ImageNet weights)' for a run logged as not pretrained, else ''."""
    if logged_pretrained(dataset, model, optimizer) is False:
        return ' (RANDOM INIT: no ImageNet weights)'
    return ''


def figure_path(dataset: str, model: str, kind: str) -> Path:
    """figures/<dataset>_<model>_<kind>.png (the assignment's figure names)."""
    if kind not in FIGURE_KINDS:
        raise ValueError(f'Unknown figure kind {kind!r}; choose one of {list(FIGURE_KINDS)}.')
    return Path(FIGURES_DIR) / f'{dataset}_{model}_{kind}.png'


# Analysis steps run_me.sh knows how to run for a trained model.
ANALYSES = ('plots', 'numerical', 'saliency', 'grad_cam', 'bonus')


@dataclass(frozen=True)
class RunId:
    """What names a training run's files: the training set (dataset, its fakes, a mask head), the
    model and the optimizer. trainer.LoggingParameters and the chain's Run both name files through it."""

    dataset: str
    model: str
    optimizer: str = DEFAULT_OPTIMIZER
    fakes: str = 'dataset'
    masks: bool = False

    @property
    def training_set(self) -> str:
        """`ciplab`, `ciplab+self-blend` or `ciplab+self-blend+mask` (training_set_name)."""
        return training_set_name(self.dataset, self.fakes, self.masks)

    @property
    def name(self) -> str:
        return run_name(self.training_set, self.model, self.optimizer)

    @property
    def log(self) -> Path:
        return log_path(self.training_set, self.model, self.optimizer)

    @property
    def checkpoint(self) -> Path:
        return checkpoint_path(self.training_set, self.model, self.optimizer)

    @property
    def interrupted(self) -> Path:
        return interrupted_checkpoint_path(self.training_set, self.model, self.optimizer)

    @property
    def lock(self) -> Path:
        return lock_path(self.training_set, self.model, self.optimizer)

    @property
    def lr_find_figure(self) -> Path:
        return lr_find_figure_path(self.training_set, self.model, self.optimizer)


@dataclass(frozen=True)
class Run:
    """One training run of the assignment's chain and the analyses that follow it."""

    dataset: str
    model: str
    question: str
    epochs: int = 5
    analyses: tuple[str, ...] = ('plots', 'numerical', 'grad_cam')
    optimizer: str = DEFAULT_OPTIMIZER

    @property
    def id(self) -> RunId:
        return RunId(self.dataset, self.model, self.optimizer)

    @property
    def name(self) -> str:
        return self.id.name

    @property
    def log(self) -> Path:
        return self.id.log

    @property
    def checkpoint(self) -> Path:
        return self.id.checkpoint

    @property
    def metrics(self) -> Path:
        return metrics_path(self.dataset, self.model)

    def figure(self, kind: str) -> Path:
        return figure_path(self.dataset, self.model, kind)


# The assignment's chain, in the order run_me.sh trains and the report discusses them.
ASSIGNMENT_RUNS: tuple[Run, ...] = (
    Run('fakes_dataset', 'SimpleNet', 'Q8', analyses=('plots', 'numerical', 'saliency', 'grad_cam')),
    Run('synthetic_dataset', 'SimpleNet', 'Q14'),
    Run('synthetic_dataset', 'XceptionBased', 'Q27', epochs=2,
        analyses=('plots', 'numerical', 'saliency', 'grad_cam')),
    Run('fakes_dataset', 'BonusNet', 'bonus', analyses=('numerical', 'bonus')),
)


def main(argv: list[str] | None = None) -> None:
    """Print the chain for run_me.sh: one `dataset model optimizer epochs analyses...` line a run."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='one epoch per run (QUICK=1)')
    args = parser.parse_args(argv)
    for run in ASSIGNMENT_RUNS:
        epochs = 1 if args.quick else run.epochs
        print(run.dataset, run.model, run.optimizer, epochs, *run.analyses)


if __name__ == '__main__':
    main()
