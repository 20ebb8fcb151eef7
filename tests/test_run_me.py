"""QUICK=1 ./run_me.sh end to end in a copy of the project: every expected file, every JSON parses."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT

RUNS = ('fakes_dataset_SimpleNet', 'synthetic_dataset_SimpleNet', 'synthetic_dataset_XceptionBased',
        'fakes_dataset_BonusNet')
ANALYSED = ('fakes_dataset_SimpleNet', 'synthetic_dataset_SimpleNet', 'synthetic_dataset_XceptionBased')
EXPECTED_FIGURES = (
    ['datasets_samples.png']
    + [f'{run}_{kind}_plot.png' for run in ANALYSED for kind in ('losses', 'accuracies')]
    + [f'{run}_{kind}_curve.png' for run in RUNS for kind in ('roc', 'det')]
    + [f'{run}_{kind}.png' for run in ('fakes_dataset_SimpleNet', 'synthetic_dataset_XceptionBased')
       for kind in ('saliency_maps_and_images_pairs', 'mean_saliency_maps')]
    + [f'{run}_{kind}_Image_grad_cam.png' for run in ANALYSED for kind in ('Real', 'Fake')])
EXPECTED_OUT = ([f'{run}_Adam.json' for run in RUNS] + [f'{run}_metrics.json' for run in RUNS]
                + ['bonus_main.json', 'run_me_timings.tsv'])
EXPECTED_CHECKPOINTS = [f'{run}_Adam.pt' for run in RUNS] + ['bonus_model.pt']


def _project_code() -> list[str]:
    """The code run_me.sh needs: top-level scripts and the packages beside them (e.g. demo_data/)."""
    tracked = subprocess.run(['git', 'ls-files'], cwd=PROJECT_ROOT, capture_output=True, text=True)
    names = tracked.stdout.split() if tracked.returncode == 0 else []
    if not any(name.endswith('.py') for name in names):
        found = [*PROJECT_ROOT.glob('*.py'), *PROJECT_ROOT.glob('*/*.py'), PROJECT_ROOT / 'run_me.sh']
        names = [path.relative_to(PROJECT_ROOT).as_posix() for path in found]
    folders = {''} | {name.rpartition('/')[0] for name in names if name.endswith('/__init__.py')}
    return [name for name in names
            if name.endswith(('.py', '.sh')) and name.rpartition('/')[0] in folders]


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's code after `QUICK=1 ./run_me.sh` and `python report.py`."""
    project = tmp_path_factory.mktemp('project')
    for name in _project_code():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, project / name)
    python_dir = str(Path(sys.executable).parent)
    env = {**os.environ, 'QUICK': '1', 'PYTHON': sys.executable, 'XCEPTION_WEIGHTS': 'none',
           'PATH': f'{python_dir}:{os.environ["PATH"]}'}
    env.pop('FACES_DATA_ROOT', None)
    result = subprocess.run(['bash', 'run_me.sh'], cwd=project, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, f'run_me.sh failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}'
    report = subprocess.run([sys.executable, 'report.py'], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    return project


def test_every_expected_file_exists(quick_run: Path) -> None:
    for folder, names in (('figures', EXPECTED_FIGURES), ('out', EXPECTED_OUT),
                          ('checkpoints', EXPECTED_CHECKPOINTS)):
        missing = [n for n in names if not (quick_run / folder / n).is_file()]
        assert not missing, f'{folder}/ lacks {missing}'
    assert len(EXPECTED_FIGURES) == 1 + 6 + 8 + 4 + 6


def test_every_json_parses_and_training_logs_have_one_epoch(quick_run: Path) -> None:
    for path in (quick_run / 'out').glob('*.json'):
        json.loads(path.read_text())
    for run in RUNS:
        record = json.loads((quick_run / 'out' / f'{run}_Adam.json').read_text())[-1]
        assert len(record['val_acc']) == 1 and record['best_epoch'] == 1
    xception = json.loads((quick_run / 'out' / 'synthetic_dataset_XceptionBased_Adam.json')
                          .read_text())[-1]
    assert xception['pretrained'] is False  # XCEPTION_WEIGHTS=none


def test_timings_name_every_step(quick_run: Path) -> None:
    rows = (quick_run / 'out' / 'run_me_timings.tsv').read_text().splitlines()
    steps = [row.split('\t')[0] for row in rows[1:]]
    assert steps[0] == 'demo-data' and steps[-1] == 'bonus-main'
    assert 'train-synthetic_dataset-XceptionBased' in steps


def test_report_lists_every_figure_and_no_missing_input(quick_run: Path) -> None:
    markdown = (quick_run / 'report' / 'report.md').read_text()
    for name in EXPECTED_FIGURES:
        assert f'figures/{name}' in markdown
    summary = json.loads((quick_run / 'report' / 'summary.json').read_text())
    assert summary['missing'] == []
    assert summary['xception_parameters'] == {'backbone': 22_855_952, 'xception_based': 23_128_786,
                                              'difference': 272_834}
    assert (quick_run / 'report' / 'report.pdf').read_bytes()[:4] == b'%PDF'
