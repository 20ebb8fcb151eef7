"""A small document model for fmd.reporting, rendered to Markdown and to a typeset PDF (fpdf2).

The report is built once as a list of blocks (headings, paragraphs, lists, tables, figures, code)
and written twice, so the Markdown and the PDF always say the same thing. Inline markup in
paragraphs, list items and table cells is a Markdown subset: `**bold**`, `*italic*` and
`` `code` ``.

The PDF uses fpdf2 (pure Python, from PyPI alone) with the DejaVu fonts that matplotlib ships, so
every character of the text (arrows, ≤, ×, Greek letters) renders without any system font.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from fpdf import FPDF, FontFace
from fpdf.enums import MethodReturnValue, TableCellFillMode, XPos, YPos
from PIL import Image

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


@dataclass
class Heading:
    level: int  # 1 title, 2 chapter, 3 question
    text: str
    anchor: str | None = None  # e.g. 'Q7': recorded with the page it starts on


@dataclass
class Paragraph:
    text: str
    small: bool = False


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Code:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ''
    align: str = ''  # one of 'l'/'r'/'c' per column; default: left
    widths: tuple[float, ...] | None = None  # relative column widths for the PDF
    bold_last_row: bool = False
    label: str = ''  # 'Table 3 (Q8)', set when added


@dataclass
class Figure:
    paths: list[Path]  # one image, or several side by side under one caption
    caption: str
    label: str = ''  # 'Figure 7 (Q10)', set when added
    width: float = 1.0  # fraction of the text width the row of images may take in the PDF


@dataclass
class PageBreak:
    pass


Block = Heading | Paragraph | Bullets | Code | Table | Figure | PageBreak


@dataclass
class Document:
    """Blocks in reading order; figures and tables are numbered as they are added."""

    blocks: list[Block] = field(default_factory=list)
    n_figures: int = 0
    n_tables: int = 0

    def heading(self, level: int, text: str, anchor: str | None = None) -> None:
        self.blocks.append(Heading(level, text, anchor))

    def para(self, *sentences: str, small: bool = False) -> None:
        """One paragraph from sentences joined by spaces (empty ones dropped)."""
        text = ' '.join(s.strip() for s in sentences if s and s.strip())
        if text:
            self.blocks.append(Paragraph(text, small))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(Bullets(list(items)))

    def code(self, text: str) -> None:
        self.blocks.append(Code(text))

    def page_break(self) -> None:
        self.blocks.append(PageBreak())

    def table(self, header: list[str], rows: list[list[str]], caption: str = '', question: str = '',
              **options) -> Table:
        label = ''
        if caption:  # only captioned tables are numbered
            self.n_tables += 1
            label = f'Table {self.n_tables}' + (f' ({question})' if question else '')
        table = Table(header, rows, caption, label=label, **options)
        self.blocks.append(table)
        return table

    def figure(self, paths: Path | list[Path], caption: str, question: str = '',
               width: float = 1.0) -> Figure:
        self.n_figures += 1
        where = f' ({question})' if question else ''
        paths = [Path(p) for p in paths] if isinstance(paths, list | tuple) else [Path(paths)]
        figure = Figure(paths, caption, label=f'Figure {self.n_figures}{where}', width=width)
        self.blocks.append(figure)
        return figure


# --- Markdown -------------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return text.replace('|', '\\|').replace('\n', ' ')


def to_markdown(document: Document, relative_to: Path) -> str:
    """GitHub-flavoured Markdown; figure links are relative to `relative_to` (the report folder)."""
    lines: list[str] = []
    for block in document.blocks:
        if isinstance(block, Heading):
            lines += ['#' * block.level + ' ' + block.text, '']
        elif isinstance(block, Paragraph):
            lines += [block.text, '']
        elif isinstance(block, Bullets):
            lines += [f'- {item}' for item in block.items] + ['']
        elif isinstance(block, Code):
            lines += ['```python', block.text, '```', '']
        elif isinstance(block, Table):
            if block.caption:
                lines += [f'*{block.label}: {block.caption}*', '']
            aligns = (block.align or 'l' * len(block.header)).ljust(len(block.header), 'l')
            rule = {'l': '---', 'r': '---:', 'c': ':---:'}
            lines.append('| ' + ' | '.join(_md_cell(h) for h in block.header) + ' |')
            lines.append('|' + '|'.join(rule[a] for a in aligns) + '|')
            lines += ['| ' + ' | '.join(_md_cell(c) for c in row) + ' |' for row in block.rows]
            lines.append('')
        elif isinstance(block, Figure):
            for path in block.paths:
                link = Path(os.path.relpath(path, relative_to)).as_posix()
                lines += [f'![{block.label}: {path.name}]({link})', '']
            files = ', '.join(f'`{path.as_posix()}`' for path in block.paths)
            lines += [f'*{block.label}: {block.caption}* ({files})', '']
    return '\n'.join(lines).rstrip() + '\n'


# --- PDF ------------------------------------------------------------------------------------------

def plain(text: str) -> str:
    """Inline markup removed (for table cells, bookmarks and captions)."""
    return re.sub(r'\*\*(.+?)\*\*|`([^`]+)`|\*([^*\s][^*]*?)\*',
                  lambda m: next(g for g in m.groups() if g is not None), text)


class ReportPDF(FPDF):
    """A4, 20 mm margins, DejaVu fonts, a running header and 'page N of M' footers."""

    def __init__(self, title: str) -> None:
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
        self.set_y(-13)
        self.set_font('Sans', '', 8)
        self.set_text_color(120, 120, 120)
        self.cell(0, 4, f'page {self.page_no()} of {{nb}}', align='C')
        self.set_text_color(0, 0, 0)

    @property
    def text_width(self) -> float:
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


def _estimated_height(pdf: ReportPDF, block: Block | None) -> float:
    """Roughly how much of `block` must follow a heading on the same page."""
    if isinstance(block, Figure):
        return _figure_height(pdf, block) + 10
    if isinstance(block, Table):
        return 7.0 * min(len(block.rows) + 1, 4) + (10 if block.caption else 0)
    if isinstance(block, Code):
        return min(4.2 * (block.text.count('\n') + 1) + 4, 40)
    if isinstance(block, Paragraph | Bullets):
        return 16.0
    return 0.0


def _heading(pdf: ReportPDF, block: Heading, following: Block | None = None) -> None:
    sizes = {1: 20.0, 2: 15.0, 3: 11.5}
    size = sizes.get(block.level, 11.0)
    if block.level == 2 and pdf.get_y() > MARGIN + 1:
        pdf.add_page()
    elif pdf.room < 14 + _estimated_height(pdf, following):
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


def _paragraph(pdf: ReportPDF, block: Paragraph) -> None:
    size = SMALL_SIZE if block.small else BODY_SIZE
    pdf.set_x(pdf.l_margin)
    pdf.inline(block.text, size=size, line=size * 0.47)
    pdf.ln(size * 0.47)
    pdf.ln(2.2)


def _bullets(pdf: ReportPDF, block: Bullets) -> None:
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


def _code(pdf: ReportPDF, block: Code) -> None:
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


def _caption(pdf: ReportPDF, label: str, caption: str) -> None:
    pdf.set_x(pdf.l_margin)
    pdf.set_font('Sans', 'B', SMALL_SIZE)
    pdf.write(4.3, f'{label}: ')
    pdf.inline(caption, size=SMALL_SIZE, line=4.3, style='')
    pdf.ln(4.3)


def _table(pdf: ReportPDF, block: Table) -> None:
    n = len(block.header)
    aligns = (block.align or 'l' * n).ljust(n, 'l')
    align_names = {'l': 'LEFT', 'r': 'RIGHT', 'c': 'CENTER'}
    rows = [block.header, *block.rows]
    widths = block.widths or _column_widths(pdf, rows)
    # Keep short tables (and a caption with the start of a long one) on one page.
    estimated = 7.5 * min(len(rows), 8) + (10 if block.caption else 0)
    if pdf.room < estimated:
        pdf.add_page()
    if block.caption:
        _caption(pdf, block.label, block.caption)
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


def _column_widths(pdf: ReportPDF, rows: list[list[str]]) -> tuple[float, ...]:
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


FIGURE_GAP = 4.0  # mm between images of one figure


def _ratios(block: Figure) -> list[float]:
    """width / height of each image of the figure."""
    ratios = []
    for path in block.paths:
        with Image.open(path) as image:
            ratios.append(image.size[0] / image.size[1])
    return ratios


def _figure_height(pdf: ReportPDF, block: Figure) -> float:
    if not all(path.is_file() for path in block.paths):
        return 10.0
    ratios = _ratios(block)
    row_width = pdf.text_width * block.width - FIGURE_GAP * (len(ratios) - 1)
    return min(row_width / sum(ratios), FIGURE_MAX_HEIGHT)


def _figure(pdf: ReportPDF, block: Figure) -> None:
    """The images side by side (same height), scaled to the text width, caption below."""
    missing = [path for path in block.paths if not path.is_file()]
    if missing:
        _paragraph(pdf, Paragraph(f'*{block.label}: `{missing[0]}` is missing.*', small=True))
        return
    gap = FIGURE_GAP
    ratios = _ratios(block)
    height = _figure_height(pdf, block)
    caption_lines = 1 + len(plain(block.caption)) // 90
    if pdf.room < height + 6 + 4.3 * caption_lines:
        pdf.add_page()
    total = height * sum(ratios) + gap * (len(ratios) - 1)
    x, y = pdf.l_margin + (pdf.text_width - total) / 2, pdf.get_y()
    for path, ratio in zip(block.paths, ratios, strict=True):
        pdf.image(str(path), x=x, y=y, w=height * ratio, h=height)
        x += height * ratio + gap
    pdf.set_y(y + height + 2)
    _caption(pdf, block.label, block.caption)
    pdf.ln(4)


RENDERERS = {Paragraph: _paragraph, Bullets: _bullets, Code: _code,
             Table: _table, Figure: _figure}


def to_pdf(document: Document, path: Path, title: str) -> dict[str, int]:
    """Write the PDF; returns {'pages': N, anchor: page, ...} (e.g. 'Q7': 4)."""
    pdf = ReportPDF(title)
    pdf.add_page()
    for index, block in enumerate(document.blocks):
        if isinstance(block, PageBreak):
            pdf.add_page()
        elif isinstance(block, Heading):
            following = document.blocks[index + 1] if index + 1 < len(document.blocks) else None
            _heading(pdf, block, following)
        else:
            RENDERERS[type(block)](pdf, block)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return {'pages': pdf.page_no(), **pdf.anchors}
