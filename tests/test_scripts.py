"""train_main.py and the two plot scripts run end to end on tiny data and write the named files."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import plot_accuracy_and_loss
import plot_samples_of_faces_datasets
import train_main
import utils
from fmd.core.cli import run_cli
from helpers import PROJECT_ROOT, TINY_COUNTS


def test_train_main_writes_log_and_checkpoint(trained_runs: Path) -> None:
    for dataset in TINY_COUNTS:
        log = json.loads((trained_runs / 'out' / f'{dataset}_SimpleNet_Adam.json').read_text())
        assert len(log) == 1
        record = log[0]
        assert record['model'] == 'SimpleNet' and record['dataset'] == dataset
        assert record['optimizer']['name'] == 'Adam' and record['optimizer']['params']['lr'] == 0.001
        assert 'params' not in record['optimizer']['params']
        for key in ('train_loss', 'train_acc', 'val_loss', 'val_acc', 'test_loss', 'test_acc'):
            assert len(record[key]) == 1, key
        assert record['nof_params'] == 16_901_762 and record['seed'] == 0
        assert (trained_runs / 'checkpoints' / f'{dataset}_SimpleNet_Adam.pt').is_file()


def test_plot_accuracy_and_loss_writes_both_figures(trained_runs: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(trained_runs)
    written = plot_accuracy_and_loss.main(['-m', 'SimpleNet', '-j',
                                           'out/fakes_dataset_SimpleNet_Adam.json',
                                           '-d', 'fakes_dataset'])
    assert [str(p) for p in written] == ['figures/fakes_dataset_SimpleNet_losses_plot.png',
                                         'figures/fakes_dataset_SimpleNet_accuracies_plot.png']
    for path in written:
        with Image.open(path) as image:
            assert image.format == 'PNG' and image.width > 300


@pytest.mark.parametrize('epochs', [1, 3])
def test_epoch_axis_has_whole_epochs_only(epochs: int, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    kept, close = [], plot_accuracy_and_loss.plt.close
    monkeypatch.setattr(plot_accuracy_and_loss.plt, 'close', kept.append)
    record = {f'{split}_loss': [0.5] * epochs for split in ('train', 'val', 'test')}
    plot_accuracy_and_loss.plot_metric(record, 'loss', 'SimpleNet', 'fakes_dataset',
                                       tmp_path / 'loss.png')
    axes = kept[0].axes[0]
    ticks = [t for t in axes.get_xticks() if axes.get_xlim()[0] <= t <= axes.get_xlim()[1]]
    assert ticks == list(range(1, epochs + 1))  # one epoch: a single tick at 1, not 0.96-1.04
    close(kept[0])


def test_plot_samples_writes_the_grid(data_root: Path, workdir: Path) -> None:
    written = plot_samples_of_faces_datasets.main(['--data-root', str(data_root)])
    assert written == Path('figures/datasets_samples.png')
    with Image.open(workdir / written) as image:
        assert image.format == 'PNG'


def test_train_main_help_runs_as_a_script() -> None:
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / 'train_main.py'), '--help'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and 'usage: train_main.py' in result.stdout


@pytest.mark.parametrize('argv, message', [
    (['-m', 'ResNet'], "invalid choice: 'ResNet'"),
    (['-o', 'RMSprop'], "invalid choice: 'RMSprop'"),
    (['-e', '0'], 'argument --epochs/-e: must be an integer >= 1, got 0'),
    (['--lr', 'nan'], 'argument --lr: must be a finite number, got nan'),
    (['--lr', 'inf'], 'argument --lr: must be a finite number, got inf'),
    (['--lr', '0'], 'argument --lr: must be a finite number > 0, got 0'),
    (['--workers', '-1'], 'argument --workers: must be an integer >= 0, got -1'),
    (['--momentum', '-0.5'], 'argument --momentum: must be a finite number >= 0, got -0.5'),
])
def test_train_main_rejects_bad_arguments(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_main.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_train_main_accepts_the_assignment_command() -> None:
    command = 'python train_main.py -d fakes_dataset -m Xception-Based --lr 0.001 -b 32 -e 5 -o Adam'
    args = train_main.parse_args(command.split()[2:])
    assert (args.dataset, args.model, args.lr, args.batch_size, args.epochs, args.optimizer) == \
        ('fakes_dataset', 'Xception-Based', 0.001, 32, 5, 'Adam')


def test_train_main_without_data_says_where_it_looked(workdir: Path) -> None:
    with pytest.raises(utils.DataRootNotFoundError, match=r'missing_folder.*is not a folder'):
        train_main.main(['--data-root', 'missing_folder'])


def test_plot_with_missing_log_is_a_one_line_error(workdir: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(plot_accuracy_and_loss.main, ['-m', 'SimpleNet', '-j', 'out/none.json',
                                              '-d', 'fakes_dataset'])
    assert exit_info.value.code == 'error: out/none.json not found; run train_main.py first.'


def test_environment_yml_pins_match_requirements() -> None:
    requirements = [line.strip() for line in (PROJECT_ROOT / 'requirements.txt').read_text()
                    .splitlines() if line.strip() and not line.startswith('#')]
    environment = re.findall(r'^\s+- (\S+==\S+)$', (PROJECT_ROOT / 'environment.yml').read_text(),
                             re.MULTILINE)
    assert environment == requirements
    assert 'torch==2.14.1' in requirements and 'torchvision==0.29.1' in requirements


def test_require_pretrained_turns_missing_weights_into_an_error(data_root: Path, workdir: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    # conftest sets XCEPTION_WEIGHTS=none, so the backbone starts from random weights.
    with pytest.raises(SystemExit) as exit_info:
        train_main.main(['-m', 'Xception-Based', '--require-pretrained', '-d', 'synthetic_dataset',
                         '--data-root', str(data_root)])
    assert 'XceptionBased could not load its ImageNet weights' in str(exit_info.value.code)
    assert not (workdir / 'out').exists()
