"""The pieces of fmd.reporting on their own: formatting, the question table, single answers on hand-made
facts, the Markdown writer, code quoting, and the command line (--out, --help)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fmd.core import runs
from fmd.reporting import cli
from fmd.reporting.answers_metrics import answer_proportion
from fmd.reporting.answers_saliency import strongest_lattice
from fmd.reporting.chance import chance_figures, near_chance
from fmd.reporting.code_reference import signature_text
from fmd.reporting.document import Document, Paragraph, Table, to_markdown
from fmd.reporting.facts import Facts, RunFacts
from fmd.reporting.formatting import auc, count, duration, pct
from fmd.reporting.prose import PROSE_FILE, prose, sections
from fmd.reporting.questions import QUESTIONS, chapter_of
from helpers import PROJECT_ROOT, script_env


def test_numbers_are_formatted_as_the_report_prints_them() -> None:
    assert (pct(86.333), pct(100.0), pct(None)) == ('86.33%', '100.00%', 'n/a')
    assert (auc(0.87684), auc(0.5), auc(float('nan')), auc(None)) == ('0.877', '0.500', 'n/a', 'n/a')
    assert (count(16_901_762), count(0), count(None)) == ('16,901,762', '0', 'n/a')
    assert duration(7) == '7 s'
    assert duration(125) == '2 min 5 s'
    assert duration(59.6) == '1 min 0 s'  # rounded to whole seconds first
    assert duration(3725) == '1 h 2 min 5 s'


def test_the_questions_are_numbered_in_order_within_their_chapters() -> None:
    assert [q.number for q in QUESTIONS] == list(range(1, 36))
    assert [q.chapter for q in QUESTIONS] == [1] * 12 + [2] * 4 + [3] * 11 + [4] * 5 + [5] * 3
    assert (chapter_of(12), chapter_of(13), chapter_of(35)) == (1, 2, 5)
    assert QUESTIONS[8].label == 'Q9' and QUESTIONS[8].answer is answer_proportion
    assert all(q.answer.__module__.startswith('fmd.reporting.answers_') for q in QUESTIONS)


def hand_made_facts(n_real: int, n_fake: int) -> Facts:
    """Only SimpleNet on fakes_dataset: a best epoch (2) and a metrics file with the class counts."""
    run = next(r for r in runs.ASSIGNMENT_RUNS if (r.dataset, r.model) == ('fakes_dataset', 'SimpleNet'))
    record = {'val_acc': [60.0, 83.456], 'test_acc': [55.0, 84.987], 'best_epoch': 2}
    metrics = {'n_real': n_real, 'n_fake': n_fake, 'second_score': {'roc_auc': 0.9}}
    return Facts(runs={(run.dataset, run.model): RunFacts(run, record, metrics)}, models=None, data={},
                 split_counts={}, timings=[], bonus=None, saliency={})


def test_the_proportion_answer_on_an_unbalanced_test_set() -> None:
    doc = Document()
    answer_proportion(doc, hand_made_facts(14, 7), QUESTIONS[8])
    table, first, second = doc.blocks
    assert isinstance(table, Table) and table.label == 'Table 1 (Q9)'
    assert table.rows == [['fakes_dataset', '14', '7', '0.500', '33.33%']]
    assert isinstance(first, Paragraph) and first.text == (
        'There are 7 fake and 14 real test images, fake:real = 0.500 (about 1:2.0). A classifier that '
        'always answers "real" already reaches 66.67% accuracy, so accuracy flatters a detector on this '
        'set: the ROC and DET curves (Q10-Q12) do not depend on the class ratio and are the fairer measure.')
    assert second.text == ('SimpleNet on fakes_dataset reached 84.99% test accuracy at its best epoch, '
                           'against the 66.67% of always answering "real".')


def test_the_proportion_answer_on_a_balanced_test_set() -> None:
    doc = Document()
    answer_proportion(doc, hand_made_facts(10, 10), QUESTIONS[8])
    assert doc.blocks[1].text == ('The test set is balanced (10 fake, 10 real), so a guess scores 50% '
                                  'and accuracy is a fair summary.')


def test_chance_figures_by_hand() -> None:
    run = hand_made_facts(10, 10).runs[('fakes_dataset', 'SimpleNet')]
    figures = chance_figures(run)
    # 84.987% of 20 is 17 correct; P(X >= 17) for X ~ Binomial(20, 1/2) is (1140 + 190 + 20 + 1) / 2**20.
    assert (figures['n'], figures['baseline'], figures['correct']) == (20, 50.0, 17)
    assert figures['p_value'] == pytest.approx(1351 / 2 ** 20, rel=1e-9)
    sd = (21 / 1200) ** 0.5  # Mann-Whitney: sqrt((n_real + n_fake + 1) / (12 n_real n_fake))
    assert figures['auc_band'] == pytest.approx((0.5 - 1.96 * sd, 0.5 + 1.96 * sd))
    assert near_chance(run) is False  # AUC 0.9 lies above the band's 0.759
    assert chance_figures(RunFacts(run.run, None, run.metrics)) is None


def test_every_prose_key_an_answer_asks_for_is_in_prose_md_and_every_section_is_used() -> None:
    asked = {key for path in PROSE_FILE.parent.glob('answers_*.py')
             for key in re.findall(r"prose\('([^']+)'\)", path.read_text())}
    assert asked == set(sections()) and len(asked) == 22
    assert prose('saliency.border').startswith("Part of the lean to the centre is the architecture's own: ")
    assert all('  ' not in text and '\n' not in text for text in sections().values())


def test_the_strongest_lattice_is_the_shortest_period_near_the_top_share() -> None:
    lattice = {'4': {'share': 0.04, 'flat_map_share': 0.001},  # too weak to count
               '8': {'share': 0.30, 'flat_map_share': 0.010},
               '16': {'share': 0.50, 'flat_map_share': 0.020},
               '32': {'share': 0.55, 'flat_map_share': 0.010}}
    assert strongest_lattice({'fake': {'lattice': lattice}}) == (16, 0.50, 0.020)  # 0.50 >= 0.8 * 0.55
    assert strongest_lattice({'fake': {'lattice': {'8': {'share': 0.3, 'flat_map_share': 0.1}}}}) is None


def quoted(alpha: int, beta: str = 'x', *args: int, gamma: float = 1.0, **kw: str) -> None:
    """A function to quote."""


def test_a_signature_is_quoted_on_one_line_or_packed_onto_continuation_lines() -> None:
    one_line = "quoted(alpha: int, beta: str = 'x', *args: int, gamma: float = 1.0, **kw: str) -> None"
    assert len(one_line) == 86 and signature_text(quoted, width=86) == one_line
    assert signature_text(quoted, width=40) == (
        'quoted(\n'
        "        alpha: int, beta: str = 'x',\n"
        '        *args: int, gamma: float = 1.0,\n'
        '        **kw: str) -> None')
    # At the default 82 the parameters fit one continuation line (78), but not with ') -> None'.
    assert signature_text(quoted) == f'quoted(\n        {one_line[7:-9]}\n) -> None'


def test_markdown_of_a_small_document(tmp_path: Path) -> None:
    doc = Document()
    doc.heading(3, 'Q1 Title', anchor='Q1')
    doc.para('One sentence.', '', 'Two **bold**.')
    doc.table(['a', 'b|c'], [['1', '2']], 'a caption', 'Q1', align='lr')
    doc.figure(tmp_path / 'figures' / 'x.png', 'a figure', 'Q1')
    assert to_markdown(doc, tmp_path / 'report') == (
        '### Q1 Title\n\n'
        'One sentence. Two **bold**.\n\n'
        '*Table 1 (Q1): a caption*\n\n'
        '| a | b\\|c |\n|---|---:|\n| 1 | 2 |\n\n'
        '![Figure 1 (Q1): x.png](../figures/x.png)\n\n'
        f'*Figure 1 (Q1): a figure* (`{(tmp_path / "figures" / "x.png").as_posix()}`)\n')


def test_out_names_the_folder_and_out_dir_still_works() -> None:
    assert cli.parse_args(['--out', 'elsewhere']).out == 'elsewhere'
    assert cli.parse_args(['--out-dir', 'older']).out == 'older'
    assert cli.parse_args([]).out == 'report'


def test_out_dir_receives_the_report_and_nothing_half_written(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    written = cli.main(['--out', 'elsewhere/deeper'])
    folder = tmp_path / 'elsewhere' / 'deeper'
    assert written == Path('elsewhere/deeper/report.md') and written.read_text().startswith(
        '# Facial Manipulation Detection\n')
    assert sorted(p.name for p in folder.iterdir()) == ['report.md', 'report.pdf', 'summary.json']
    assert not (tmp_path / 'report').exists()


def test_help_is_quick_to_reach_and_names_out() -> None:
    result = subprocess.run([sys.executable, '-m', 'fmd.reporting', '--help'], cwd=PROJECT_ROOT,
                            env=script_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert '--out DIR, --out-dir DIR' in result.stdout


def test_the_appendix_lists_fmd_evaluate_rows_and_warns_of_an_inverted_one(tmp_path: Path) -> None:
    from fmd.reporting.front_matter import cross_dataset

    common = {'checkpoint': 'runs/a.pt', 'trained_on': 'dfdc+self-blend', 'split': 'test'}
    rows = [{**common, 'data': 'x/swaps', 'data_name': 'swaps', 'auc': 0.3, 'auc_ci': [0.25, 0.36],
             'inverted': True},
            {**common, 'data': 'x/faces', 'data_name': 'faces', 'auc': 0.7, 'auc_ci': [0.62, 0.78],
             'inverted': False}]
    doc = Document()
    cross_dataset(doc, rows)
    text = to_markdown(doc, tmp_path)
    assert '| a.pt | dfdc+self-blend | swaps:test | 0.300 [0.250, 0.360] | INVERTED |' in text
    assert '| a.pt | dfdc+self-blend | faces:test | 0.700 [0.620, 0.780] | – |' in text
    assert '- **INVERTED: a.pt on swaps:test: AUC 0.300 [0.250, 0.360]: the detector ranks these fakes as ' \
           'more real than the reals' in text
