"""docs/make_figures.py: the cross-dataset heat map plots the README table's rows, and is regenerated."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from PIL import Image

from helpers import PROJECT_ROOT

ROW = re.compile(r'^\| (\w+) / (\w+) \| (\w+):test \| \d+ / \d+ \| ([0-9.]+) \[([0-9.]+), ([0-9.]+)\] \|')


def make_figures():
    spec = importlib.util.spec_from_file_location('make_figures', PROJECT_ROOT / 'docs' / 'make_figures.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_heat_map_rows_are_the_readme_table(tmp_path: Path) -> None:
    readme = [ROW.match(line) for line in (PROJECT_ROOT / 'README.md').read_text().splitlines()]
    table = [(m[1], m[2], m[3], float(m[4]), [float(m[5]), float(m[6])]) for m in readme if m]
    rows = json.loads((PROJECT_ROOT / 'docs' / 'cross_dataset_auc.json').read_text())
    assert len(table) == 8
    assert [(r['model'], r['trained_on'], r['data_name'], r['auc'], r['auc_ci']) for r in rows] == table
    (written,) = make_figures().main(['cross_dataset_auc', '--out-dir', str(tmp_path)])
    assert written == tmp_path / 'cross_dataset_auc.png'
    with Image.open(written) as figure:
        assert figure.width > 600 and figure.height > 400
