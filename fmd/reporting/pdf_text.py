"""Draw the text blocks of the PDF: paragraphs, bulleted lists, code boxes and figure/table captions."""
from __future__ import annotations

from fpdf.enums import MethodReturnValue, XPos, YPos

from fmd.reporting.document import Bullets, Code, Paragraph
from fmd.reporting.pdf_page import BODY_SIZE, CODE_FILL, CODE_SIZE, LINE, MARGIN, SMALL_SIZE, ReportPDF


def draw_paragraph(pdf: ReportPDF, block: Paragraph) -> None:
    """A paragraph of inline markup at body or small size."""
    size = SMALL_SIZE if block.small else BODY_SIZE
    pdf.set_x(pdf.l_margin)
    pdf.inline(block.text, size=size, line=size * 0.47)
    pdf.ln(size * 0.47)
    pdf.ln(2.2)


def draw_bullets(pdf: ReportPDF, block: Bullets) -> None:
    """A bulleted list, each item indented after its bullet."""
    indent = 5.0
    for item in block.items:
        pdf.set_x(pdf.l_margin)
        pdf.set_font('Sans', '', BODY_SIZE)
        pdf.cell(indent, LINE, '•')
        old_margin = pdf.l_margin
        pdf.set_left_margin(old_margin + indent)
        pdf.inline(item)
        pdf.set_left_margin(old_margin)
        pdf.ln(LINE)
        pdf.ln(0.8)
    pdf.ln(1.6)


def draw_code(pdf: ReportPDF, block: Code) -> None:
    """A grey box of monospaced text, kept on one page when it fits on one."""
    pdf.set_font('Mono', '', CODE_SIZE)
    pdf.set_fill_color(*CODE_FILL)
    pdf.set_x(pdf.l_margin)
    options = {'fill': True, 'align': 'L', 'padding': (1.5, 2.5)}
    height = pdf.multi_cell(0, 4.2, block.text, dry_run=True, output=MethodReturnValue.HEIGHT,
                            **options)
    if pdf.room < height < pdf.page_break_trigger - MARGIN - pdf.t_margin:
        pdf.add_page()
    pdf.multi_cell(0, 4.2, block.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT, **options)
    pdf.ln(2.5)


def draw_caption(pdf: ReportPDF, label: str, caption: str) -> None:
    """'Figure 3 (Q7): ' in bold, then the caption's inline markup, small."""
    pdf.set_x(pdf.l_margin)
    pdf.set_font('Sans', 'B', SMALL_SIZE)
    pdf.write(4.3, f'{label}: ')
    pdf.inline(caption, size=SMALL_SIZE, line=4.3, style='')
    pdf.ln(4.3)
