"""How fmd.evaluate's rows read: a markdown table (stdout, out/evaluation.md, the report), the part
localization table of rows that have one, and an AUC heat map.

The report calls `evaluation_markdown(read_evaluation())` when out/evaluation.json exists.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from fmd.core.atomic_io import check_json_list
from fmd.core.runs import EVALUATION_JSON
from fmd.evaluate.localization import PART_MARGIN, PARTS

MISSING = '–'
INVERTED = 'INVERTED'
INVERTED_WARNING = ('the detector ranks these fakes as more real than the reals: do not use it on this '
                    'kind of manipulation')
LEGEND = (
    'AUC: ROC AUC of P(fake) (positive = fake) with its stratified bootstrap 95% interval; AP: average '
    'precision; EER: equal error rate; acc. and bal. acc. (mean of the real and fake recalls) at '
    'P(fake) >= 0.5; "at val EER thr.": acc. / bal. acc. at the threshold where the checkpoint\'s own '
    'validation split has equal error rates; video AUC: AUC over the MANIFEST.csv groups (videos or '
    'source files), each scored by the mean P(fake) of its images, with the number of groups; '
    'COLLAPSED: the collapse guard flagged the checkpoint\'s training run (docs/training_guards.md); '
    f'{INVERTED}: the whole AUC interval lies below 0.5: {INVERTED_WARNING} (a warning only: the '
    'scores are never flipped).')


def inverted_interval(auc_ci: Sequence[float]) -> bool:
    """True when an AUC's whole confidence interval lies below chance (0.5)."""
    return auc_ci[1] < 0.5


def inverted_lines(rows: Sequence[dict]) -> list[str]:
    """One warning line per INVERTED row: checkpoint, data, AUC and interval, and what it means."""
    data = data_labels(rows)
    files = checkpoint_file_labels([row['checkpoint'] for row in rows])
    return [f'{INVERTED}: {files[row["checkpoint"]]} on {data[row["data"]]}: AUC {row["auc"]:.3f} '
            f'[{row["auc_ci"][0]:.3f}, {row["auc_ci"][1]:.3f}]: {INVERTED_WARNING}.'
            for row in rows if row.get('inverted')]
METHOD_LABELS = {'mask': 'mask head', 'grad_cam': 'Grad-CAM (fake)'}
LOCALIZATION_LEGEND = (
    'Part localization on the fakes whose file names give the replaced parts (ciplab: left eye, right '
    'eye, nose, mouth; left = the image\'s left) and whose landmarks are known. A part\'s score is the '
    f'mean of the map inside its landmarks\' convex hull grown by {PART_MARGIN} px; its AUC: how well that '
    'score tells fakes where the part was replaced from those where it was not (0.5: chance). Top-part '
    'hit: share of fakes whose highest-scoring part was replaced, against a random part\'s rate. Maps: '
    'mask head = the checkpoint\'s 64x64 manipulation map; Grad-CAM (fake) = Grad-CAM of class fake on '
    'the model\'s Grad-CAM layer (fmd/evaluate/localization.py).')


def read_evaluation(path: str | os.PathLike = EVALUATION_JSON) -> list[dict]:
    """The rows fmd.evaluate wrote ([] when the file is absent; a non-list file is a ValueError)."""
    return check_json_list(Path(path))


def distinct_labels(keys: Sequence[str], levels: Sequence[Callable[[str], str]]) -> dict[str, str]:
    """Each key's label at the first level where no two keys share one; the key itself otherwise."""
    unique = list(dict.fromkeys(keys))
    for level in levels:
        labels = {key: level(key) for key in unique}
        if len(set(labels.values())) == len(unique):
            return labels
    return {key: key for key in unique}


def checkpoint_labels(rows: Sequence[dict]) -> dict[str, str]:
    """Checkpoint path -> `model / training dataset`, else its file name, else the path."""
    first = {row['checkpoint']: row for row in reversed(rows)}
    return distinct_labels([row['checkpoint'] for row in rows], [
        lambda key: f'{first[key].get("model")} / {first[key].get("trained_on")}',
        lambda key: Path(key).name])


def path_tail(path: str, parts: int) -> str:
    """The last `parts` components of a path ('s0/checkpoints/a.pt' for parts=3)."""
    return Path(*Path(path).parts[-parts:]).as_posix()


def checkpoint_file_labels(checkpoints: Sequence[str]) -> dict[str, str]:
    """Checkpoint path -> its file name, or as many trailing folders as tell it from the others
    (three seeds' runs/s0/checkpoints/a.pt and runs/s1/checkpoints/a.pt: s0/checkpoints/a.pt)."""
    depth = max((len(Path(key).parts) for key in checkpoints), default=1)
    return distinct_labels(checkpoints, [lambda key, n=n: path_tail(key, n) for n in range(1, depth + 1)])


def data_labels(rows: Sequence[dict]) -> dict[str, str]:
    """--data argument -> `NAME:SPLIT`, else the argument as given."""
    first = {row['data']: row for row in reversed(rows)}
    return distinct_labels([row['data'] for row in rows], [
        lambda key: ':'.join(filter(None, (first[key].get('data_name'), first[key].get('split'))))])


def _number(value: float | None, spec: str = '.3f') -> str:
    return MISSING if value is None else format(value, spec)


def _percent(value: float | None) -> str:
    return MISSING if value is None else f'{value:.1f}%'


def evaluation_markdown(rows: Sequence[dict]) -> str:
    """A markdown table of fmd.evaluate's rows (one line each) followed by a one-paragraph legend."""
    data = data_labels(rows)
    files = checkpoint_file_labels([row['checkpoint'] for row in rows])
    lines = ['| checkpoint | model / trained on | evaluated on | real / fake | AUC [95% CI] | AP | EER '
             '| acc. | bal. acc. | acc. / bal. acc. at val EER thr. | video AUC (groups) |',
             '|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|']
    for row in rows:
        low, high = row['auc_ci']
        at_val = MISSING
        if row.get('accuracy_at_val_threshold') is not None:
            at_val = (f'{_percent(row["accuracy_at_val_threshold"])} / '
                      f'{_percent(row["balanced_accuracy_at_val_threshold"])}')
        video = MISSING if row.get('group_auc') is None else f'{row["group_auc"]:.3f} ({row["n_groups"]})'
        trained = f'{row.get("model")} / {row.get("trained_on") or MISSING}'
        trained += ' (COLLAPSED)' if row.get('collapsed') else ''
        verdict = f' **{INVERTED}**' if row.get('inverted') else ''
        lines.append(
            f'| {files[row["checkpoint"]]} | {trained} '
            f'| {data[row["data"]]} | {row["n_real"]} / {row["n_fake"]} '
            f'| {row["auc"]:.3f} [{low:.3f}, {high:.3f}]{verdict} | {_number(row["ap"])} '
            f'| {_percent(100 * row["eer"])} | {_percent(row["accuracy"])} '
            f'| {_percent(row["balanced_accuracy"])} | {at_val} | {video} |')
    localization = localization_markdown(rows)
    warnings = ''.join(f'\n- {line}' for line in inverted_lines(rows))
    return ('\n'.join(lines) + '\n\n' + LEGEND + '\n' + (f'{warnings}\n' if warnings else '')
            + (f'\n{localization}' if localization else ''))


def localization_markdown(rows: Sequence[dict]) -> str:
    """A table of the rows' part localization (one line per checkpoint, dataset and map) and its
    legend; '' when no row has one."""
    data = data_labels(rows)
    files = checkpoint_file_labels([row['checkpoint'] for row in rows])
    names = ' | '.join(f'{part.replace("_", " ")} AUC' for part in PARTS)
    lines = [f'| checkpoint | evaluated on | map | {names} | mean part AUC | top-part hit (chance) | fakes |',
             '|---|---|---|' + '---:|' * (len(PARTS) + 3)]
    for row in rows:
        for method, summary in (row.get('localization') or {}).items():
            aucs = ' | '.join(_number(summary['parts'][part]['auc']) for part in PARTS)
            hit, chance = summary['top_part_hit'], summary['top_part_chance']
            hit_text = MISSING if hit is None else f'{_percent(100 * hit)} ({_percent(100 * chance)})'
            lines.append(f'| {files[row["checkpoint"]]} | {data[row["data"]]} '
                         f'| {METHOD_LABELS.get(method, method)} | {aucs} '
                         f'| {_number(summary["mean_part_auc"])} | {hit_text} | {summary["n_fakes"]} |')
    return '' if len(lines) == 2 else '\n'.join(lines) + '\n\n' + LOCALIZATION_LEGEND + '\n'


def plot_auc_heatmap(rows: Sequence[dict]) -> object:
    """Heat map of AUC, rows checkpoints and columns datasets, each cell holding AUC and its interval;
    cells where a checkpoint meets a dataset of its training dataset's name are outlined."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    checkpoints, data = checkpoint_labels(rows), data_labels(rows)
    row_keys, column_keys = list(checkpoints), list(data)
    grid = np.full((len(row_keys), len(column_keys)), np.nan)
    figure, ax = plt.subplots(figsize=(2.5 + 2.1 * len(column_keys), 1.6 + 0.75 * len(row_keys)))
    for row in rows:
        i, j = row_keys.index(row['checkpoint']), column_keys.index(row['data'])
        grid[i, j] = row['auc']
        low, high = row['auc_ci']
        verdict = f'\n{INVERTED}' if row.get('inverted') else ''
        ax.text(j, i, f'{row["auc"]:.3f}\n[{low:.3f}, {high:.3f}]{verdict}', ha='center', va='center',
                fontsize=9, color='white' if abs(row['auc'] - 0.5) > 0.35 else 'black')
        if row.get('trained_on') and row.get('trained_on') == row.get('data_name'):
            ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor='black',
                                   linewidth=2.5))
    # Diverging about chance (0.5), red below and blue above: ColorBrewer's RdBu is colour-blind safe.
    image = ax.imshow(grid, cmap='RdBu', vmin=0.0, vmax=1.0, aspect='auto')
    ax.set_xticks(range(len(column_keys)), [data[key] for key in column_keys], rotation=15, ha='right')
    ax.set_yticks(range(len(row_keys)), [checkpoints[key] for key in row_keys])
    ax.set_xlabel('evaluated on')
    ax.set_ylabel('checkpoint (model / trained on)')
    ax.set_title('ROC AUC of P(fake) [bootstrap 95% CI]; outlined: the training dataset', fontsize=10)
    figure.colorbar(image, ax=ax, label='ROC AUC')
    return figure
