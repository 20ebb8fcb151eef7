"""Draw a figure in the PDF: its images side by side at one height, scaled to fit, caption below."""
from __future__ import annotations

from PIL import Image

from fmd.reporting.document import Figure, Paragraph
from fmd.reporting.pdf_page import FIGURE_MAX_HEIGHT, ReportPDF, plain
from fmd.reporting.pdf_text import draw_caption, draw_paragraph

FIGURE_GAP = 4.0  # mm between images of one figure


def image_ratios(block: Figure) -> list[float]:
    """width / height of each image of the figure."""
    ratios = []
    for path in block.paths:
        with Image.open(path) as image:
            ratios.append(image.size[0] / image.size[1])
    return ratios


def figure_height(pdf: ReportPDF, block: Figure) -> float:
    """The height the images get: the row fits the figure width, at most FIGURE_MAX_HEIGHT."""
    if not all(path.is_file() for path in block.paths):
        return 10.0
    ratios = image_ratios(block)
    row_width = pdf.text_width * block.width - FIGURE_GAP * (len(ratios) - 1)
    return min(row_width / sum(ratios), FIGURE_MAX_HEIGHT)


def draw_figure(pdf: ReportPDF, block: Figure) -> None:
    """The images side by side (same height), scaled to the text width, caption below."""
    missing = [path for path in block.paths if not path.is_file()]
    if missing:
        draw_paragraph(pdf, Paragraph(f'*{block.label}: `{missing[0]}` is missing.*', small=True))
        return
    gap = FIGURE_GAP
    ratios = image_ratios(block)
    height = figure_height(pdf, block)
    caption_lines = 1 + len(plain(block.caption)) // 90
    if pdf.room < height + 6 + 4.3 * caption_lines:
        pdf.add_page()
    total = height * sum(ratios) + gap * (len(ratios) - 1)
    x, y = pdf.l_margin + (pdf.text_width - total) / 2, pdf.get_y()
    for path, ratio in zip(block.paths, ratios, strict=True):
        pdf.image(str(path), x=x, y=y, w=height * ratio, h=height)
        x += height * ratio + gap
    pdf.set_y(y + height + 2)
    draw_caption(pdf, block.label, block.caption)
    pdf.ln(4)
