"""Collect the Facts from a run's folders (out/, checkpoints/, the data roots); list what is missing."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmd.core import runs
from fmd.data.data_root import DATASET_NAMES, DATASET_PARTS, is_demo_root
from fmd.reporting.facts import Facts, RunFacts
from fmd.reporting.model_facts import gather_models


def read_json(path: Path, missing: list[str]) -> Any:
    """Parsed JSON, or None with the file listed as missing or unreadable."""
    if not path.is_file():
        missing.append(f'{path} (not found)')
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        missing.append(f'{path} (unreadable: {error})')
        return None


def gather_runs(missing: list[str]) -> dict[tuple[str, str], RunFacts]:
    """Each assignment run's last training record and its metrics file, noting what is missing."""
    gathered = {}
    for run in runs.ASSIGNMENT_RUNS:
        records = read_json(run.log, missing)
        record = records[-1] if isinstance(records, list) and records else None
        if records is not None and record is None:
            missing.append(f'{run.log} (no training record)')
        metrics = read_json(run.metrics, missing) if 'numerical' in run.analyses else None
        if metrics is not None and 'second_score' not in metrics:
            missing.append(f'{run.metrics} (no second_score)')
            metrics = None
        gathered[(run.dataset, run.model)] = RunFacts(run, record, metrics)
    return gathered


def gather_data(gathered: dict[tuple[str, str], RunFacts]) -> dict:
    """Where the data came from: course data, or demo data with its manifest digest."""
    roots = sorted({f.record['data_root'] for f in gathered.values()
                    if f.record and f.record.get('data_root')})
    info: dict = {'roots': {}}
    for root in roots:
        path = Path(root)
        if path.is_dir() and is_demo_root(path):
            from fmd.demo_data.manifest import manifest_digest, read_manifest

            manifest = read_manifest(path) or {}
            info['roots'][root] = {'source': 'demo', 'scale': manifest.get('scale'),
                                   'seed': manifest.get('seed'),
                                   'manifest_sha256': manifest_digest(path)}
        elif path.is_dir():
            info['roots'][root] = {'source': 'course'}
        else:
            info['roots'][root] = {'source': 'demo' if 'demo' in path.name else 'unknown',
                                   'note': 'folder not found when the report was written'}
    return info


def gather_split_counts(data: dict) -> dict[str, dict[str, tuple[int, int]]]:
    """(real, fake) image counts of every split under the first data root that exists."""
    from faces_dataset import list_images

    for root in data['roots']:
        counts: dict[str, dict[str, tuple[int, int]]] = {}
        for name in DATASET_NAMES:
            for part in DATASET_PARTS:
                folder = Path(root, name, part)
                if (folder / 'real').is_dir() and (folder / 'fake').is_dir():
                    counts.setdefault(name, {})[part] = (len(list_images(folder / 'real')),
                                                         len(list_images(folder / 'fake')))
        if counts:
            return counts
    return {}


def gather_timings(missing: list[str]) -> list[dict]:
    """run_me.sh's step timings (step, seconds, peak RSS), from its TSV file."""
    if not runs.TIMINGS.is_file():
        missing.append(f'{runs.TIMINGS} (not found)')
        return []
    steps = []
    for line in runs.TIMINGS.read_text().splitlines()[1:]:
        parts = line.split('\t')
        if len(parts) >= 3 and parts[0]:
            try:
                steps.append({'step': parts[0], 'seconds': float(parts[1]), 'peak_rss_mib': parts[2]})
            except ValueError:
                continue
    return steps


def gather(missing: list[str] | None = None) -> Facts:
    """Every fact the report needs, read from the run folders; `missing` collects what is not there."""
    missing = [] if missing is None else missing
    gathered = gather_runs(missing)
    data = gather_data(gathered)
    bonus = read_json(runs.BONUS_RESULTS, missing)
    if not runs.BONUS_CHECKPOINT.is_file():
        missing.append(f'{runs.BONUS_CHECKPOINT} (not found)')
    saliency = {}
    for run in runs.ASSIGNMENT_RUNS:
        if 'saliency' in run.analyses:
            stats = read_json(runs.saliency_stats_path(run.dataset, run.model), missing)
            if isinstance(stats, dict):
                saliency[(run.dataset, run.model)] = stats
    return Facts(runs=gathered, models=gather_models(), data=data,
                 split_counts=gather_split_counts(data), timings=gather_timings(missing),
                 bonus=bonus if isinstance(bonus, dict) else None, saliency=saliency,
                 missing=missing, evaluation=gather_evaluation(missing))


def gather_evaluation(missing: list[str]) -> list[dict]:
    """fmd.evaluate's rows in out/evaluation.json ([] when it was not run; unreadable: noted missing)."""
    from fmd.evaluate.tables import read_evaluation

    try:
        return read_evaluation()
    except ValueError as error:
        missing.append(f'{runs.EVALUATION_JSON} ({error})')
        return []
