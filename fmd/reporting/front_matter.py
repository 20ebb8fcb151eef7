"""The first page (the run at a glance, the headline table) and the appendix (timings, missing inputs,
fmd.evaluate's rows when it was run)."""
from __future__ import annotations

import time

from fmd.core import runs
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.formatting import auc, count, duration, pct
from fmd.reporting.helpers import data_caveat, random_init_caveat
from fmd.training.collapse import collapse_note

TITLE = 'Facial Manipulation Detection'
SUBTITLE = 'Answers to the assignment, Q1-Q35 and the bonus, from one run'
COURSE = 'Computer Vision 0510-6251, Tel Aviv University'
HEADLINE_HEADER = ['model', 'dataset', 'epochs', 'best val acc (epoch)', 'test acc there',
                   'test ROC AUC', 'parameters']  # the columns of headline_rows


def headline_rows(facts: Facts) -> list[list[str]]:
    """Every trained model: dataset, epochs, best validation accuracy, test accuracy, AUC, parameters."""
    rows = []
    for (dataset, model), run in facts.runs.items():
        name = model + (' (random init)' if run.pretrained is False else '') + collapse_note(run.record)
        if run.record is None:
            rows.append([name, dataset] + ['missing'] * 5)
            continue
        params = run.record.get('nof_params')
        rows.append([name, dataset, str(run.epochs),
                     f'{pct(run.at_best("val_acc"))} (ep. {run.best_epoch})',
                     pct(run.at_best('test_acc')), auc(run.fake_auc()) if run.metrics else 'n/a',
                     count(params)])
    return rows


def front_page(doc: Document, facts: Facts) -> None:
    """Title, the run at a glance (data, device, time, seed, initialisation), the headline table."""
    doc.heading(1, TITLE)
    doc.para(f'**{SUBTITLE}.** {COURSE}. Written by `fmd.reporting` on {time.strftime("%Y-%m-%d %H:%M")} '
             'from the files of one run of `run_me.sh`.')
    rows = []
    for root, info in facts.data['roots'].items():
        if info['source'] == 'demo':
            rows.append(['data', f'DEMO data in `{root}` (a generated stand-in, not the course data), '
                                 f'scale {info.get("scale")}, seed {info.get("seed")}'])
            if info.get('manifest_sha256'):
                rows.append(['demo manifest SHA-256', info['manifest_sha256']])
        elif info['source'] == 'course':
            rows.append(['data', f'course data in `{root}`'])
        else:
            rows.append(['data', f'`{root}` ({info.get("note", "unknown")})'])
    if not rows:
        rows.append(['data', 'not recorded (no training log)'])
    devices = sorted({r.record.get('device') for r in facts.runs.values()
                      if r.record and r.record.get('device')})
    rows.append(['device', ', '.join(devices) or 'not recorded'])
    if facts.timings:
        total = sum(step['seconds'] for step in facts.timings)
        rows.append(['total run time', f'{duration(total)}: the {len(facts.timings)} steps of '
                                       '`run_me.sh` before this report (Appendix A)'])
    seeds = sorted({str(r.record.get('seed')) for r in facts.runs.values() if r.record})
    if seeds:
        rows.append(['seed', ', '.join(seeds)])
    xception = facts.xception
    if xception.record is not None:
        rows.append(['Xception initialisation',
                     'ImageNet weights' if xception.pretrained else
                     'RANDOM (no ImageNet weights: see Q17)' if xception.pretrained is False
                     else 'not recorded'])
    doc.table(['', 'this run'], rows)
    doc.table(HEADLINE_HEADER, headline_rows(facts),
              'every trained model: best validation accuracy, test accuracy at that epoch (training '
              'log), test ROC AUC of the fake score (metrics file), trainable parameters; COLLAPSED: '
              'the best or last epoch gave (almost) every validation image one class or did not move '
              'the training loss (collapse guard)',
              align='llrrrrr')
    notes = [data_caveat(facts), random_init_caveat(facts)]
    doc.para(*notes)
    doc.para('How to read this report: each chapter follows the assignment; every question has one '
             'entry with its answer, the code that implements it (signature taken from the code), and '
             'numbered figures and tables. Numbers are read from `out/`, figures from `figures/`; '
             'what a run did not produce is listed in Appendix B, never filled in.', small=True)


def appendix(doc: Document, facts: Facts) -> None:
    """Appendix A (run_me.sh's step timings) and B (every missing input, listed once)."""
    doc.heading(2, 'Appendix')
    doc.heading(3, 'A. Steps of run_me.sh', anchor='appendix-a')
    if facts.timings:
        rows = [[s['step'], f'{s["seconds"]:.1f}', s['peak_rss_mib']] for s in facts.timings]
        rows.append(['total', f'{sum(s["seconds"] for s in facts.timings):.1f}', ''])
        doc.table(['step', 'seconds', 'peak RSS [MiB]'], rows,
                  f'wall time and peak memory of each step, from `{runs.TIMINGS}`', align='lrr',
                  bold_last_row=True)
    else:
        doc.para(f'*No `{runs.TIMINGS}`.*')
    doc.heading(3, 'B. Missing inputs', anchor='appendix-b')
    unique = list(dict.fromkeys(facts.missing))
    doc.bullets([f'`{item}`' for item in unique]) if unique else doc.para('None: every input was found.')
    if facts.evaluation:
        cross_dataset(doc, facts.evaluation)


def cross_dataset(doc: Document, rows: list[dict]) -> None:
    """Appendix C: fmd.evaluate's rows (out/evaluation.json, when it was run), INVERTED rows warned."""
    from fmd.evaluate.tables import INVERTED, checkpoint_file_labels, data_labels, inverted_lines

    files = checkpoint_file_labels([row['checkpoint'] for row in rows])
    data = data_labels(rows)
    doc.heading(3, 'C. Cross-dataset evaluation (fmd.evaluate)', anchor='appendix-c')
    doc.table(['checkpoint', 'trained on', 'evaluated on', 'AUC [95% CI]', 'verdict'],
              [[files[row['checkpoint']], str(row.get('trained_on') or '–'), data[row['data']],
                f'{row["auc"]:.3f} [{row["auc_ci"][0]:.3f}, {row["auc_ci"][1]:.3f}]',
                INVERTED if row.get('inverted') else '–'] for row in rows],
              f'every row of `{runs.EVALUATION_JSON}`', align='lllrl')
    warnings = inverted_lines(rows)
    if warnings:
        doc.bullets([f'**{line}**' for line in warnings])
