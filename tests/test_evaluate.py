"""fmd.evaluate and metrics.py: cross-dataset rows, bootstrap intervals, video-level AUC, one-line errors."""
from __future__ import annotations

import csv
import functools
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from faces_dataset import FacesDataset
from fmd.core import metrics
from fmd.core.inference import fake_probability, predict
from fmd.core.registry import build_model
from fmd.data.presets import TRANSFORM_TEST
from fmd.evaluate.specs import parse_data_spec
from fmd.evaluate.tables import (
    INVERTED_WARNING,
    checkpoint_file_labels,
    distinct_labels,
    evaluation_markdown,
    inverted_interval,
    inverted_lines,
)
from helpers import PROJECT_ROOT, make_split, run_script, script_command
from utils import load_trained_model

# tiny datasets: NAME -> (real, fake) per split
COUNTS = {'alpha': {'train': (2, 2), 'val': (4, 4), 'test': (6, 5)}, 'beta': {'test': (6, 5)}}
# beta's MANIFEST.csv groups: real images 0-2 -> r0, 3-5 -> r1; fake 0-1 -> f0, 2-3 -> f1, 4 -> f2
BETA_GROUPS = {'real': ['r0'] * 3 + ['r1'] * 3, 'fake': ['f0', 'f0', 'f1', 'f1', 'f2']}
ROW_KEYS = {'checkpoint', 'data', 'split', 'n_real', 'n_fake', 'auc', 'auc_ci', 'ap', 'eer',
            'eer_threshold', 'accuracy', 'balanced_accuracy', 'model', 'trained_on'}


@pytest.fixture(scope='module')
def eval_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alpha/{train,val,test}, beta/test with a MANIFEST.csv, one_class/test with no fake image."""
    root = tmp_path_factory.mktemp('eval_data')
    for seed, (name, splits) in enumerate(COUNTS.items()):
        for index, (split, (n_real, n_fake)) in enumerate(splits.items()):
            make_split(root / name / split, n_real, n_fake, seed=100 + 10 * seed + index)
    with open(root / 'beta' / 'MANIFEST.csv', 'w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(['path', 'label', 'split', 'group', 'source', 'frame', 'x', 'y', 'w', 'h',
                         'detector'])
        for label, class_name in enumerate(('real', 'fake')):
            for index, group in enumerate(BETA_GROUPS[class_name]):
                writer.writerow([f'test/{class_name}/{class_name}_{index:03d}.png', label, 'test', group,
                                 f'{group}.mp4', index, 0, 0, 256, 256, 'hog'])
    make_split(root / 'one_class' / 'test', 3, 0, seed=7)
    return root


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An untrained SimpleNet 'trained on alpha' (no stored threshold) and a BonusNet 'trained on
    beta' that stores its validation EER threshold."""
    folder = tmp_path_factory.mktemp('checkpoints')
    torch.manual_seed(0)
    simple, bonus = folder / 'alpha_SimpleNet_Adam.pt', folder / 'beta_BonusNet_Adam.pt'
    torch.save({'model': build_model('SimpleNet').state_dict(), 'model_name': 'SimpleNet',
                'dataset': 'alpha', 'val_auc': 0.5}, simple)
    torch.save({'model': build_model('BonusNet').state_dict(), 'model_name': 'BonusNet',
                'dataset': 'beta', 'val_eer_threshold': 0.5}, bonus)
    return {'SimpleNet': simple, 'BonusNet': bonus}


@pytest.fixture(scope='module')
def evaluation(eval_root: Path, checkpoints: dict[str, Path],
               tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """fmd.evaluate run once as a script: both checkpoints on alpha (default test split) and beta:test."""
    workdir = tmp_path_factory.mktemp('evaluate_run')
    result = run_script('fmd.evaluate', '--checkpoint', str(checkpoints['SimpleNet']),
                        str(checkpoints['BonusNet']), '--data', str(eval_root / 'alpha'),
                        f'{eval_root / "beta"}:test', '--workers', '0', '--bootstrap', '200',
                        '--out', 'results', '--no-progress', cwd=workdir)
    return workdir, result


@functools.cache
def scores_of(checkpoint: Path, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Labels and P(fake) of a folder, scored with inference.predict outside fmd.evaluate."""
    model = load_trained_model(checkpoint, torch.device('cpu'))
    logits, labels = predict(model, FacesDataset(str(folder), TRANSFORM_TEST), device=torch.device('cpu'))
    return labels.numpy(), fake_probability(logits).numpy()


def eer_by_sampling(labels: np.ndarray, scores: np.ndarray) -> float:
    """EER by walking the piecewise-linear ROC in small steps to where FPR = 1 - TPR."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    t = np.linspace(0, 1, 10_001)[:, None]
    x = (fpr[:-1] + t * np.diff(fpr)).ravel()
    y = (tpr[:-1] + t * np.diff(tpr)).ravel()
    return float(x[np.argmin(np.abs(x - (1 - y)))])


def rows_by_pair(workdir: Path) -> dict[tuple[str, str], dict]:
    rows = json.loads((workdir / 'results' / 'evaluation.json').read_text())
    return {(row['model'], Path(row['folder']).parent.name): row for row in rows}


def test_cli_writes_json_markdown_and_heat_map(evaluation: tuple[Path, subprocess.CompletedProcess]) -> None:
    workdir, result = evaluation
    rows = json.loads((workdir / 'results' / 'evaluation.json').read_text())
    assert len(rows) == 4 and all(set(row) >= ROW_KEYS for row in rows)
    assert [(row['model'], row['split']) for row in rows] == [
        ('SimpleNet', 'test'), ('SimpleNet', 'test'), ('BonusNet', 'test'), ('BonusNet', 'test')]
    markdown = (workdir / 'results' / 'evaluation.md').read_text()
    assert markdown == evaluation_markdown(rows)
    assert markdown in result.stdout
    assert sum(line.startswith('| ') for line in markdown.splitlines()) == 5  # header + 4 rows
    figure = workdir / 'figures' / 'cross_dataset_auc.png'
    assert figure.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and figure.stat().st_size > 10_000


def test_row_metrics_equal_independent_computations(evaluation: tuple, eval_root: Path,
                                                    checkpoints: dict[str, Path]) -> None:
    rows = rows_by_pair(evaluation[0])
    for model, checkpoint in checkpoints.items():
        for name in ('alpha', 'beta'):
            row = rows[(model, name)]
            labels, scores = scores_of(checkpoint, eval_root / name / 'test')
            assert (row['n_real'], row['n_fake']) == COUNTS[name]['test']
            assert row['auc'] == pytest.approx(roc_auc_score(labels, scores))
            assert row['ap'] == pytest.approx(average_precision_score(labels, scores))
            assert row['eer'] == pytest.approx(eer_by_sampling(labels, scores), abs=2e-4)
            predicted = scores >= 0.5
            recalls = [np.mean(predicted[labels == 1]), np.mean(~predicted[labels == 0])]
            assert row['balanced_accuracy'] == pytest.approx(100 * np.mean(recalls))
            assert row['accuracy'] == pytest.approx(100 * np.mean(predicted == labels))
            assert row['auc_ci'][0] <= row['auc'] <= row['auc_ci'][1]
            assert row['inverted'] is (row['auc_ci'][1] < 0.5)


def test_validation_threshold_from_the_checkpoint_or_its_own_val_split(evaluation: tuple, eval_root: Path,
                                                                       checkpoints: dict[str, Path]) -> None:
    rows = rows_by_pair(evaluation[0])
    stored = rows[('BonusNet', 'alpha')]
    assert stored['val_threshold_from'] == 'checkpoint' and stored['val_eer_threshold'] == 0.5
    assert stored['accuracy_at_val_threshold'] == pytest.approx(stored['accuracy'])

    computed = rows[('SimpleNet', 'beta')]  # threshold from alpha/val, found under the --data root
    assert computed['val_threshold_from'] == str(eval_root / 'alpha' / 'val')
    val_labels, val_scores = scores_of(checkpoints['SimpleNet'], eval_root / 'alpha' / 'val')
    threshold = metrics.eer_threshold(val_labels, val_scores)
    assert computed['val_eer_threshold'] == pytest.approx(threshold)
    labels, scores = scores_of(checkpoints['SimpleNet'], eval_root / 'beta' / 'test')
    expected = 100 * np.mean((scores >= threshold) == labels)
    assert computed['accuracy_at_val_threshold'] == pytest.approx(expected)


def test_video_level_auc_is_the_auc_of_hand_computed_group_means(evaluation: tuple, eval_root: Path,
                                                                 checkpoints: dict[str, Path]) -> None:
    rows = rows_by_pair(evaluation[0])
    assert 'group_auc' not in rows[('SimpleNet', 'alpha')]  # no manifest, no video-level AUC
    labels, scores = scores_of(checkpoints['SimpleNet'], eval_root / 'beta' / 'test')
    groups = BETA_GROUPS['real'] + BETA_GROUPS['fake']  # dataset order: reals, then fakes
    means = {g: np.mean([s for s, h in zip(scores, groups, strict=True) if h == g]) for g in set(groups)}
    names = sorted(means)
    expected = roc_auc_score([name.startswith('f') for name in names], [means[n] for n in names])
    row = rows[('SimpleNet', 'beta')]
    assert row['n_groups'] == 5 and row['group_auc'] == pytest.approx(expected)
    assert row['auc'] == pytest.approx(roc_auc_score(labels, scores))


def test_one_class_split_is_a_one_line_error(eval_root: Path, checkpoints: dict[str, Path],
                                             tmp_path: Path) -> None:
    result = subprocess.run([*script_command('fmd.evaluate'), '--checkpoint',
                             str(checkpoints['BonusNet']), '--data', str(eval_root / 'one_class'),
                             '--workers', '0'], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, 'PYTHONPATH': str(PROJECT_ROOT)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'one_class' in lines[0]
    assert 'fake' in lines[0] and not (tmp_path / 'out').exists()
    with pytest.raises(metrics.OneClassError, match='3 real and 0 fake'):
        metrics.detection_summary([0, 0, 0], [0.1, 0.2, 0.3])


# metrics.py on hand-made scores

LABELS = np.array([0, 0, 0, 1, 1])
SCORES = np.array([0.1, 0.6, 0.2, 0.5, 0.9])


def test_eer_threshold_and_balanced_accuracy_by_hand() -> None:
    # thresholds 0.9, 0.6, 0.5, 0.2, 0.1 give (FPR, FNR) = (0, 1/2), (1/3, 1/2), (1/3, 0), (2/3, 0), (1, 0)
    assert metrics.eer_threshold(LABELS, SCORES) == 0.6
    assert metrics.equal_error_rate(LABELS, SCORES) == pytest.approx(1 / 3)
    # at 0.5: reals 0.1, 0.6, 0.2 -> 2 of 3 right; fakes 0.5, 0.9 -> both right
    assert metrics.balanced_accuracy_percent(LABELS, SCORES) == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert metrics.accuracy_percent(LABELS, SCORES) == pytest.approx(80.0)


def test_bootstrap_interval_matches_a_plain_resampling_loop_and_is_seeded() -> None:
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], [40, 25])
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: ties between classes occur
    low, high = metrics.bootstrap_auc_ci(labels, scores, n_resamples=300, seed=5)
    assert low <= roc_auc_score(labels, scores) <= high and high - low > 0.05
    assert metrics.bootstrap_auc_ci(labels, scores, n_resamples=300, seed=5) == [low, high]
    assert metrics.bootstrap_auc_ci(labels, scores, n_resamples=300, seed=6) != [low, high]
    # the same draws, resampled and scored one by one with scikit-learn
    draws = np.random.default_rng(5)
    negatives, positives = np.sort(scores[labels == 0]), scores[labels == 1]
    neg = negatives[draws.integers(0, 40, (300, 40))]
    pos = positives[draws.integers(0, 25, (300, 25))]
    aucs = [roc_auc_score(labels, np.concatenate([n, p])) for n, p in zip(neg, pos, strict=True)]
    assert [low, high] == pytest.approx(list(np.percentile(aucs, [2.5, 97.5])), abs=1e-12)


def test_group_auc_by_hand_and_a_group_of_both_classes() -> None:
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.2, 0.4, 0.5, 0.9, 0.1, 0.4]
    # a: real, mean 0.3; b holds both classes: real 0.5 and fake 0.4 count apart; c: fake, (0.9 + 0.1) / 2
    auc, n_groups = metrics.group_auc(labels, scores, ['a', 'a', 'b', 'c', 'c', 'b'])
    assert n_groups == 4  # a, b-real, b-fake, c
    # reals 0.3, 0.5; fakes 0.4 (b), 0.5 (c): pairs (0.4>0.3) 1, (0.4<0.5) 0, (0.5>0.3) 1, tie 0.5
    assert auc == pytest.approx(2.5 / 4)


def test_data_spec_and_labels(eval_root: Path) -> None:
    spec = parse_data_spec(f'{eval_root / "alpha"}:val')
    assert (spec.folder, spec.split, spec.label) == (eval_root / 'alpha' / 'val', 'val', 'alpha:val')
    direct = parse_data_spec(str(eval_root / 'alpha' / 'test'))
    assert (direct.folder, direct.split, direct.name) == (eval_root / 'alpha' / 'test', 'test', 'alpha')
    with pytest.raises(FileNotFoundError, match='Split folder'):
        parse_data_spec(f'{eval_root / "beta"}:val')
    with pytest.raises(ValueError, match='without :val'):
        parse_data_spec(f'{eval_root / "alpha" / "test"}:val')
    assert distinct_labels(['x/a.pt', 'y/a.pt'], [lambda k: Path(k).name]) == {'x/a.pt': 'x/a.pt',
                                                                               'y/a.pt': 'y/a.pt'}


def test_numerical_analysis_metrics_gain_the_interval_and_balanced_accuracy() -> None:
    import numerical_analysis

    second = [0.1, 0.9, 0.2, 0.8, 0.3]  # argmax against 0.5: real, fake, real, fake, real
    found = numerical_analysis.compute_metrics([0.5] * 5, second, list(LABELS), n_resamples=100, seed=1)
    assert found['accuracy_at_argmax_percent'] == pytest.approx(60.0)
    assert found['balanced_accuracy_at_argmax_percent'] == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)
    for score in ('second_score', 'softmax_fake_probability'):
        assert set(found[score]) == {'roc_auc', 'roc_auc_ci', 'average_precision', 'eer',
                                     'accuracy_at_argmax_percent'}
        low, high = found[score]['roc_auc_ci']
        assert low <= found[score]['roc_auc'] <= high
    assert found['bootstrap'] == {'n_resamples': 100, 'seed': 1}


def test_checkpoint_file_labels_add_folders_only_until_they_differ() -> None:
    seeds = ['runs/s0/checkpoints/ciplab_SimpleNet_AdamW.pt', 'runs/s1/checkpoints/ciplab_SimpleNet_AdamW.pt',
             'checkpoints/ciplab_BonusNet_Adam.pt']
    assert checkpoint_file_labels(seeds) == {
        seeds[0]: 's0/checkpoints/ciplab_SimpleNet_AdamW.pt',
        seeds[1]: 's1/checkpoints/ciplab_SimpleNet_AdamW.pt',
        seeds[2]: 'checkpoints/ciplab_BonusNet_Adam.pt'}
    assert checkpoint_file_labels(['a/x.pt', 'b/y.pt']) == {'a/x.pt': 'x.pt', 'b/y.pt': 'y.pt'}
    assert checkpoint_file_labels(['x.pt', 'x.pt']) == {'x.pt': 'x.pt'}


def test_an_interval_wholly_below_chance_is_marked_inverted_never_flipped() -> None:
    assert inverted_interval([0.30, 0.499]) and not inverted_interval([0.45, 0.5])
    base = {'model': 'BonusNet', 'trained_on': 'dfdc+self-blend', 'split': 'test', 'n_real': 4, 'n_fake': 4,
            'ap': 0.4, 'eer': 0.6, 'accuracy': 40.0, 'balanced_accuracy': 40.0}
    rows = [{**base, 'checkpoint': 'a.pt', 'data': 'd/swaps', 'data_name': 'swaps', 'auc': 0.31,
             'auc_ci': [0.25, 0.38], 'inverted': True},
            {**base, 'checkpoint': 'a.pt', 'data': 'd/other', 'data_name': 'other', 'auc': 0.47,
             'auc_ci': [0.40, 0.55], 'inverted': False}]
    markdown = evaluation_markdown(rows)
    assert '| 0.310 [0.250, 0.380] **INVERTED** |' in markdown
    assert '| 0.470 [0.400, 0.550] |' in markdown and markdown.count('**INVERTED**') == 1
    assert inverted_lines(rows) == [f'INVERTED: a.pt on swaps:test: AUC 0.310 [0.250, 0.380]: '
                                    f'{INVERTED_WARNING}.']
    assert f'- {inverted_lines(rows)[0]}' in markdown
