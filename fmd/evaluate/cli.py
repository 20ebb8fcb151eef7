"""Cross-dataset evaluation: score every checkpoint on every dataset split ("train on X, test on Y").

`python -m fmd.evaluate --checkpoint checkpoints/fakes_dataset_SimpleNet_Adam.pt other.pt
                    --data ROOT/fakes_dataset ROOT/ciplab:val`

Each --data is ROOT/NAME[:SPLIT] in the course layout (split `test` by default) or a folder holding
real/ and fake/. Per pair one row: ROC AUC of P(fake) with a stratified bootstrap 95% interval, AP,
EER and its threshold, accuracy and balanced accuracy at P(fake) >= 0.5, both again at the
checkpoint's own validation EER threshold, and the video-level AUC when the dataset has a
MANIFEST.csv. Where a dataset's fake file names give the replaced parts (ciplab: easy_101_0010.png)
and its landmarks.npz holds their landmarks, the row also has part localization: per part, how well
the mask head's map (when the checkpoint has one) and Grad-CAM of class fake single out the replaced
parts (fmd/evaluate/localization.py; --no-localization skips it). Writes evaluation.json and
evaluation.md (also printed) into --out DIR (default out/) and the heat map to
figures/cross_dataset_auc.png.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from common import OUTPUT_DIR
from fmd.core.atomic_io import CorruptLogError, atomic_write, atomic_write_json, check_json_list
from fmd.core.cli import (
    MAX_BOOTSTRAP,
    add_batch_size_arg,
    add_compile_arg,
    add_out_dir_arg,
    add_progress_arg,
    add_seed_arg,
    add_workers_arg,
    bootstrap_int,
    check_out_dir,
    resolve_workers,
    run_cli,
    use_agg_backend,
)
from fmd.core.devices import pick_device, seed_everything
from fmd.core.metrics import (
    CI_LEVEL,
    DEFAULT_BOOTSTRAP,
    accuracy_percent,
    balanced_accuracy_percent,
    detection_summary,
    eer_threshold,
    group_auc,
    require_both_classes,
)
from fmd.core.runs import CROSS_DATASET_FIGURE, EVALUATION_JSON, training_set_name
from fmd.data.data_root import resolve_data_root
from fmd.evaluate.tables import evaluation_markdown, inverted_interval, inverted_lines, plot_auc_heatmap

if TYPE_CHECKING:  # torch and the modules importing it load on first use: --help stays quick
    import torch
    from torch import nn

    from faces_dataset import FacesDataset
    from fmd.evaluate.localization import CodedFakes
    from fmd.evaluate.specs import DataSpec

Scores = tuple[np.ndarray, np.ndarray]  # labels, P(fake)


EVALUATION_NAMES = (EVALUATION_JSON.name, EVALUATION_JSON.with_suffix('.md').name)  # inside --out DIR


def build_parser() -> argparse.ArgumentParser:
    """--checkpoint and --data (one or more each), outputs, bootstrap and loader settings (light
    modules only: --help answers at once)."""
    parser = argparse.ArgumentParser(prog='faces-evaluate', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', nargs='+', required=True, metavar='CK',
                        help='checkpoints written by train_main.py (each builds its own model_name)')
    parser.add_argument('--data', nargs='+', required=True, metavar='ROOT/NAME[:SPLIT]',
                        help='dataset folders in the course layout (split test by default), or folders '
                             'holding real/ and fake/')
    add_out_dir_arg(parser, str(EVALUATION_JSON.parent),
                    f'{EVALUATION_NAMES[0]} (the rows) and {EVALUATION_NAMES[1]} (the table)')
    parser.add_argument('--figure', default=str(CROSS_DATASET_FIGURE),
                        help='AUC heat map (default: %(default)s)')
    parser.add_argument('--bootstrap', type=bootstrap_int, default=DEFAULT_BOOTSTRAP,
                        help=f'bootstrap resamples for the AUC intervals, 1..{MAX_BOOTSTRAP} '
                             '(default: %(default)s)')
    add_seed_arg(parser, 'bootstrap seed')
    add_workers_arg(parser)
    add_batch_size_arg(parser, help='images per model batch')
    add_progress_arg(parser)
    add_compile_arg(parser)
    parser.add_argument('--no-localization', action='store_true',
                        help='skip the part localization of datasets whose fakes name their replaced '
                             'parts (it runs Grad-CAM on every such fake)')
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; --out must name a folder (exit 2 otherwise), --workers auto its number."""
    args = build_parser().parse_args(argv)
    check_out_dir(args.out, ' and '.join(EVALUATION_NAMES))
    args.workers = resolve_workers(args.workers)
    return args


def score_dataset(model: nn.Module, dataset: FacesDataset, device: torch.device,
                  args: argparse.Namespace) -> Scores:
    """Labels and P(fake) of every image, through inference.predict."""
    from fmd.core.inference import fake_probability, predict

    logits, labels = predict(model, dataset, device=device, batch_size=args.batch_size,
                             workers=args.workers, show_progress=not getattr(args, 'no_progress', False))
    return labels.numpy(), fake_probability(logits).numpy()


def training_roots(checkpoint_path: Path, checkpoint: dict, specs: Sequence[DataSpec]) -> list[Path]:
    """Where the checkpoint's training data may live, most trusted first: its own `data_root`, the
    data_root its training log (out/<run>.json beside checkpoints/) records, the roots of the --data
    arguments, the default data root."""
    roots = [Path(checkpoint['data_root'])] if checkpoint.get('data_root') else []
    project = checkpoint_path.parent.parent
    try:
        records = check_json_list(project / OUTPUT_DIR / f'{checkpoint_path.stem}.json')
    except (CorruptLogError, OSError):
        records = []
    logged = [r['data_root'] for r in records
              if isinstance(r, dict) and r.get('data_root') and r.get('dataset') == checkpoint.get('dataset')]
    if logged:
        roots.append(Path(logged[-1]) if Path(logged[-1]).is_absolute() else project / logged[-1])
    roots += [spec.folder.parent.parent for spec in specs if spec.split]
    with contextlib.suppress(FileNotFoundError):
        roots.append(resolve_data_root(None, announce=False))
    return roots


def validation_threshold(checkpoint_path: Path, checkpoint: dict, specs: Sequence[DataSpec],
                         score: Callable[[DataSpec], Scores]) -> tuple[float, str] | None:
    """(EER threshold on the checkpoint's own val split, where it came from): stored in the checkpoint,
    else computed from `<root>/<its dataset>/val` when one is found; None (with a note) otherwise."""
    from fmd.core.checkpoint_files import stored_val_threshold
    from fmd.evaluate.specs import DataSpec, has_classes

    stored = stored_val_threshold(checkpoint)
    if stored is not None:
        return stored, 'checkpoint'
    dataset = checkpoint.get('dataset')
    folders = [root / dataset / 'val' for root in training_roots(checkpoint_path, checkpoint, specs)
               if dataset and has_classes(root / dataset / 'val')]
    if not folders:
        print(f'note: no val split of {dataset or "its training dataset"} found for {checkpoint_path}; '
              'its rows have no accuracy at the validation threshold.', file=sys.stderr)
        return None
    try:
        labels, scores = score(DataSpec(str(folders[0]), folders[0], 'val'))
        return eer_threshold(require_both_classes(labels, str(folders[0])), scores), str(folders[0])
    except (OSError, ValueError) as error:
        print(f'WARNING: validation threshold of {checkpoint_path} left out: {error}', file=sys.stderr)
        return None


def trained_on(checkpoint: dict) -> str | None:
    """What the checkpoint was trained on: its dataset, `+self-blend` when its fakes were self-blends."""
    dataset = checkpoint.get('dataset')
    masks = 'mask_head' in checkpoint  # fmd.models.mask_head.MASK_HEAD_KEY
    return training_set_name(dataset, checkpoint.get('fakes') or 'dataset', masks) if dataset else None


def evaluation_row(checkpoint_path: Path, checkpoint: dict, spec: DataSpec, scores: Scores,
                   groups: list[str] | None, threshold: tuple[float, str] | None,
                   args: argparse.Namespace) -> dict:
    """One (checkpoint, data) row: identity, image-level metrics, video-level and val-threshold ones."""
    labels, p_fake = scores
    row = {'checkpoint': str(checkpoint_path), 'model': checkpoint.get('model_name'),
           'trained_on': trained_on(checkpoint), 'checkpoint_val_auc': checkpoint.get('val_auc'),
           'collapsed': checkpoint.get('collapsed'),
           'data': spec.given, 'data_name': spec.name, 'split': spec.split, 'folder': str(spec.folder),
           **detection_summary(labels, p_fake, n_resamples=args.bootstrap, seed=args.seed,
                               what=str(spec.folder)),
           'bootstrap': {'n_resamples': args.bootstrap, 'seed': args.seed, 'level': CI_LEVEL}}
    row['inverted'] = inverted_interval(row['auc_ci'])
    if groups is not None:
        row['group_auc'], row['n_groups'] = group_auc(labels, p_fake, groups, f'the groups of {spec.folder}')
    if threshold is not None:
        value, source = threshold
        row.update(val_eer_threshold=value, val_threshold_from=source,
                   accuracy_at_val_threshold=accuracy_percent(labels, p_fake, value),
                   balanced_accuracy_at_val_threshold=balanced_accuracy_percent(labels, p_fake, value))
    return row


def localization_inputs(specs: Sequence[DataSpec],
                        datasets: dict[Path, FacesDataset]) -> dict[Path, CodedFakes]:
    """The coded fakes with landmarks of each spec that has them; one note line for each that has none."""
    from fmd.evaluate.localization import coded_fakes

    found = {}
    for spec in specs:
        fakes = coded_fakes(datasets[spec.folder], spec.folder)
        if isinstance(fakes, str):
            print(f'note: no part localization on {spec.label}: {fakes}', file=sys.stderr)
            continue
        if fakes.without_landmarks:
            print(f'note: part localization on {spec.label} leaves out {fakes.without_landmarks} coded '
                  'fakes without landmarks', file=sys.stderr)
        found[spec.folder] = fakes
    return found


def evaluate(args: argparse.Namespace) -> list[dict]:
    """Every checkpoint on every --data split; inputs are all checked before any model runs."""
    from fmd.evaluate.localization import localize
    from fmd.evaluate.specs import load_spec_dataset, manifest_groups, parse_data_spec
    from fmd.training.checkpoints import load_trained_model, read_checkpoint

    specs = [parse_data_spec(text) for text in args.data]
    datasets = {spec.folder: load_spec_dataset(spec) for spec in specs}
    groups = {spec.folder: manifest_groups(spec, datasets[spec.folder]) for spec in specs}
    coded = {} if getattr(args, 'no_localization', False) else localization_inputs(specs, datasets)
    checkpoints = [(Path(path), read_checkpoint(path)) for path in args.checkpoint]
    device = pick_device()
    rows = []
    with tqdm(total=len(checkpoints) * len(specs), desc='evaluating',
              disable=True if getattr(args, 'no_progress', False) else None) as progress:
        for path, checkpoint in checkpoints:
            model = load_trained_model(path, device, compile=args.compile)
            cache: dict[Path, Scores] = {}

            def score(spec: DataSpec, model: nn.Module = model, cache: dict = cache) -> Scores:
                if spec.folder not in cache:
                    dataset = datasets[spec.folder] if spec.folder in datasets else load_spec_dataset(spec)
                    cache[spec.folder] = score_dataset(model, dataset, device, args)
                return cache[spec.folder]

            threshold = validation_threshold(path, checkpoint, specs, score)
            for spec in specs:
                row = evaluation_row(path, checkpoint, spec, score(spec), groups[spec.folder], threshold,
                                     args)
                if spec.folder in coded:  # the maps of this checkpoint on the coded fakes
                    row['localization'] = localize(path, checkpoint, datasets[spec.folder],
                                                   coded[spec.folder], device, args.batch_size, args.workers,
                                                   not getattr(args, 'no_progress', False))
                rows.append(row)
                progress.update()
            del model, cache
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    """Evaluate, then write the JSON rows, the markdown table and the heat map; returns the rows."""
    args = parse_args(argv)
    use_agg_backend()  # after parsing: --help never waits for matplotlib
    seed_everything(args.seed)
    rows = evaluate(args)
    out = Path(args.out)
    markdown = evaluation_markdown(rows)
    print(markdown)
    for line in inverted_lines(rows):
        print(f'WARNING: {line}', file=sys.stderr)
    for path in (atomic_write_json(rows, out / EVALUATION_NAMES[0]),
                 atomic_write(out / EVALUATION_NAMES[1], lambda handle: handle.write(markdown), 'w')):
        print(f'wrote {path}')
    from fmd.core.analysis_cli import save_figure

    save_figure(plot_auc_heatmap(rows), args.figure)
    return rows


def entry() -> None:
    """The console script and `python -m fmd.evaluate`."""
    run_cli(main)


if __name__ == '__main__':
    entry()
