"""Draw a table in the PDF: caption, bold heading row, shaded rows, columns sized to their text."""
from __future__ import annotations

from fpdf import FontFace
from fpdf.enums import TableCellFillMode

from fmd.reporting.document import Table
from fmd.reporting.pdf_page import RULE_GREY, SMALL_SIZE, TABLE_HEAD_FILL, TABLE_ROW_FILL, ReportPDF, plain
from fmd.reporting.pdf_text import draw_caption


def draw_table(pdf: ReportPDF, block: Table) -> None:
    """Caption, then the rows with a bold shaded heading row; short tables kept on one page."""
    n = len(block.header)
    aligns = (block.align or 'l' * n).ljust(n, 'l')
    align_names = {'l': 'LEFT', 'r': 'RIGHT', 'c': 'CENTER'}
    rows = [block.header, *block.rows]
    widths = block.widths or column_widths(pdf, rows)
    # Keep short tables (and a caption with the start of a long one) on one page.
    estimated = 7.5 * min(len(rows), 8) + (10 if block.caption else 0)
    if pdf.room < estimated:
        pdf.add_page()
    if block.caption:
        draw_caption(pdf, block.label, block.caption)
        pdf.ln(1)
    pdf.set_font('Sans', '', SMALL_SIZE)
    pdf.set_draw_color(*RULE_GREY)
    with pdf.table(col_widths=widths, text_align=tuple(align_names[a] for a in aligns),
                   headings_style=FontFace(emphasis='BOLD', fill_color=TABLE_HEAD_FILL),
                   cell_fill_color=TABLE_ROW_FILL, cell_fill_mode=TableCellFillMode.ROWS,
                   line_height=4.4, padding=(1.0, 1.6), width=pdf.text_width,
                   borders_layout='HORIZONTAL_LINES', align='LEFT') as table:
        for index, values in enumerate(rows):
            bold = block.bold_last_row and index == len(rows) - 1
            row = table.row(style=FontFace(emphasis='BOLD') if bold else None)
            for value in values:
                row.cell(plain(value))
    pdf.ln(4)


def column_widths(pdf: ReportPDF, rows: list[list[str]]) -> tuple[float, ...]:
    """Column widths: every column at least as wide as its longest word, the rest of the text
    width shared in proportion to how much more each column would need to fit on one line."""
    pad = 4.4  # left and right cell padding, and a little room
    columns = list(zip(*rows, strict=True))
    natural, minimal = [], []
    for column in columns:
        texts = [plain(c) for c in column]
        pdf.set_font('Sans', 'B', SMALL_SIZE)  # the heading row is bold: measure it so
        head_words = [pdf.get_string_width(w) for w in texts[0].split()] or [0.0]
        head_whole = pdf.get_string_width(texts[0])
        pdf.set_font('Sans', '', SMALL_SIZE)
        body_words = [pdf.get_string_width(w) for t in texts[1:] for w in t.split()] or [0.0]
        body_whole = [pdf.get_string_width(t) for t in texts[1:]] or [0.0]
        minimal.append(max(max(head_words), max(body_words)) + pad)
        # Headings may wrap onto two lines; body cells should not.
        natural.append(max(min(head_whole, max(head_words) * 1.6), max(body_whole)) + pad)
    available = pdf.text_width
    if sum(natural) <= available:
        return tuple(natural)
    # Greedy, smallest need first: short cells (numbers) get all they need and stay on one line;
    # the column that needs most (long text) takes what is left and wraps.
    widths = list(minimal)
    spare = max(available - sum(minimal), 0.0)
    wants = [max(n - m, 0.0) for n, m in zip(natural, minimal, strict=True)]
    for index in sorted(range(len(widths)), key=lambda i: wants[i]):
        give = min(wants[index], spare)
        widths[index] += give
        spare -= give
    widths[max(range(len(widths)), key=lambda i: wants[i])] += spare
    return tuple(widths)
