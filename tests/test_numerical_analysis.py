"""numerical_analysis.py: soft scores, ROC/DET figures, metrics and the script end to end."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import TensorDataset

import numerical_analysis as na
from fmd.core.cli import run_cli
from helpers import PROJECT_ROOT, TINY_COUNTS, run_script
from utils import load_dataset, load_trained_model

# A hand-checkable case: of the 4 (negative, positive) pairs, 3 are ranked correctly.
SECOND = [0.1, 0.4, 0.35, 0.8]
FIRST = [0.9, 0.6, 0.65, 0.2]  # mirrors SECOND, so its AUC is 1 - 0.75
LABELS = [0, 0, 1, 1]


class TrainModeSensitive(nn.Module):
    """Linear 12 -> 2 whose output shifts by +100 in train mode, to catch a missing eval()."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.linear = nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) + (100.0 if self.training else 0.0)


def test_soft_scores_match_a_direct_forward_pass_in_dataset_order() -> None:
    torch.manual_seed(0)
    images = torch.randn(7, 3, 2, 2)
    labels = torch.tensor([0, 0, 0, 1, 1, 0, 1])
    model = TrainModeSensitive().train()
    first, second, gt = na.get_soft_scores_and_true_labels(TensorDataset(images, labels), model,
                                                           batch_size=3)  # 3 + 3 + 1
    with torch.no_grad():
        expected = images.flatten(1) @ model.linear.weight.T + model.linear.bias
    assert first == pytest.approx(expected[:, 0].tolist(), abs=1e-6)
    assert second == pytest.approx(expected[:, 1].tolist(), abs=1e-6)
    assert gt == [0, 0, 0, 1, 1, 0, 1]
    assert all(type(v) is float for v in first + second) and all(type(v) is int for v in gt)
    assert model.training  # mode restored


def test_roc_title_shows_each_auc_to_three_decimals() -> None:
    assert roc_auc_score(LABELS, SECOND) == pytest.approx(0.75)
    figure = na.plot_roc_curve(plt.figure(), FIRST, SECOND, LABELS)
    title = figure.axes[0].get_title()
    plt.close(figure)
    assert 'AUC 0.250' in title and 'AUC 0.750' in title
    assert title.index('0.250') < title.index('0.750')  # first score, then second


def test_det_curve_uses_normal_deviate_axes() -> None:
    figure = na.plot_det_curve(plt.figure(), FIRST, SECOND, LABELS)
    ax = figure.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    # Normal-deviate coordinates: the curve is drawn at norm.ppf(rate); by hand for SECOND the
    # (FPR, FNR) points are (1/2, 0), (1/2, 1/2), (0, 1/2), i.e. ppf 0 for 1/2 and ppf(0) clipped.
    second = lines[na.SECOND_SCORE_NAME]
    assert second.get_xdata()[:2] == pytest.approx([0.0, 0.0])
    assert second.get_ydata()[1:] == pytest.approx([0.0, 0.0])
    assert second.get_xdata()[2] < norm.ppf(1e-3) and second.get_ydata()[0] < norm.ppf(1e-3)
    assert na.FIRST_SCORE_NAME in lines
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ['0.1%', '1%', '5%']
    plt.close(figure)


def test_equal_error_rate_hand_cases() -> None:
    # Sorted by score: 0.9(+) 0.6(-) 0.5(+) 0.2(-) 0.1(-). Between thresholds 0.6 and 0.5 FPR stays
    # 1/3 while FNR falls from 1/2 to 0, so the two rates meet at 1/3.
    assert na.equal_error_rate([0, 0, 0, 1, 1], [0.1, 0.6, 0.2, 0.5, 0.9]) == pytest.approx(1 / 3)
    assert na.equal_error_rate(LABELS, SECOND) == pytest.approx(0.5)  # at 0.4: FPR = FNR = 1/2
    assert na.equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 0.0


def test_metrics_on_known_scores() -> None:
    metrics = na.compute_metrics(FIRST, SECOND, LABELS)
    assert metrics['n_real'] == 2 and metrics['n_fake'] == 2 and metrics['fake_to_real_ratio'] == 1.0
    assert metrics['second_score']['roc_auc'] == pytest.approx(0.75)
    assert metrics['first_score']['roc_auc'] == pytest.approx(0.25)
    # P(fake) = sigmoid(second - first) ranks the samples like [-0.8, -0.2, -0.3, 0.6]: AUC 0.75.
    assert metrics['softmax_fake_probability']['roc_auc'] == pytest.approx(0.75)
    # Ranked 0.8(+) 0.4(-) 0.35(+) 0.1(-): precision at each positive 1/1 and 2/3; AP = (1 + 2/3) / 2.
    assert metrics['second_score']['average_precision'] == pytest.approx(5 / 6)
    # argmax: sample 0 real (0.9>0.1), 1 real, 2 real (wrong), 3 fake -> 3/4.
    assert metrics['accuracy_at_argmax_percent'] == pytest.approx(75.0)


def test_script_writes_figures_and_metrics(trained_runs: Path, data_root: Path, workdir: Path) -> None:
    checkpoint = trained_runs / 'checkpoints' / 'fakes_dataset_SimpleNet_Adam.pt'
    result = run_script('numerical_analysis.py', '-m', 'SimpleNet', '--checkpoint', str(checkpoint),
                        '-d', 'fakes_dataset', '--data-root', str(data_root), '--workers', '0',
                        cwd=workdir)
    assert sorted(p.name for p in (workdir / 'figures').iterdir()) == [
        'fakes_dataset_SimpleNet_det_curve.png', 'fakes_dataset_SimpleNet_roc_curve.png']
    assert [p.name for p in (workdir / 'out').iterdir()] == ['fakes_dataset_SimpleNet_metrics.json']
    assert 'figures/fakes_dataset_SimpleNet_roc_curve.png' in result.stdout

    metrics = json.loads((workdir / 'out' / 'fakes_dataset_SimpleNet_metrics.json').read_text())
    counts = TINY_COUNTS['fakes_dataset']
    assert (metrics['n_real'], metrics['n_fake']) == (counts['real'], counts['fake'])
    assert metrics['fake_to_real_ratio'] == pytest.approx(counts['fake'] / counts['real'])
    assert metrics['model'] == 'SimpleNet' and metrics['dataset'] == 'fakes_dataset'
    assert metrics['n_params'] == 16_901_762

    # Independent check: a plain forward pass over the test images, scored by sklearn.
    model = load_trained_model(checkpoint, torch.device('cpu'))
    dataset = load_dataset('fakes_dataset', 'test', data_root)
    with torch.no_grad():
        logits = model(torch.stack([dataset[i][0] for i in range(len(dataset))]))
    labels = [dataset[i][1] for i in range(len(dataset))]
    assert metrics['second_score']['roc_auc'] == pytest.approx(roc_auc_score(labels, logits[:, 1]))
    assert metrics['softmax_fake_probability']['roc_auc'] == pytest.approx(
        roc_auc_score(labels, logits.softmax(1)[:, 1]))
    accuracy = 100.0 * (logits.argmax(1) == torch.tensor(labels)).double().mean().item()
    assert metrics['second_score']['accuracy_at_argmax_percent'] == pytest.approx(accuracy)


def run_expecting_failure(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a script that must fail; return the finished process."""
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / script), *args], cwd=cwd,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, 'PYTHONPATH': str(PROJECT_ROOT), 'OMP_NUM_THREADS': '2'})
    assert result.returncode != 0
    return result


def wrong_architecture_checkpoint(folder: Path) -> Path:
    """A checkpoint in train_main.py's {'model': state_dict} form, but of an nn.Linear."""
    checkpoint = folder / 'other_model.pt'
    torch.save({'model': nn.Linear(4, 2).state_dict()}, checkpoint)
    return checkpoint


def test_wrong_architecture_checkpoint_reaches_the_user_as_one_line(data_root: Path,
                                                                    workdir: Path) -> None:
    checkpoint = wrong_architecture_checkpoint(workdir)
    result = run_expecting_failure('numerical_analysis.py', '-m', 'SimpleNet', '--checkpoint',
                                   str(checkpoint), '-d', 'fakes_dataset', '--data-root', str(data_root),
                                   cwd=workdir)
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith('error: ') and 'SimpleNet' in last_line and str(checkpoint) in last_line
    assert 'Traceback' not in result.stderr
    assert not (workdir / 'figures').exists() and not (workdir / 'out').exists()


@pytest.mark.parametrize('script', ['numerical_analysis', 'saliency_map', 'grad_cam_analysis'])
def test_every_script_names_model_and_file_for_a_wrong_checkpoint(script: str, data_root: Path,
                                                                   workdir: Path) -> None:
    checkpoint = wrong_architecture_checkpoint(workdir)
    main = importlib.import_module(script).main
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, ['-m', 'SimpleNet', '--checkpoint', str(checkpoint), '-d', 'fakes_dataset',
                       '--data-root', str(data_root), '--workers', '0'])
    message = str(exit_info.value.code)
    assert message.startswith(f'error: {checkpoint} is not a SimpleNet checkpoint')
    assert '\n' not in message
    assert not (workdir / 'figures').exists()
