"""Write report/report.md and report/report.pdf from what a run left in out/, checkpoints/, figures/.

The report states only what those files show (plus parameter counts computed from the model
definitions); anything missing is listed, not guessed.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages

from common import CHECKPOINT_DIR, FIGURES_DIR, OUTPUT_DIR
from utils import DATASET_NAMES, atomic_write_json, get_nof_params

# The runs of run_me.sh, in the order the assignment asks about them (question numbers).
TRAINING_RUNS = (('fakes_dataset', 'SimpleNet', 'Q8'), ('synthetic_dataset', 'SimpleNet', 'Q14'),
                 ('synthetic_dataset', 'XceptionBased', 'Q27'), ('fakes_dataset', 'BonusNet', 'bonus'))
FIGURE_CAPTIONS = {
    'losses_plot': 'Mean loss per sample on train/val/test by epoch',
    'accuracies_plot': 'Accuracy [%] on train/val/test by epoch',
    'roc_curve': 'ROC curves of the first (real) and second (fake) output on the test set',
    'det_curve': 'DET curves of both outputs on the test set (normal-deviate axes)',
    'saliency_maps_and_images_pairs': 'Test images beside their vanilla-gradient saliency maps',
    'mean_saliency_maps': 'Mean (min-max normalised) saliency map of real and of fake test images',
    'Real_Image_grad_cam': 'Grad-CAM on conv3 for a real test image',
    'Fake_Image_grad_cam': 'Grad-CAM on conv3 for a fake test image',
}


@dataclass
class Report:
    """Markdown lines, figures to show and inputs that were missing."""

    lines: list[str] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.add('| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header))
        self.add(*('| ' + ' | '.join(row) + ' |' for row in rows))
        self.add('')


def read_json(path: Path, report: Report) -> object | None:
    """Parsed JSON, or None with the file listed as missing/unreadable."""
    if not path.is_file():
        report.missing.append(f'{path} (not found)')
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        report.missing.append(f'{path} (unreadable: {error})')
        return None


def last_run(dataset: str, model: str, report: Report) -> dict | None:
    """The last record of out/<dataset>_<model>_Adam.json."""
    records = read_json(Path(OUTPUT_DIR) / f'{dataset}_{model}_Adam.json', report)
    return records[-1] if isinstance(records, list) and records else None


def fmt(value: float | None, digits: int = 2, suffix: str = '') -> str:
    return 'n/a' if value is None else f'{value:.{digits}f}{suffix}'


def data_section(runs: dict, report: Report) -> dict:
    """Where the data came from: course or demo, and the demo manifest's digest."""
    roots = sorted({run.get('data_root') for run in runs.values() if run and run.get('data_root')})
    report.add('## Data', '')
    info: dict = {'roots': roots}
    if not roots:
        report.add('No training log records its data root.', '')
        return info
    for root in roots:
        manifest_path = Path(root) / 'MANIFEST.json'
        if manifest_path.is_file():
            from demo_data.manifest import manifest_digest, read_manifest

            manifest = read_manifest(root) or {}
            digest = manifest_digest(root)
            report.add(f'- `{root}`: **demo data** (generated stand-in for the course data), '
                       f'scale `{manifest.get("scale", "?")}`, seed {manifest.get("seed", "?")}, '
                       f'manifest SHA-256 `{digest}`')
            info[root] = {'source': 'demo', 'scale': manifest.get('scale'), 'manifest_sha256': digest}
        else:
            report.add(f'- `{root}`: course data (no demo manifest)')
            info[root] = {'source': 'course'}
    report.add('')
    return info


def training_section(runs: dict, report: Report) -> list[dict]:
    """Best validation accuracy, its epoch and the test accuracy there, for each run."""
    report.add('## Training runs (questions 8, 14, 27 and the bonus)', '')
    rows, summary = [], []
    for (dataset, model, question), run in runs.items():
        if run is None:
            rows.append([question, model, dataset] + ['missing'] * 6)
            continue
        best = max(range(len(run['val_acc'])), key=lambda i: (run['val_acc'][i], -i))
        seconds = run.get('epoch_seconds') or []
        pretrained = run.get('pretrained')
        row = {'question': question, 'model': model, 'dataset': dataset,
               'epochs': len(run['val_acc']), 'best_epoch': best + 1,
               'best_val_acc': run['val_acc'][best], 'test_acc_at_best': run['test_acc'][best],
               'nof_params': run.get('nof_params'), 'pretrained': pretrained,
               'seconds_per_epoch': sum(seconds) / len(seconds) if seconds else None}
        summary.append(row)
        rows.append([question, model, dataset, str(row['epochs']), fmt(row['best_val_acc'], 2, '%'),
                     str(row['best_epoch']), fmt(row['test_acc_at_best'], 2, '%'),
                     f'{row["nof_params"]:,}' if row['nof_params'] else 'n/a',
                     fmt(row['seconds_per_epoch'], 1)])
    report.table(['question', 'model', 'dataset', 'epochs', 'best val acc', 'at epoch',
                  'test acc there', 'parameters', 's/epoch'], rows)
    xception = runs.get(('synthetic_dataset', 'XceptionBased', 'Q27'))
    if xception is not None and 'pretrained' in xception:
        report.add('XceptionBased started from ImageNet weights: '
                   f'**{"yes" if xception["pretrained"] else "NO (random initialisation)"}**.', '')
    return summary


def metrics_section(report: Report) -> list[dict]:
    """Test-set class counts (questions 9, 15) and ROC AUC / AP / EER of every analysed model."""
    metrics = []
    for path in sorted(Path(OUTPUT_DIR).glob('*_metrics.json')):
        data = read_json(path, report)
        if isinstance(data, dict) and 'second_score' in data:
            metrics.append(data)
    report.add('## Test sets (questions 9, 15)', '')
    counts = {m['dataset']: m for m in metrics}
    if counts:
        report.table(['dataset', 'real', 'fake', 'fake:real'],
                     [[name, str(m['n_real']), str(m['n_fake']), fmt(m['fake_to_real_ratio'], 3)]
                      for name, m in sorted(counts.items())])
    else:
        report.add('No metrics files (out/*_metrics.json) found.', '')
    report.add('## Detection metrics on the test sets', '')
    if metrics:
        report.table(['model', 'dataset', 'ROC AUC (fake score)', 'AP', 'EER',
                      'ROC AUC (softmax)', 'accuracy'],
                     [[m['model'], m['dataset'], fmt(m['second_score']['roc_auc'], 3),
                       fmt(m['second_score']['average_precision'], 3),
                       fmt(100 * m['second_score']['eer'], 2, '%'),
                       fmt(m['softmax_fake_probability']['roc_auc'], 3),
                       fmt(m['accuracy_at_argmax_percent'], 2, '%')] for m in metrics])
    else:
        report.add('None (run numerical_analysis.py).', '')
    return metrics


def xception_parameters_section(runs: dict, report: Report) -> dict:
    """Parameters of the Xception backbone, of the Xception-based model and their difference."""
    from models import get_xception_based_model
    from xception import build_xception_backbone

    backbone = get_nof_params(build_xception_backbone(pretrained=False))
    based = get_nof_params(get_xception_based_model(pretrained=False))
    report.add('## Xception parameters (questions 22, 24)', '')
    report.table(['network', 'parameters'],
                 [['Xception backbone (1000-class fc)', f'{backbone:,}'],
                  ['XceptionBased (MLP head)', f'{based:,}'],
                  ['difference', f'{based - backbone:,}']])
    return {'backbone': backbone, 'xception_based': based, 'difference': based - backbone}


def bonus_section(runs: dict, metrics: list[dict], report: Report) -> dict | None:
    """The bonus model's accuracy, AUC and parameters next to SimpleNet on fakes_dataset."""
    report.add('## Bonus model', '')
    result = read_json(Path(OUTPUT_DIR) / 'bonus_main.json', report)
    if not isinstance(result, dict):
        report.add('No out/bonus_main.json (run `python bonus_main.py`).', '')
        return None
    simple = next((m for m in metrics if m['model'] == 'SimpleNet'
                   and m['dataset'] == 'fakes_dataset'), None)
    rows = [['BonusNet (checkpoints/bonus_model.pt)', fmt(result.get('test_accuracy'), 2, '%'),
             fmt(result.get('roc_auc'), 3), f'{result.get("nof_parameters", 0):,}']]
    if simple:
        rows.append(['SimpleNet', fmt(simple['accuracy_at_argmax_percent'], 2, '%'),
                     fmt(simple['second_score']['roc_auc'], 3), f'{simple["n_params"]:,}'])
    report.table(['model on fakes_dataset test', 'accuracy', 'ROC AUC', 'parameters'], rows)
    return result


def timings_section(report: Report) -> list[dict]:
    """Wall time and peak RSS of each run_me.sh step."""
    path = Path(OUTPUT_DIR) / 'run_me_timings.tsv'
    if not path.is_file():
        report.missing.append(f'{path} (not found)')
        return []
    lines = [line.split('\t') for line in path.read_text().splitlines()[1:] if line.strip()]
    steps = [{'step': s, 'seconds': float(t), 'peak_rss_mib': r} for s, t, r, *_ in lines]
    report.add('## run_me.sh steps', '')
    report.table(['step', 'seconds', 'peak RSS [MiB]'],
                 [[s['step'], f'{s["seconds"]:.1f}', s['peak_rss_mib']] for s in steps]
                 + [['**total**', f'{sum(s["seconds"] for s in steps):.1f}', '']])
    return steps


def figures_section(report: Report) -> None:
    """Every PNG under figures/, captioned from its file name."""
    report.add('## Figures', '')
    pattern = re.compile(rf'^({"|".join(DATASET_NAMES)})_([A-Za-z]+)_(.+)\.png$')
    for path in sorted(Path(FIGURES_DIR).glob('*.png')):
        match = pattern.match(path.name)
        if path.name == 'datasets_samples.png':
            caption = 'A real and a fake training image from each dataset'
        elif match and match.group(3) in FIGURE_CAPTIONS:
            caption = f'{FIGURE_CAPTIONS[match.group(3)]}: {match.group(2)} on {match.group(1)}'
        else:
            caption = path.stem
        report.figures.append((path, caption))
        report.add(f'![{caption}](../{path.as_posix()})', '', f'*{caption}* (`{path}`)', '')
    if not report.figures:
        report.add('No figures found.', '')


def write_pdf(report: Report, path: Path) -> None:
    """Text pages (the markdown, monospace) followed by one captioned page per figure."""
    text = [line for line in report.lines if not line.startswith('![')]
    per_page = 70
    with PdfPages(path) as pdf:
        for start in range(0, len(text), per_page):
            page = plt.figure(figsize=(8.27, 11.69))
            page.text(0.04, 0.98, '\n'.join(text[start:start + per_page]), family='monospace',
                      fontsize=5.6, va='top')
            pdf.savefig(page)
            plt.close(page)
        for figure_path, caption in report.figures:
            page = plt.figure(figsize=(8.27, 11.69))
            axes = page.add_axes((0.05, 0.1, 0.9, 0.8))
            axes.imshow(mpimg.imread(figure_path))
            axes.axis('off')
            page.text(0.5, 0.06, f'{caption}\n{figure_path}', ha='center', fontsize=9)
            pdf.savefig(page)
            plt.close(page)


def main(argv: list[str] | None = None) -> Path:
    """Gather the run's files into report/report.md, report/report.pdf and report/summary.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out-dir', default='report', help='where to write (default: report)')
    args = parser.parse_args(argv)
    report = Report()
    report.add('# Facial manipulation detection: run report', '',
               f'Generated {time.strftime("%Y-%m-%d %H:%M")} from `{OUTPUT_DIR}/`, '
               f'`{CHECKPOINT_DIR}/` and `{FIGURES_DIR}/`.', '')
    runs = {key: last_run(key[0], key[1], report) for key in TRAINING_RUNS}
    summary = {'data': data_section(runs, report), 'training': training_section(runs, report)}
    summary['metrics'] = metrics_section(report)
    summary['xception_parameters'] = xception_parameters_section(runs, report)
    summary['bonus'] = bonus_section(runs, summary['metrics'], report)
    summary['timings'] = timings_section(report)
    if not Path(CHECKPOINT_DIR, 'bonus_model.pt').is_file():
        report.missing.append(f'{CHECKPOINT_DIR}/bonus_model.pt (not found)')
    figures_section(report)
    report.add('## Missing inputs', '')
    report.add(*(f'- {item}' for item in report.missing) if report.missing else ('None.',))
    summary['missing'] = report.missing

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'report.md').write_text('\n'.join(report.lines) + '\n')
    write_pdf(report, out_dir / 'report.pdf')
    atomic_write_json(summary, out_dir / 'summary.json')
    print(f'Wrote {out_dir / "report.md"}, {out_dir / "report.pdf"} and {out_dir / "summary.json"}'
          f' ({len(report.figures)} figures, {len(report.missing)} missing inputs)')
    return out_dir / 'report.md'


if __name__ == '__main__':
    main()
