"""QUICK=1 ./run_me.sh end to end in a copy of the project: every expected file, every JSON parses,
and the report it ends with."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pypdfium2
import pytest

from fmd.core import runs
from helpers import PROJECT_ROOT

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
                + [f'{run}_saliency_stats.json' for run in ('fakes_dataset_SimpleNet',
                                                            'synthetic_dataset_XceptionBased')]
                + ['bonus_main.json', 'run_me_timings.tsv'])
EXPECTED_CHECKPOINTS = [f'{run}_Adam.pt' for run in RUNS] + ['bonus_model.pt', 'bonus.pt']


def _project_code() -> list[str]:
    """The code run_me.sh needs: top-level scripts and every file of the packages (fmd/, with its data)."""
    tracked = subprocess.run(['git', 'ls-files'], cwd=PROJECT_ROOT, capture_output=True, text=True)
    names = tracked.stdout.split() if tracked.returncode == 0 else []
    if not any(name.endswith('.py') for name in names):
        package = (path for path in (PROJECT_ROOT / 'fmd').rglob('*')
                   if path.is_file() and '__pycache__' not in path.parts)
        found = [*PROJECT_ROOT.glob('*.py'), PROJECT_ROOT / 'run_me.sh', *package]
        names = [path.relative_to(PROJECT_ROOT).as_posix() for path in found]
    packages = {name.rpartition('/')[0] for name in names if name.endswith('/__init__.py')}
    top_level = [name for name in names if '/' not in name and name.endswith(('.py', '.sh'))]
    return top_level + [name for name in names if name.rpartition('/')[0] in packages]  # + package data


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's code after `QUICK=1 ./run_me.sh` (which ends by writing the report)."""
    project = tmp_path_factory.mktemp('project')
    for name in _project_code():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, project / name)
    python_dir = str(Path(sys.executable).parent)
    env = {**os.environ, 'QUICK': '1', 'PYTHON': sys.executable, 'XCEPTION_WEIGHTS': 'none',
           'PATH': f'{python_dir}:{os.environ["PATH"]}'}
    env.pop('FACES_DATA_ROOT', None)
    result = subprocess.run(['bash', 'run_me.sh'], cwd=project, env=env, capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, f'run_me.sh failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}'
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
    assert steps[0] == 'demo-data' and steps[1] == 'samples' and steps[-1] == 'report'
    # The chain of runs.py: each run trained, then its analyses; the bonus evaluated after BonusNet.
    trained = [step.removeprefix('train-') for step in steps if step.startswith('train-')]
    assert trained == [f'{run.dataset}-{run.model}' for run in runs.ASSIGNMENT_RUNS]
    assert steps.index('bonus-main') > steps.index('train-fakes_dataset-BonusNet')
    assert steps.index('saliency_map-synthetic_dataset-XceptionBased') > \
        steps.index('train-synthetic_dataset-XceptionBased')


def test_report_answers_every_question_with_every_figure_and_no_missing_input(quick_run: Path) -> None:
    markdown = (quick_run / 'report' / 'report.md').read_text()
    for name in EXPECTED_FIGURES:
        assert f'figures/{name}' in markdown
    numbers = [int(n) for n in re.findall(r'^### Q(\d+) ', markdown, re.MULTILINE)]
    assert numbers == list(range(1, 36)) and '\n## Bonus\n' in markdown
    assert 'DEMO data' in markdown and 'randomly initialised' in markdown
    summary = json.loads((quick_run / 'report' / 'summary.json').read_text())
    assert summary['missing'] == []
    assert summary['xception_parameters'] == {'backbone': 22_855_952, 'xception_based': 23_128_786,
                                              'difference': 272_834}
    pdf = pypdfium2.PdfDocument(str(quick_run / 'report' / 'report.pdf'))
    try:
        assert len(pdf) == summary['pdf']['pages'] > 15
    finally:
        pdf.close()
