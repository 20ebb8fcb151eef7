"""Chapter 1, Q1-Q3: FacesDataset's __getitem__ and __len__, and the sample figure."""
from __future__ import annotations

from fmd.core import runs
from fmd.reporting.chapters import Question
from fmd.reporting.code_reference import code_reference
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.formatting import count
from fmd.reporting.helpers import add_figure
from fmd.reporting.prose import prose


def answer_getitem(doc: Document, facts: Facts, question: Question) -> None:
    """Q1: what `dataset[index]` returns and how, quoting FacesDataset.__getitem__."""
    from faces_dataset import FacesDataset

    code_reference(doc, FacesDataset.__getitem__)
    doc.para(prose('getitem'))


def answer_len(doc: Document, facts: Facts, question: Question) -> None:
    """Q2: what len() counts, and every split's size as found in the data folder."""
    from faces_dataset import FacesDataset

    code_reference(doc, FacesDataset.__len__)
    doc.para('The length is the number of real images plus the number of fake images, counted once '
             'when the dataset is built (only image files: png, jpg, jpeg, bmp, webp).')
    if not facts.split_counts:
        doc.para('*The data folder of this run was not found when the report was written, so the split '
                 'sizes cannot be listed here.*')
        return
    rows = []
    for name, parts in facts.split_counts.items():
        for part, (n_real, n_fake) in parts.items():
            rows.append([name, part, count(n_real), count(n_fake), count(n_real + n_fake)])
    root = next(iter(facts.data['roots']))
    doc.table(['dataset', 'split', 'real', 'fake', 'len(dataset)'], rows,
              f'Size of every split, counted in `{root}` when the report was written',
              question.label, align='llrrr')


def answer_samples(doc: Document, facts: Facts, question: Question) -> None:
    """Q3: the real/fake sample figure, described for demo or course data."""
    code_reference(doc, 'plot_samples_of_faces_datasets.py:main')
    add_figure(doc, facts, [runs.SAMPLES_FIGURE],
               'a real (left) and a fake (right) training image of each dataset '
               '(top: fakes_dataset, bottom: synthetic_dataset), shown without augmentation',
               question.label, width=0.62)
    if facts.demo:
        doc.para(prose('samples.demo'))
    else:
        doc.para(prose('samples.course'))
