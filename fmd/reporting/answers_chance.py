"""Q16: is SimpleNet better than chance on synthetic faces (binomial test, AUC chance band)."""
from __future__ import annotations

from fmd.reporting.chance import chance_figures
from fmd.reporting.chapters import Question
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.formatting import auc, pct
from fmd.reporting.helpers import data_caveat, n_train, roc_det_figure, run_for
from fmd.reporting.prose import prose


def answer_chance(doc: Document, facts: Facts, question: Question) -> None:
    """Q16: SimpleNet against the majority baseline and the AUC chance band, and why it fails or not."""
    run = run_for(question, facts)
    figures = chance_figures(run)
    if figures is None:
        doc.para('*The training log or the metrics file of SimpleNet on synthetic_dataset is missing.*')
        return
    low, high = figures['auc_band']
    better = figures['p_value'] < 0.05 and figures['auc'] is not None and figures['auc'] > high
    doc.table(['measure', 'SimpleNet', 'chance'],
              [['test accuracy at the best epoch', pct(figures['accuracy']),
                f'{pct(figures["baseline"])} (majority class)'],
               ['test ROC AUC (fake score)', auc(figures['auc']), f'0.5 (95% band {low:.3f}-{high:.3f})']],
              f'SimpleNet on synthetic_dataset against chance, {figures["n"]:,} test images',
              question.label, align='lrr')
    roc_det_figure(doc, facts, run, question)
    doc.para(f'{figures["correct"]:,} of {figures["n"]:,} test images were classified correctly. If the '
             f'model did no better than the majority rate of {pct(figures["baseline"])}, a score at '
             f'least this high would occur with probability p = {figures["p_value"]:.3g} (one-sided '
             f'binomial test). The AUC of a score unrelated to the labels falls between {low:.3f} and '
             f'{high:.3f} 95% of the time for this test set (normal approximation of the '
             'Mann-Whitney statistic).')
    fc_share = 100 * facts.models.simplenet_fc1_params / facts.models.simplenet_params
    if better:
        doc.para(prose('chance.better'))
    else:
        record = run.record
        train_acc, val_acc = record['train_acc'][-1], record['val_acc'][-1]
        size = n_train(facts, run.run.dataset)
        images = f'{size:,} training images' if size else 'its training images'
        if train_acc > val_acc + 10:
            fit = (f'With {images} it fits the training set (last-epoch training accuracy '
                   f'{pct(train_acc)} against {pct(val_acc)} validation) instead of learning a '
                   'position-independent fingerprint.')
        else:
            fit = (f'It does not even fit its {images} in this budget (last-epoch training accuracy '
                   f'{pct(train_acc)}): the signal is too weak for it to pick up from scratch.')
        doc.para('**So SimpleNet is not distinguishable from chance on synthetic faces.** A GAN face '
                 'has no swapped region and no seam: it differs from a real photo in faint, image-wide '
                 'statistics, such as the periodic high-frequency traces of the generator\'s '
                 'upsampling layers. SimpleNet looks through only three 7×7 convolutions, each followed '
                 f'by 2×2 max-pooling, and {fc_share:.0f}% of its weights sit in one fully connected '
                 'layer that ties each decision to fixed image positions.', fit,
                 'A deeper network pretrained on natural images (Chapter 3) is the assignment\'s '
                 'answer.')
    doc.para(data_caveat(facts), small=True)
