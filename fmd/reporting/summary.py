"""report/summary.json: the numbers the report quotes, for scripts."""
from __future__ import annotations

from fmd.reporting.facts import Facts
from fmd.reporting.front_matter import HEADLINE_HEADER, headline_rows
from fmd.training.collapse import run_collapsed


def summary_of(facts: Facts) -> dict:
    """report/summary.json: the numbers the report quotes, for scripts."""
    training = []
    for (dataset, model), run in facts.runs.items():
        if run.record is None:
            continue
        training.append({'question': run.run.question, 'model': model, 'dataset': dataset,
                         'epochs': run.epochs, 'best_epoch': run.best_epoch,
                         'best_val_acc': run.at_best('val_acc'),
                         'test_acc_at_best': run.at_best('test_acc'),
                         'nof_params': run.record.get('nof_params'), 'pretrained': run.pretrained,
                         'collapsed': run_collapsed(run.record),
                         'seconds_per_epoch': run.seconds_per_epoch})
    models = facts.models
    return {'data': facts.data, 'training': training,
            'metrics': [r.metrics for r in facts.runs.values() if r.metrics],
            'headline': {'header': HEADLINE_HEADER, 'rows': headline_rows(facts)},
            'xception_parameters': {'backbone': models.backbone_params,
                                    'xception_based': models.based_params,
                                    'difference': models.based_params - models.backbone_params},
            'bonus': facts.bonus, 'timings': facts.timings, 'saliency': {
                f'{d}_{m}': s for (d, m), s in facts.saliency.items()}}
