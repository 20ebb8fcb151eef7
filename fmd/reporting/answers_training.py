"""The training answers: Trainer (Q4-Q5), the set-up (Q6), curves and best epochs (Q7-8, Q13-14, Q26-27)."""
from __future__ import annotations

from fmd.reporting.chapters import Question
from fmd.reporting.code_reference import code_reference
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.formatting import auc, count, pct
from fmd.reporting.helpers import (
    add_figure,
    data_caveat,
    missing_run,
    random_init_reminder,
    roc_det_figure,
    run_for,
    split_sizes,
    training_command,
)
from fmd.reporting.prose import prose


def answer_train_one_epoch(doc: Document, facts: Facts, question: Question) -> None:
    """Q4: one training epoch step by step, and the devices this run trained on."""
    from trainer import Trainer

    code_reference(doc, Trainer.train_one_epoch)
    devices = sorted({f.record.get('device') for f in facts.runs.values()
                      if f.record and f.record.get('device')})
    doc.para(prose('train-one-epoch'),
             f'This run trained on: {", ".join(f"`{d}`" for d in devices)}.' if devices else '')


def answer_evaluate(doc: Document, facts: Facts, question: Question) -> None:
    """Q5: evaluation without gradients, and how Trainer.run uses it each epoch."""
    from trainer import Trainer

    code_reference(doc, Trainer.evaluate_model_on_dataloader, Trainer.validate, Trainer.test)
    doc.para(prose('evaluate'))


def answer_train_simplenet(doc: Document, facts: Facts, question: Question) -> None:
    """Q6: SimpleNet's layers, this run's command and timing, and why the loss, optimizer and splits."""
    run = run_for(question, facts)
    models = facts.models
    fc1_share = 100 * models.simplenet_fc1_params / models.simplenet_params
    doc.para('**Set-up.** SimpleNet is three convolutions, each followed by ReLU and 2×2 max-pooling, '
             'then three fully connected layers: ' + ', '.join(models.simplenet_layers) + f'. It has '
             f'{count(models.simplenet_params)} parameters, {fc1_share:.1f}% of them in `fc1`.')
    if missing_run(doc, run):
        return
    doc.code(training_command(run))
    doc.para(f'This run: {run.epochs} epoch(s) on `{run.record.get("device", "n/a")}`, '
             f'{run.seconds_per_epoch:.1f} s per epoch (training plus the validation and test passes); '
             f'split sizes {split_sizes(facts, run.run.dataset) or "n/a"}.' if run.seconds_per_epoch
             else '')
    doc.para(prose('simplenet.why'))


def answer_curves(doc: Document, facts: Facts, question: Question) -> None:
    """Q7/Q13/Q26: the loss and accuracy figure of a run, and what its curves did."""
    run = run_for(question, facts)
    if question.number == 13 and run.record:
        doc.para(f'SimpleNet is trained on `synthetic_dataset` exactly as in Q6 '
                 f'({run.epochs} epoch(s); split sizes {split_sizes(facts, run.run.dataset) or "n/a"}):')
        doc.code(training_command(run))
    if question.number == 26:
        doc.para(random_init_reminder(facts))
    add_figure(doc, facts, [run.run.figure('losses_plot'), run.run.figure('accuracies_plot')],
               f'mean loss per sample (left) and accuracy (right) of {run.label}, by epoch, on the '
               'training, validation and test sets', question.label)
    if missing_run(doc, run):
        return
    record = run.record
    train_loss, val_loss = record['train_loss'], record['val_loss']
    train_acc, val_acc = record['train_acc'], record['val_acc']
    if run.epochs == 1:
        doc.para('This run trained for a single epoch, so every curve is one point and the plots show '
                 f'no trend: training loss {train_loss[0]:.3f}, validation loss {val_loss[0]:.3f}, '
                 f'validation accuracy {pct(val_acc[0])}.')
        return
    sentences = [f'Over {run.epochs} epochs the training loss went from {train_loss[0]:.3f} to '
                 f'{train_loss[-1]:.3f} and the training accuracy from {pct(train_acc[0])} to '
                 f'{pct(train_acc[-1])}; validation accuracy ranged from {pct(min(val_acc))} to '
                 f'{pct(max(val_acc))}, highest at epoch {run.best_epoch}.']
    lowest = val_loss.index(min(val_loss)) + 1
    if lowest < run.epochs and train_loss[-1] < train_loss[lowest - 1]:
        sentences.append(f'The validation loss was lowest at epoch {lowest} and then rose while the '
                         'training loss kept falling: the start of over-fitting, which the '
                         'best-validation checkpoint guards against.')
    elif lowest == run.epochs:
        sentences.append('The validation loss was still falling at the last epoch, so more epochs '
                         'might still help.')
    if max(val_acc) - min(val_acc) < 1e-9:
        sentences.append(f'The validation accuracy never moved from {pct(val_acc[0])}: the model '
                         'predicts the same way for every validation image.')
    sentences.append(prose('curves.measured-during'))
    doc.para(*sentences)


def answer_best_epoch(doc: Document, facts: Facts, question: Question) -> None:
    """Q8/Q14/Q27: accuracy per epoch, the best-validation epoch and its test accuracy."""
    run = run_for(question, facts)
    if missing_run(doc, run):
        return
    record, best = run.record, run.best_epoch
    rows = [[f'{e + 1}' + (' (best)' if e + 1 == best else ''), pct(record['train_acc'][e]),
             pct(record['val_acc'][e]), pct(record['test_acc'][e])] for e in range(run.epochs)]
    doc.table(['epoch', 'train accuracy', 'validation accuracy', 'test accuracy'], rows,
              f'accuracy of {run.label} per epoch, from `{run.run.log}`', question.label, align='lrrr')
    doc.para(f'**Best validation accuracy: {pct(run.at_best("val_acc"))}, at epoch {best}. Test '
             f'accuracy at that epoch: {pct(run.at_best("test_acc"))}.** That epoch\'s weights are the '
             f'checkpoint `{run.run.checkpoint}` that every later analysis loads.')
    if question.number == 27:
        simple = facts.run('synthetic_dataset', 'SimpleNet')
        if simple.record:
            doc.para(f'For comparison, SimpleNet on the same data: {pct(simple.at_best("val_acc"))} '
                     f'validation and {pct(simple.at_best("test_acc"))} test accuracy (Q14).')
        if run.metrics:
            doc.para(f'On the test set the fake output of {run.label} has ROC AUC '
                     f'{auc(run.fake_auc())}' + (f' (SimpleNet: {auc(simple.fake_auc())})'
                                                  if simple.metrics else '') + '.')
        roc_det_figure(doc, facts, run, question)
        doc.para(random_init_reminder(facts))
    doc.para(data_caveat(facts), small=True)
