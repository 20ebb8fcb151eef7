"""The assignment's outline: what a question is, the chapter titles, and which run each question is about.

Kept apart from the question table (questions.py) so that the answer modules can name a Question
without importing the table that imports them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fmd.reporting.document import Document
    from fmd.reporting.facts import Facts


@dataclass(frozen=True)
class Question:
    """One question of the assignment and the function that writes its entry into the report."""

    number: int
    chapter: int
    title: str
    answer: Callable[[Document, Facts, Question], None]

    @property
    def label(self) -> str:
        """'Q7': the heading, anchor and figure/table label of the entry."""
        return f'Q{self.number}'


CHAPTERS = {
    1: 'Chapter 1: Building a dataset and a trainer; SimpleNet on face-swap fakes',
    2: 'Chapter 2: SimpleNet on synthetic (GAN-generated) faces',
    3: 'Chapter 3: Fine-tuning Xception on synthetic faces',
    4: 'Chapter 4: Saliency maps',
    5: 'Chapter 5: Grad-CAM',
}

# Which training run (dataset, model) a question about runs refers to.
QUESTION_RUNS = {
    6: ('fakes_dataset', 'SimpleNet'), 7: ('fakes_dataset', 'SimpleNet'),
    8: ('fakes_dataset', 'SimpleNet'), 9: ('fakes_dataset', 'SimpleNet'),
    10: ('fakes_dataset', 'SimpleNet'), 11: ('fakes_dataset', 'SimpleNet'),
    12: ('fakes_dataset', 'SimpleNet'),
    13: ('synthetic_dataset', 'SimpleNet'), 14: ('synthetic_dataset', 'SimpleNet'),
    15: ('synthetic_dataset', 'SimpleNet'), 16: ('synthetic_dataset', 'SimpleNet'),
    25: ('synthetic_dataset', 'XceptionBased'), 26: ('synthetic_dataset', 'XceptionBased'),
    27: ('synthetic_dataset', 'XceptionBased'),
    30: ('fakes_dataset', 'SimpleNet'), 31: ('synthetic_dataset', 'XceptionBased'),
}

BONUS_TITLE = "A detector with at most 1% of SimpleNet's parameters"
