"""The test-set measures: class proportions (Q9, Q15), ROC/DET curves and AUCs (Q10-Q12)."""
from __future__ import annotations

import math

from fmd.reporting.chapters import Question
from fmd.reporting.code_reference import code_reference
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.formatting import auc, count, pct
from fmd.reporting.helpers import missing_metrics, roc_det_figure, run_for
from fmd.reporting.prose import prose


def answer_proportion(doc: Document, facts: Facts, question: Question) -> None:
    """Q9/Q15: the test set's fake:real ratio and what it does to accuracy as a measure."""
    run = run_for(question, facts)
    if missing_metrics(doc, run):
        return
    n_real, n_fake = run.metrics['n_real'], run.metrics['n_fake']
    n = n_real + n_fake
    ratio = n_fake / n_real if n_real else math.inf
    doc.table(['test set', 'real', 'fake', 'fake : real', 'fake share'],
              [[run.run.dataset, count(n_real), count(n_fake), f'{ratio:.3f}', pct(100 * n_fake / n)]],
              f'class counts of the test set, from `{run.run.metrics}`', question.label, align='lrrrr')
    majority = 'real' if n_real >= n_fake else 'fake'
    baseline = 100 * max(n_real, n_fake) / n
    if abs(n_real - n_fake) <= 0.02 * n:
        doc.para(f'The test set is balanced ({n_fake:,} fake, {n_real:,} real), so a guess scores 50% '
                 'and accuracy is a fair summary.')
    else:
        doc.para(f'There are {n_fake:,} fake and {n_real:,} real test images, fake:real = {ratio:.3f} '
                 f'(about 1:{n_real / n_fake:.1f}). A classifier that always answers "{majority}" '
                 f'already reaches {pct(baseline)} accuracy, so accuracy flatters a detector on this set: '
                 'the ROC and DET curves (Q10-Q12) do not depend on the class ratio and are the '
                 'fairer measure.')
    if run.best_epoch is not None:
        doc.para(f'{run.label} reached {pct(run.at_best("test_acc"))} test accuracy at its best '
                 f'epoch, against the {pct(baseline)} of always answering "{majority}".')


def answer_roc_det(doc: Document, facts: Facts, question: Question) -> None:
    """Q10: how the soft scores are read, and the ROC and DET figure."""
    code_reference(doc, 'numerical_analysis.py:get_soft_scores_and_true_labels',
                   'numerical_analysis.py:plot_roc_curve', 'numerical_analysis.py:plot_det_curve')
    doc.para(prose('roc-det.scores'))
    run = run_for(question, facts)
    roc_det_figure(doc, facts, run, question)


def answer_auc(doc: Document, facts: Facts, question: Question) -> None:
    """Q11: each score's ROC AUC, and why the real logit's curve lies under the diagonal."""
    run = run_for(question, facts)
    if missing_metrics(doc, run):
        return
    first = run.metrics['first_score']['roc_auc']
    second = run.metrics['second_score']['roc_auc']
    softmax = run.metrics['softmax_fake_probability']['roc_auc']
    doc.table(['score (positive label = fake)', 'ROC AUC'],
              [['first output (real logit)', auc(first)], ['second output (fake logit)', auc(second)],
               ['softmax P(fake)', auc(softmax)]],
              f'ROC AUC of each score of {run.label} on the test set, from `{run.run.metrics}`',
              question.label, align='lr')
    doc.para('The AUC is the probability that a randomly drawn fake image scores higher than a randomly '
             'drawn real one: 1 is a perfect ranking, 0.5 a random one.')
    if second > 0.5 > first:
        doc.para(f'The second output is trained to be high for fakes, so ranking by it puts fakes first '
                 f'and its curve lies above the diagonal (AUC {auc(second)}). The first output is '
                 'trained to be high for *real* images; used as a score for the positive class "fake" '
                 f'it ranks the images the wrong way round, so its curve lies **under** the diagonal '
                 f'(AUC {auc(first)} < 0.5). That is not a bug: negating a score turns its AUC into '
                 f'1 − AUC, so the first output as a "real" detector has AUC {auc(1 - first)}. The two '
                 f'AUCs need not add up to exactly 1 (here {first + second:.3f}) because the two logits '
                 'are separate outputs and only their difference, the softmax, is fixed by the '
                 f'training loss; softmax P(fake) has AUC {auc(softmax)}.')
    else:
        doc.para(f'Here the first output has AUC {auc(first)} and the second {auc(second)}. A trained '
                 'detector puts the second (fake) output\'s curve above the diagonal and the first '
                 '(real) output\'s curve under it, since the first output is high for real images and '
                 'the positive class is "fake"; this run does not show that split, so the model ranks '
                 'the test images little better than chance.')


def answer_det(doc: Document, facts: Facts, question: Question) -> None:
    """Q12: how to read a DET curve, with the fake score's EER and average precision."""
    run = run_for(question, facts)
    doc.para(prose('det.reading'))
    if missing_metrics(doc, run):
        return
    second = run.metrics['second_score']
    doc.para(f'For the fake output of {run.label}: EER {pct(100 * second["eer"])}, average precision '
             f'{auc(second["average_precision"])}, arg-max accuracy '
             f'{pct(run.metrics["accuracy_at_argmax_percent"])} (from `{run.run.metrics}`). The first '
             'output, high for real images, is roughly the negative of the second, so its DET curve '
             'is roughly the second\'s reflected through the centre (both error rates replaced by '
             'their complements), far from the lower-left corner.')
