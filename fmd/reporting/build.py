"""Assemble the report's Document: front page, one entry per question in order, the bonus, the appendix."""
from __future__ import annotations

from fmd.reporting.answers_bonus import answer_bonus
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.front_matter import appendix, front_page
from fmd.reporting.questions import BONUS_TITLE, CHAPTERS, QUESTIONS


def build_document(facts: Facts) -> Document:
    """Front page, the five chapters with one entry per question in order, the bonus, the appendix."""
    doc = Document()
    front_page(doc, facts)
    chapter = None
    for question in QUESTIONS:
        if question.chapter != chapter:
            chapter = question.chapter
            doc.heading(2, CHAPTERS[chapter])
        doc.heading(3, f'{question.label} {question.title}', anchor=question.label)
        question.answer(doc, facts, question)
    doc.heading(2, 'Bonus', anchor='Bonus')
    doc.heading(3, BONUS_TITLE)
    answer_bonus(doc, facts)
    appendix(doc, facts)
    return doc
