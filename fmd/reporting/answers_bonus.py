"""The bonus: BonusNet under 1% of SimpleNet's parameters, its design and its test results."""
from __future__ import annotations

from fmd.core import runs
from fmd.reporting.code_reference import code_reference
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.formatting import auc, count, pct
from fmd.reporting.helpers import add_figure, data_caveat
from fmd.reporting.prose import prose


def answer_bonus(doc: Document, facts: Facts) -> None:
    """The bonus entry: the parameter budget, BonusNet's design, its test results against SimpleNet."""
    import bonus_model

    models = facts.models
    limit = models.simplenet_params // 100
    bonus = facts.bonus or {}
    params = bonus.get('nof_parameters', models.bonus_params)
    doc.para(f'**The constraint:** at most 1% of SimpleNet\'s {models.simplenet_params:,} parameters, '
             f'i.e. {limit:,}. BonusNet has **{params:,}** ({100 * params / models.simplenet_params:.2f}%'
             f' of SimpleNet): {"within" if params <= limit else "OVER"} the limit.')
    code_reference(doc, bonus_model.my_bonus_model, 'bonus_main.py:main')
    doc.para(prose('bonus.design'))
    simple = facts.run('fakes_dataset', 'SimpleNet')
    rows = []
    if facts.bonus:
        rows.append(['BonusNet (`checkpoints/bonus_model.pt`)', pct(bonus.get('test_accuracy')),
                     auc(bonus.get('roc_auc')), count(params)])
    else:
        doc.para(f'*No `{runs.BONUS_RESULTS}`: run `python bonus_main.py`.*')
    if simple.metrics:
        rows.append(['SimpleNet (Q8)', pct(simple.at_best('test_acc')), auc(simple.fake_auc()),
                     count(simple.metrics['n_params'])])
    if rows:
        doc.table(['model on the fakes_dataset test set', 'test accuracy', 'ROC AUC (fake score)',
                   'parameters'], rows, f'the bonus model against SimpleNet, from `{runs.BONUS_RESULTS}` '
                   'and the SimpleNet run files', 'Bonus', align='lrrr')
    bonus_run = facts.run('fakes_dataset', 'BonusNet')
    add_figure(doc, facts, [bonus_run.run.figure('roc_curve'), bonus_run.run.figure('det_curve')],
               'ROC (left) and DET (right) curves of BonusNet on the fakes_dataset test set', 'Bonus')
    bonus_auc = bonus.get('roc_auc')
    if facts.demo and bonus_auc is not None and simple.metrics and bonus_auc > simple.fake_auc():
        doc.para(prose('bonus.demo-margin'), small=True)
    elif facts.demo:
        doc.para(data_caveat(facts), small=True)
