"""The PDF's page: A4 with DejaVu fonts, running header and footer, and inline-markup text that wraps.

fpdf2 is pure Python (from PyPI alone) and the DejaVu fonts ship with matplotlib, so every
character of the text (arrows, ≤, ×, Greek letters) renders without any system font.
"""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib
from fpdf import FPDF

FONT_DIR = Path(matplotlib.get_data_path()) / 'fonts' / 'ttf'
BODY_SIZE = 10.5  # pt
SMALL_SIZE = 9.0
CODE_SIZE = 8.8
LINE = 5.0  # mm per body line
MARGIN = 20.0  # mm
FIGURE_MAX_HEIGHT = 150.0  # mm: at most about two thirds of the text height
ACCENT = (31, 73, 125)
RULE_GREY = (190, 190, 190)
TABLE_HEAD_FILL = (226, 233, 243)
TABLE_ROW_FILL = (246, 248, 251)
CODE_FILL = (243, 243, 243)

INLINE = re.compile(r'(\*\*.+?\*\*|`[^`]+`|\*[^*\s][^*]*?\*)')


def plain(text: str) -> str:
    """Inline markup removed (for table cells, bookmarks and captions)."""
    return re.sub(r'\*\*(.+?)\*\*|`([^`]+)`|\*([^*\s][^*]*?)\*',
                  lambda m: next(g for g in m.groups() if g is not None), text)


class ReportPDF(FPDF):
    """A4, 20 mm margins, DejaVu fonts, a running header and 'page N of M' footers."""

    def __init__(self, title: str) -> None:
        """Register the DejaVu fonts, margins, page breaks and the document title."""
        super().__init__(orientation='P', unit='mm', format='A4')
        self.report_title = title
        for style, suffix in (('', ''), ('B', '-Bold'), ('I', '-Oblique'), ('BI', '-BoldOblique')):
            self.add_font('Sans', style, str(FONT_DIR / f'DejaVuSans{suffix}.ttf'))
        self.add_font('Mono', '', str(FONT_DIR / 'DejaVuSansMono.ttf'))
        self.add_font('Mono', 'B', str(FONT_DIR / 'DejaVuSansMono-Bold.ttf'))
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN)
        self.set_title(title)
        self.set_creator('fmd.reporting (fpdf2)')
        self.anchors: dict[str, int] = {}

    def header(self) -> None:
        """The running title and a rule on every page but the first."""
        if self.page_no() == 1:
            return
        self.set_y(10)
        self.set_font('Sans', 'I', 8)
        self.set_text_color(120, 120, 120)
        self.cell(0, 4, self.report_title, align='L')
        self.set_draw_color(*RULE_GREY)
        self.line(MARGIN, 15, self.w - MARGIN, 15)
        self.set_text_color(0, 0, 0)
        self.set_y(MARGIN)

    def footer(self) -> None:
        """'page N of M' centred at the foot of every page."""
        self.set_y(-13)
        self.set_font('Sans', '', 8)
        self.set_text_color(120, 120, 120)
        self.cell(0, 4, f'page {self.page_no()} of {{nb}}', align='C')
        self.set_text_color(0, 0, 0)

    @property
    def text_width(self) -> float:
        """Width between the left and right margins."""
        return self.w - self.l_margin - self.r_margin

    @property
    def room(self) -> float:
        """Height left above the bottom margin on this page."""
        return self.page_break_trigger - self.get_y()

    def inline(self, text: str, size: float = BODY_SIZE, line: float = LINE,
               style: str = '') -> None:
        """Write text with **bold**, *italic* and `code` runs, wrapping at the right margin."""
        for run in INLINE.split(text):
            if not run:
                continue
            if run.startswith('**') and run.endswith('**') and len(run) > 4:
                self.set_font('Sans', 'B' + style.replace('B', ''), size)
                self.words(line, run[2:-2])
            elif run.startswith('`') and run.endswith('`') and len(run) > 2:
                self.set_font('Mono', 'B' if 'B' in style else '', size * 0.93)
                self.words(line, run[1:-1])
            elif run.startswith('*') and run.endswith('*') and len(run) > 2:
                self.set_font('Sans', 'I' + style.replace('I', ''), size)
                self.words(line, run[1:-1])
            else:
                self.set_font('Sans', style, size)
                self.words(line, run)
        self.set_font('Sans', style, size)

    def words(self, line: float, text: str) -> None:
        """write() one word at a time, breaking the line *before* a word that does not fit.

        fpdf2's write() breaks at the last space of the text it is given, so a run of inline code
        or bold that starts mid-line would otherwise be split inside its first word.
        """
        right = self.w - self.r_margin - 2 * self.c_margin  # write()'s own wrapping limit
        for token in re.split(r'(\s+)', text):
            if not token:
                continue
            at_line_start = self.get_x() <= self.l_margin + 0.01
            if token.isspace():
                if not at_line_start:
                    self.write(line, ' ')
                continue
            if not at_line_start and self.get_x() + self.get_string_width(token) > right:
                self.ln(line)
            self.write(line, token)
