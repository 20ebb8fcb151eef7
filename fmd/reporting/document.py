"""The report as a list of blocks (headings, paragraphs, lists, tables, figures, code), and its Markdown.

The report is built once as a Document and written twice, to Markdown here and to a typeset PDF
(fmd.reporting.pdf), so the two always say the same thing. Inline markup in paragraphs, list items
and table cells is a Markdown subset: `**bold**`, `*italic*` and `` `code` ``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    """A title (1), chapter (2) or question (3) heading."""

    level: int  # 1 title, 2 chapter, 3 question
    text: str
    anchor: str | None = None  # e.g. 'Q7': recorded with the page it starts on


@dataclass
class Paragraph:
    """One paragraph of inline-markup text; small for notes and caveats."""

    text: str
    small: bool = False


@dataclass
class Bullets:
    """A bulleted list, one inline-markup item each."""

    items: list[str]


@dataclass
class Code:
    """A block of Python source, shown monospaced."""

    text: str


@dataclass
class Table:
    """A table of text cells, numbered when it has a caption."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ''
    align: str = ''  # one of 'l'/'r'/'c' per column; default: left
    widths: tuple[float, ...] | None = None  # relative column widths for the PDF
    bold_last_row: bool = False
    label: str = ''  # 'Table 3 (Q8)', set when added


@dataclass
class Figure:
    """One or more images side by side under one numbered caption."""

    paths: list[Path]  # one image, or several side by side under one caption
    caption: str
    label: str = ''  # 'Figure 7 (Q10)', set when added
    width: float = 1.0  # fraction of the text width the row of images may take in the PDF


@dataclass
class PageBreak:
    """Start a new PDF page (nothing in the Markdown)."""

    pass


Block = Heading | Paragraph | Bullets | Code | Table | Figure | PageBreak


@dataclass
class Document:
    """Blocks in reading order; figures and tables are numbered as they are added."""

    blocks: list[Block] = field(default_factory=list)
    n_figures: int = 0
    n_tables: int = 0

    def heading(self, level: int, text: str, anchor: str | None = None) -> None:
        """Add a heading; `anchor` records the PDF page it lands on."""
        self.blocks.append(Heading(level, text, anchor))

    def para(self, *sentences: str, small: bool = False) -> None:
        """One paragraph from sentences joined by spaces (empty ones dropped)."""
        text = ' '.join(s.strip() for s in sentences if s and s.strip())
        if text:
            self.blocks.append(Paragraph(text, small))

    def bullets(self, items: list[str]) -> None:
        """Add a bulleted list (nothing for an empty one)."""
        if items:
            self.blocks.append(Bullets(list(items)))

    def code(self, text: str) -> None:
        """Add a code block."""
        self.blocks.append(Code(text))

    def page_break(self) -> None:
        """Add a PDF page break."""
        self.blocks.append(PageBreak())

    def table(self, header: list[str], rows: list[list[str]], caption: str = '', question: str = '',
              **options) -> Table:
        """Add a table; a captioned one is numbered 'Table N (question)'."""
        label = ''
        if caption:  # only captioned tables are numbered
            self.n_tables += 1
            label = f'Table {self.n_tables}' + (f' ({question})' if question else '')
        table = Table(header, rows, caption, label=label, **options)
        self.blocks.append(table)
        return table

    def figure(self, paths: Path | list[Path], caption: str, question: str = '',
               width: float = 1.0) -> Figure:
        """Add a figure numbered 'Figure N (question)'."""
        self.n_figures += 1
        where = f' ({question})' if question else ''
        paths = [Path(p) for p in paths] if isinstance(paths, list | tuple) else [Path(paths)]
        figure = Figure(paths, caption, label=f'Figure {self.n_figures}{where}', width=width)
        self.blocks.append(figure)
        return figure


def _md_cell(text: str) -> str:
    """A table cell made safe for one Markdown table row (pipes escaped, no newlines)."""
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
