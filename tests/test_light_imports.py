"""The non-assignment scripts import torch and scikit-learn only when they compute, so --help is quick
(bench/bench_help.py times it; timings stay out of the tests)."""
from __future__ import annotations

import subprocess
import sys

from helpers import PROJECT_ROOT, script_env

LIGHT_SCRIPTS = ('fmd.detect.cli', 'fmd.evaluate.cli', 'fmd.prepare.cli', 'fmd.reporting.cli',
                 'fmd.demo_data.cli')


def test_importing_the_tool_scripts_loads_neither_torch_nor_sklearn() -> None:
    code = (f'import sys; import {", ".join(LIGHT_SCRIPTS)}; '
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'sklearn'}))")
    result = subprocess.run([sys.executable, '-c', code], cwd=PROJECT_ROOT, env=script_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'


def test_training_parses_its_command_line_without_torch_and_draws_off_screen() -> None:
    # train_main.py's __main__ block parses (every model name included) and forks its image decoders
    # before torch is imported; use_agg_backend() leaves matplotlib unimported but drawing off-screen
    code = ('import sys; from fmd.core.cli import use_agg_backend; use_agg_backend(); '
            "head = open('train_main.py').read().split(\"if __name__ == '__main__':\")[0]; "
            "exec(compile(head, 'train_main.py', 'exec')); "
            "[parse_args(['-m', name]) for name in ('SimpleNet', 'Xception-Based', 'EfficientNetLite0')]; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib'})); "
            'import matplotlib.pyplot; print(matplotlib.pyplot.get_backend())')
    result = subprocess.run([sys.executable, '-c', code], cwd=PROJECT_ROOT,
                            env={**script_env(), 'MPLBACKEND': 'TkAgg'}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split('\n')[:2] == ['[]', 'Agg']
