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
