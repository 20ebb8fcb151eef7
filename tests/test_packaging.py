"""The project installs: pyproject.toml's pins match requirements.txt, the top level holds only the
assignment's modules, and `pip install -e .` into a fresh venv gives working faces-* commands."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from helpers import PROJECT_ROOT

ASSIGNMENT_MODULES = {
    'bonus_main', 'bonus_model', 'common', 'faces_dataset', 'grad_cam_analysis', 'models',
    'numerical_analysis', 'plot_accuracy_and_loss', 'plot_samples_of_faces_datasets', 'saliency_map',
    'train_main', 'trainer', 'utils', 'xception'}
COMMANDS = {'faces-prepare': 'fmd.prepare', 'faces-detect': 'fmd.detect', 'faces-evaluate': 'fmd.evaluate',
            'faces-report': 'fmd.reporting', 'faces-demo-data': 'fmd.demo_data',
            'faces-explain': 'fmd.explain'}


def pyproject() -> dict:
    return tomllib.loads((PROJECT_ROOT / 'pyproject.toml').read_text())


def test_pyproject_pins_are_requirements_txt() -> None:
    requirements = [line.strip() for line in (PROJECT_ROOT / 'requirements.txt').read_text().splitlines()
                    if line.strip() and not line.startswith('#')]
    project = pyproject()['project']
    assert project['dependencies'] + project['optional-dependencies']['dev'] == requirements


def test_the_top_level_is_the_assignment_and_every_module_is_packaged() -> None:
    top_level = {path.stem for path in PROJECT_ROOT.glob('*.py')}
    assert top_level == ASSIGNMENT_MODULES
    assert set(pyproject()['tool']['setuptools']['py-modules']) == ASSIGNMENT_MODULES
    scripts = pyproject()['project']['scripts']
    assert {name: target.removesuffix('.cli:entry') for name, target in scripts.items()} == COMMANDS


def test_editable_install_into_a_fresh_venv_gives_the_commands(tmp_path: Path) -> None:
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True, timeout=120)
    python = venv / 'bin' / 'python'
    # The dependencies (and setuptools) come from the test interpreter's site-packages, not a download.
    site = subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / 'test_dependencies.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    install = subprocess.run([sys.executable, '-m', 'pip', '--python', str(python), 'install', '-q',
                              '--no-deps', '--no-build-isolation', '--no-index', '-e', str(PROJECT_ROOT)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    for command, module in COMMANDS.items():
        shown = subprocess.run([str(venv / 'bin' / command), '--help'], cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(f'usage: {command} '), (module, shown.stdout[:80])
    where = subprocess.run([str(python), '-c', 'import trainer, fmd; print(trainer.__file__, fmd.__file__)'],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert where == [str(PROJECT_ROOT / 'trainer.py'), str(PROJECT_ROOT / 'fmd' / '__init__.py')]
