"""Pieces many answers share: figures that may be missing, the run a question is about, caveats."""
from __future__ import annotations

from pathlib import Path

from fmd.data.data_root import DATASET_PARTS
from fmd.reporting.chapters import QUESTION_RUNS, Question
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts, RunFacts


def add_figure(doc: Document, facts: Facts, paths: list[Path], caption: str, question: str,
               width: float = 1.0) -> bool:
    """A numbered figure when every file exists; otherwise a note, and the files listed as missing."""
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        facts.missing.extend(f'{p} (not found)' for p in absent)
        doc.para(f'*No figure: {", ".join(f"`{p}`" for p in absent)} not found.*', small=True)
        return False
    doc.figure(list(paths), caption, question, width=width)
    return True


def roc_det_figure(doc: Document, facts: Facts, run: RunFacts, question: Question) -> bool:
    """The ROC and DET figure of both outputs of a run, as numerical_analysis.py drew it."""
    return add_figure(doc, facts, [run.run.figure('roc_curve'), run.run.figure('det_curve')],
                      f'ROC (left) and DET (right) curves of both outputs of {run.label} on the test set, '
                      'positive label = fake', question.label)


def run_for(question: Question, facts: Facts) -> RunFacts:
    """The training run a question is about (QUESTION_RUNS)."""
    return facts.run(*QUESTION_RUNS[question.number])


def missing_run(doc: Document, run: RunFacts) -> bool:
    """Note a run's missing training log in the entry; True when it is missing."""
    if run.record is None:
        doc.para(f'*No training log `{run.run.log}`: train {run.label} (run_me.sh) to answer this.*')
        return True
    return False


def missing_metrics(doc: Document, run: RunFacts) -> bool:
    """Note a run's missing metrics file in the entry; True when it is missing."""
    if not run.metrics:
        doc.para(f'*No metrics file `{run.run.metrics}` (run numerical_analysis.py).*')
        return True
    return False


def training_command(run: RunFacts) -> str:
    """The train_main.py command line that reproduces the run, from its log."""
    record = run.record or {}
    optimizer = record.get('optimizer', {})
    lr = optimizer.get('params', {}).get('lr', 'n/a')
    return (f'python train_main.py -d {run.run.dataset} -m {run.run.model} --lr {lr} '
            f'-b {record.get("batch_size", "n/a")} -e {run.epochs} -o {optimizer.get("name", "n/a")}')


def data_caveat(facts: Facts) -> str:
    """A warning that demo numbers show the pipeline working, not real-face performance."""
    if facts.demo:
        return ('The data of this run is the generated demo stand-in, not the course data, so the '
                'numbers show that the pipeline works, not how it does on real faces.')
    return ''


def random_init_caveat(facts: Facts) -> str:
    """The long warning that Xception had no ImageNet weights in this run."""
    if not facts.xception_random:
        return ''
    run = facts.xception
    return (f'**Caveat:** Xception had no ImageNet weights in this run (the training log records '
            f'`"pretrained": false`): these numbers and maps come from a randomly initialised network '
            f'trained for {run.epochs} epoch(s). The assignment expects an ImageNet-pretrained '
            'backbone fine-tuned for 2 epochs; place the weights file (docs/training.md, "Xception and '
            'its ImageNet weights") and re-run to get the numbers the assignment asks about.')


def random_init_reminder(facts: Facts) -> str:
    """A one-line reminder of the random initialisation, for later chapters."""
    return ('*Xception was randomly initialised in this run (no ImageNet weights; see Q17).*'
            if facts.xception_random else '')


def n_train(facts: Facts, dataset: str) -> int | None:
    """The number of training images of `dataset`, if its folder was found."""
    counts = facts.split_counts.get(dataset, {}).get('train')
    return sum(counts) if counts else None


def split_sizes(facts: Facts, dataset: str) -> str:
    """'train 42, val 42, test 21': the size of each split of `dataset`."""
    counts = facts.split_counts.get(dataset, {})
    parts = [f'{part} {sum(counts[part]):,}' for part in DATASET_PARTS if part in counts]
    return ', '.join(parts)
