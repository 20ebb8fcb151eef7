"""fmd.reporting on hand-made run files: every question in order, numbers equal to their JSON, the PDF."""
from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pypdfium2
import pytest
from PIL import Image

from faces_dataset import FacesDataset
from fmd.core import runs
from fmd.reporting import cli as report
from fmd.reporting.code_reference import signature_text
from fmd.reporting.questions import CHAPTERS, QUESTIONS

# Values a training run could not produce by accident, so a wrong lookup shows.
VAL_ACC = {'SimpleNet': [61.234, 83.456, 82.0], 'XceptionBased': [48.125, 52.375],
           'BonusNet': [90.5, 97.125, 97.125]}
TEST_ACC = {'SimpleNet': [60.111, 84.987, 80.0], 'XceptionBased': [47.5, 51.625],
            'BonusNet': [91.0, 96.875, 99.0]}
PARAMS = {'SimpleNet': 16_901_762, 'XceptionBased': 23_128_786, 'BonusNet': 159_162}
N_TEST = {'fakes_dataset': (14, 7), 'synthetic_dataset': (10, 10)}
AUC = {('fakes_dataset', 'SimpleNet'): 0.8768, ('synthetic_dataset', 'SimpleNet'): 0.5432,
       ('synthetic_dataset', 'XceptionBased'): 0.6543, ('fakes_dataset', 'BonusNet'): 0.9912}


# The figures each analysis of runs.py writes.
ANALYSIS_FIGURES = {'plots': ('losses_plot', 'accuracies_plot'), 'numerical': ('roc_curve', 'det_curve'),
                    'saliency': ('saliency_maps_and_images_pairs', 'mean_saliency_maps'),
                    'grad_cam': ('Real_Image_grad_cam', 'Fake_Image_grad_cam'), 'bonus': ()}


def figures_of(analyses: tuple[str, ...]) -> list[str]:
    return [kind for analysis in analyses for kind in ANALYSIS_FIGURES[analysis]]


def png(path: Path, size: tuple[int, int] = (120, 90), colour: tuple[int, int, int] = (40, 90, 160)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new('RGB', size, (255, 255, 255))
    image.paste(Image.new('RGB', (size[0] // 2, size[1] // 2), colour), (size[0] // 4, size[1] // 4))
    image.save(path)


def make_run_files(root: Path) -> None:
    """out/, figures/, checkpoints/ and a demo data root as a finished run_me.sh leaves them."""
    data = root / 'demo_data'
    (data / 'MANIFEST.json').parent.mkdir(parents=True)
    (data / 'MANIFEST.json').write_text(json.dumps({'generator': 'make_demo_datasets.py',
                                                    'scale': 'quick', 'seed': 0}))
    for dataset, (n_real, n_fake) in N_TEST.items():
        for part in ('train', 'val', 'test'):
            for label, n in (('real', n_real), ('fake', n_fake)):
                folder = data / dataset / part / label
                folder.mkdir(parents=True)
                for index in range(n):
                    (folder / f'{index}.png').touch()
    seed_colour = 0
    for run in runs.ASSIGNMENT_RUNS:
        val, test = VAL_ACC[run.model], TEST_ACC[run.model]
        record = {'model': run.model, 'dataset': run.dataset,
                  'optimizer': {'name': 'Adam', 'params': {'lr': 0.001}},
                  'train_loss': [0.7 - 0.1 * i for i in range(len(val))],
                  'train_acc': [55.0 + 10 * i for i in range(len(val))],
                  'val_loss': [0.65 - 0.05 * i for i in range(len(val))], 'val_acc': val,
                  'test_loss': [0.66 - 0.05 * i for i in range(len(val))], 'test_acc': test,
                  'seed': 0, 'batch_size': 32, 'epochs': len(val), 'nof_params': PARAMS[run.model],
                  'device': 'cpu', 'data_root': str(data), 'epoch_seconds': [10.0] * len(val),
                  'best_epoch': val.index(max(val)) + 1}
        if run.model == 'XceptionBased':
            record.update(pretrained=False, pretrained_source=None)
        older = {**record, 'val_acc': [1.0] * len(val)}  # an earlier run: the report reads the last
        run.log.parent.mkdir(parents=True, exist_ok=True)
        run.log.write_text(json.dumps([older, record]))
        n_real, n_fake = N_TEST[run.dataset]
        second = AUC[(run.dataset, run.model)]
        run.metrics.write_text(json.dumps({
            'model': run.model, 'dataset': run.dataset, 'n_params': PARAMS[run.model],
            'n_real': n_real, 'n_fake': n_fake, 'fake_to_real_ratio': n_fake / n_real,
            'accuracy_at_argmax_percent': test[val.index(max(val))],
            'first_score': {'roc_auc': round(1.0123 - second, 4)},
            'second_score': {'roc_auc': second, 'average_precision': 0.7777, 'eer': 0.2345},
            'softmax_fake_probability': {'roc_auc': second - 0.01, 'average_precision': 0.7,
                                         'eer': 0.25}}))
        for kind in figures_of(run.analyses):
            seed_colour += 37
            png(run.figure(kind), colour=(seed_colour % 255, 80, 140))
        if 'saliency' in run.analyses:
            stats = {name: {'centre_share': share, 'centre_area_share': 0.25, 'peak_to_mean': 3.0,
                            'lattice': {'32': {'share': 0.9, 'flat_map_share': 0.0156}}}
                     for name, share in (('real', 0.31), ('fake', 0.42))}
            runs.saliency_stats_path(run.dataset, run.model).write_text(json.dumps(stats))
    png(runs.SAMPLES_FIGURE, size=(100, 100))
    runs.BONUS_RESULTS.write_text(json.dumps({'test_accuracy': 96.875, 'roc_auc': 0.9912,
                                              'nof_parameters': 159_162, 'n_test': 21}))
    runs.BONUS_CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    runs.BONUS_CHECKPOINT.write_bytes(b'not read by the report')
    runs.TIMINGS.write_text('step\tseconds\tpeak_rss_mib\ndemo-data\t10.5\t50\n'
                            'train-fakes_dataset-SimpleNet\t100.25\t1200\n')


@pytest.fixture(scope='module')
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with hand-made run files and the report written from them."""
    root = tmp_path_factory.mktemp('run')
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        make_run_files(root)
        report.main(['--out-dir', 'report'])
    return root


def headings(markdown: str) -> list[str]:
    return re.findall(r'^(#{1,3} .+)$', markdown, re.MULTILINE)


def test_every_question_in_order_then_the_bonus(built: Path) -> None:
    lines = headings((built / 'report' / 'report.md').read_text())
    numbers = [int(m.group(1)) for h in lines if (m := re.match(r'### Q(\d+) \S', h))]
    assert numbers == list(range(1, 36))
    assert [q.number for q in QUESTIONS] == numbers
    chapters = [h for h in lines if h.startswith('## ')]
    assert chapters[:5] == [f'## {CHAPTERS[c]}' for c in range(1, 6)]
    assert chapters[5] == '## Bonus'
    assert lines.index('## Bonus') > lines.index(next(h for h in lines if h.startswith('### Q35 ')))
    # Each question sits in its own chapter.
    for question in QUESTIONS:
        heading = next(h for h in lines if h.startswith(f'### {question.label} '))
        chapter = [h for h in lines[:lines.index(heading)] if h.startswith('## ')][-1]
        assert chapter == f'## {CHAPTERS[question.chapter]}'


def headline(markdown: str) -> list[list[str]]:
    """Rows of the first table after the 'Table 1' caption."""
    after = markdown[markdown.index('*Table 1:'):]
    rows = [line for line in after.splitlines() if line.startswith('|')]
    table = []
    for line in rows[2:]:
        table.append([cell.strip() for cell in line.strip('|').split('|')])
        if len(table) == len(runs.ASSIGNMENT_RUNS):
            break
    return table


def test_headline_numbers_equal_the_json_they_come_from(built: Path) -> None:
    rows = headline((built / 'report' / 'report.md').read_text())
    assert len(rows) == len(runs.ASSIGNMENT_RUNS)
    for row, run in zip(rows, runs.ASSIGNMENT_RUNS, strict=True):
        model, dataset, epochs, best_val, test_acc, roc_auc, params = row
        record = json.loads((built / run.log).read_text())[-1]
        metrics = json.loads((built / run.metrics).read_text())
        assert model.split()[0] == run.model and dataset == run.dataset
        assert ('random init' in model) == (record.get('pretrained') is False)
        assert int(epochs) == len(record['val_acc'])
        value, epoch = re.fullmatch(r'([\d.]+)% \(ep\. (\d+)\)', best_val).groups()
        assert int(epoch) == record['best_epoch']
        assert float(value) == round(record['val_acc'][record['best_epoch'] - 1], 2)
        assert float(test_acc.rstrip('%')) == round(record['test_acc'][record['best_epoch'] - 1], 2)
        assert float(roc_auc) == round(metrics['second_score']['roc_auc'], 3)
        assert int(params.replace(',', '')) == record['nof_params']


def test_numbers_in_the_answers_come_from_the_files(built: Path) -> None:
    markdown = (built / 'report' / 'report.md').read_text()
    q8 = markdown[markdown.index('### Q8 '):markdown.index('### Q9 ')]
    assert 'Best validation accuracy: 83.46%, at epoch 2. Test accuracy at that epoch: 84.99%.' in q8
    q9 = markdown[markdown.index('### Q9 '):markdown.index('### Q10 ')]
    assert '| fakes_dataset | 14 | 7 | 0.500 | 33.33% |' in q9
    q11 = markdown[markdown.index('### Q11 '):markdown.index('### Q12 ')]
    assert '| second output (fake logit) | 0.877 |' in q11 and 'under** the diagonal' in q11
    q21 = markdown[markdown.index('### Q21 '):markdown.index('### Q22 ')]
    assert '**2048 features**' in q21 and '2048×8×8' in q21
    q24 = markdown[markdown.index('### Q24 '):markdown.index('### Q25 ')]
    assert '| difference | +272,834 |' in q24
    bonus = markdown[markdown.index('## Bonus'):]
    assert '| BonusNet (`checkpoints/bonus_model.pt`) | 96.88% | 0.991 | 159,162 |' in bonus
    assert 'within the limit' in bonus
    front = markdown[:markdown.index('## Chapter 1')]
    assert 'DEMO data' in front and 'total run time | 1 min 51 s' in front
    assert 'RANDOM' in front and 'randomly initialised' in front
    summary = json.loads((built / 'report' / 'summary.json').read_text())
    assert summary['missing'] == []
    assert summary['questions'] == [f'Q{n}' for n in range(1, 36)] + ['Bonus']


def test_code_questions_quote_the_signature_from_the_code(built: Path) -> None:
    markdown = (built / 'report' / 'report.md').read_text()
    q1 = markdown[markdown.index('### Q1 '):markdown.index('### Q2 ')]
    line = inspect.getsourcelines(FacesDataset.__getitem__)[1]
    assert f'# faces_dataset.py, line {line}\ndef __getitem__(self, index: int)' in q1
    assert signature_text(FacesDataset.__getitem__) == \
        '__getitem__(self, index: int) -> tuple[torch.Tensor, int]'
    for label in ('Q4', 'Q5', 'Q10', 'Q23', 'Q28', 'Q33'):
        entry = markdown[markdown.index(f'### {label} '):]
        assert '```python\n# ' in entry[:entry.index('\n### ')], label


def test_figures_are_numbered_with_their_question(built: Path) -> None:
    markdown = (built / 'report' / 'report.md').read_text()
    captions = re.findall(r'^\*Figure (\d+) \((Q\d+|Bonus)\): ', markdown, re.MULTILINE)
    assert [int(n) for n, _ in captions] == list(range(1, len(captions) + 1))
    assert {'Q3', 'Q7', 'Q10', 'Q30', 'Q34', 'Bonus'} <= {q for _, q in captions}
    written = sorted((built / 'figures').glob('*.png'))
    assert len(written) == 1 + sum(len(figures_of(run.analyses)) for run in runs.ASSIGNMENT_RUNS)
    for path in written:  # every figure the chain writes is shown, under some question
        assert f'figures/{path.name}' in markdown, path.name


def test_pdf_pages_questions_and_a_non_blank_first_page(built: Path, tmp_path: Path) -> None:
    summary = json.loads((built / 'report' / 'summary.json').read_text())
    pdf = pypdfium2.PdfDocument(str(built / 'report' / 'report.pdf'))
    try:
        assert len(pdf) == summary['pdf']['pages']
        anchors = summary['pdf']['anchors']
        pages = [anchors[f'Q{n}'] for n in range(1, 36)] + [anchors['Bonus']]
        assert pages == sorted(pages) and pages[0] == 2 and pages[-1] <= len(pdf)
        # Every chapter starts on a new page; each question's page shows its heading.
        firsts = [anchors[f'Q{min(q.number for q in QUESTIONS if q.chapter == c)}'] for c in CHAPTERS]
        assert firsts == sorted(set(firsts))
        for number in (1, 11, 21, 35):
            text = pdf[anchors[f'Q{number}'] - 1].get_textpage().get_text_range()
            assert f'Q{number} ' in text
        first_text = pdf[0].get_textpage().get_text_range()
        assert 'Facial Manipulation Detection' in first_text and 'page 1 of' in first_text
        image = pdf[0].render(scale=1).to_pil()
    finally:
        pdf.close()
    image.save(tmp_path / 'page-1.png')
    pixels = np.asarray(Image.open(tmp_path / 'page-1.png').convert('L'), dtype=np.float32)
    assert pixels.shape[0] > pixels.shape[1] > 500  # portrait A4
    assert (pixels < 128).mean() > 0.01 and pixels.std() > 10  # text on it, not a blank page


def test_missing_inputs_are_listed_not_invented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    report.main(['--out-dir', 'report'])
    markdown = (tmp_path / 'report' / 'report.md').read_text()
    numbers = [int(m) for m in re.findall(r'^### Q(\d+) ', markdown, re.MULTILINE)]
    assert numbers == list(range(1, 36)) and '\n## Bonus\n' in markdown
    assert '| SimpleNet | fakes_dataset | missing |' in markdown
    summary = json.loads((tmp_path / 'report' / 'summary.json').read_text())
    assert 'out/fakes_dataset_SimpleNet_Adam.json (not found)' in summary['missing']
    assert 'figures/datasets_samples.png (not found)' in summary['missing']
    assert '`out/bonus_main.json (not found)`' in markdown[markdown.index('B. Missing inputs'):]
    assert (tmp_path / 'report' / 'report.pdf').read_bytes()[:4] == b'%PDF'


def test_initialisation_note_follows_the_logged_pretrained_flag(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert runs.initialisation_note('synthetic_dataset', 'XceptionBased') == ''  # no log yet
    log = runs.log_path('synthetic_dataset', 'XceptionBased')
    log.parent.mkdir()
    for flag, note in ((True, ''), (False, ' (RANDOM INIT: no ImageNet weights)')):
        log.write_text(json.dumps([{'pretrained': not flag}, {'pretrained': flag}]))
        assert runs.initialisation_note('synthetic_dataset', 'XceptionBased') == note
    log.write_text('{not json')
    assert runs.logged_pretrained('synthetic_dataset', 'XceptionBased') is None
