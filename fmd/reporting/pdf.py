"""Render a Document to the typeset PDF: headings kept with what follows, each block by its drawer."""
from __future__ import annotations

from pathlib import Path

from fpdf.enums import XPos, YPos

from fmd.core.atomic_io import atomic_write
from fmd.reporting.document import (
    Block,
    Bullets,
    Code,
    Document,
    Figure,
    Heading,
    PageBreak,
    Paragraph,
    Table,
)
from fmd.reporting.pdf_figure import draw_figure, figure_height
from fmd.reporting.pdf_page import ACCENT, MARGIN, ReportPDF, plain
from fmd.reporting.pdf_table import draw_table
from fmd.reporting.pdf_text import draw_bullets, draw_code, draw_paragraph


def estimated_height(pdf: ReportPDF, block: Block | None) -> float:
    """Roughly how much of `block` must follow a heading on the same page."""
    if isinstance(block, Figure):
        return figure_height(pdf, block) + 10
    if isinstance(block, Table):
        return 7.0 * min(len(block.rows) + 1, 4) + (10 if block.caption else 0)
    if isinstance(block, Code):
        return min(4.2 * (block.text.count('\n') + 1) + 4, 40)
    if isinstance(block, Paragraph | Bullets):
        return 16.0
    return 0.0


def draw_heading(pdf: ReportPDF, block: Heading, following: Block | None = None) -> None:
    """A heading on a new page (chapters) or with room for what follows; records its anchor."""
    sizes = {1: 20.0, 2: 15.0, 3: 11.5}
    size = sizes.get(block.level, 11.0)
    if block.level == 2 and pdf.get_y() > MARGIN + 1:
        pdf.add_page()
    elif pdf.room < 14 + estimated_height(pdf, following):
        pdf.add_page()  # never a heading alone at the foot of a page
    if block.level == 3 and pdf.get_y() > MARGIN + 1:
        pdf.ln(3)
    pdf.start_section(plain(block.text), level=max(0, block.level - 2), strict=False)
    if block.anchor:
        pdf.anchors[block.anchor] = pdf.page_no()
    pdf.set_text_color(*ACCENT)
    pdf.set_font('Sans', 'B', size)
    pdf.multi_cell(0, size * 0.5, plain(block.text), align='L', new_x=XPos.LMARGIN,
                   new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    if block.level == 2:
        pdf.set_draw_color(*ACCENT)
        pdf.set_line_width(0.4)
        pdf.line(MARGIN, pdf.get_y() + 1, pdf.w - MARGIN, pdf.get_y() + 1)
        pdf.set_line_width(0.2)
        pdf.ln(4)
    else:
        pdf.ln(1.5)


RENDERERS = {Paragraph: draw_paragraph, Bullets: draw_bullets, Code: draw_code,
             Table: draw_table, Figure: draw_figure}


def to_pdf(document: Document, path: Path, title: str) -> dict[str, int]:
    """Write the PDF; returns {'pages': N, anchor: page, ...} (e.g. 'Q7': 4)."""
    pdf = ReportPDF(title)
    pdf.add_page()
    for index, block in enumerate(document.blocks):
        if isinstance(block, PageBreak):
            pdf.add_page()
        elif isinstance(block, Heading):
            following = document.blocks[index + 1] if index + 1 < len(document.blocks) else None
            draw_heading(pdf, block, following)
        else:
            RENDERERS[type(block)](pdf, block)
    atomic_write(path, lambda handle: handle.write(bytes(pdf.output())))  # never a half-written PDF
    return {'pages': pdf.page_no(), **pdf.anchors}
