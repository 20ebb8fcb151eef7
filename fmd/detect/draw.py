"""fmd.detect's pictures: an image (or a video's highest-scoring frame) with its face boxes and P(fake)
drawn on it, and optionally a Grad-CAM overlay of each face crop beside it (pytorch-grad-cam).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from fmd.core.atomic_io import atomic_write
from fmd.core.devices import model_device
from fmd.data.presets import TRANSFORM_TEST
from fmd.detect.inputs import Face, FoundFaces, Preview

# Okabe-Ito vermillion and blue: told apart with every common colour-vision deficiency (unlike red/green).
FAKE_COLOUR = (213, 94, 0)
REAL_COLOUR = (0, 114, 178)
CAPTION_BACKGROUND = (30, 30, 30)
FAKE_CLASS = 1
CAM_COLORMAP = cv2.COLORMAP_VIRIDIS  # perceptually uniform and colour-blind safe (not the default jet)
JPEG_QUALITY = 90  # of the annotated pictures (photos with boxes and text: no visible artefacts)


# ----------------------------------------------------------------------------- Grad-CAM

def cam_overlays(model: nn.Module, layer: nn.Module, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Grad-CAM of the fake class on `layer` over each RGB crop, blended on the crop (HxWx3 uint8).

    The fake class is mapped whatever the verdict: the map shows where the model sees manipulation.
    """
    # here, not at the top: pytorch-grad-cam imports scikit-learn, seconds a run without --cam need not wait
    from pytorch_grad_cam.utils.image import show_cam_on_image

    from fmd.analysis.grad_cam import grad_cam

    if not crops:
        return []
    batch = torch.stack([TRANSFORM_TEST(Image.fromarray(crop)) for crop in crops]).to(model_device(model))
    with grad_cam(model, layer) as cam:
        maps = cam(batch, FAKE_CLASS)
    return [show_cam_on_image(crop.astype(np.float32) / 255, grey, use_rgb=True, colormap=CAM_COLORMAP)
            for crop, grey in zip(crops, maps, strict=True)]


# ----------------------------------------------------------------------------- drawing

@functools.cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's default font at `size`, loaded once per size (loading it took longer than drawing)."""
    return ImageFont.load_default(size=size)


def _label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, colour: tuple[int, int, int],
           font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    """Text on a filled box whose bottom-left corner is xy (moved down inside the picture if needed)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = 2
    x, y = xy[0], max(0, xy[1] - (bottom - top) - 2 * pad)
    draw.rectangle((x, y, x + right - left + 2 * pad, y + bottom - top + 2 * pad), fill=colour)
    draw.text((x + pad - left, y + pad - top), text, fill=(255, 255, 255), font=font)


def colour_bar(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int],
               font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    """CAM_COLORMAP from 0 to 1 across box (left, top, right, bottom), labelled as the Grad-CAM scale."""
    left, top, right, bottom = box
    label = 'Grad-CAM of the fake class, normalised: 0'
    text_left = left - draw.textlength(label, font=font) - 4
    draw.text((max(4, text_left), (top + bottom) // 2), label, fill=(255, 255, 255), font=font, anchor='lm')
    bar_right = right - round(draw.textlength('1', font=font)) - 8
    levels = np.linspace(0, 255, max(1, bar_right - left)).astype(np.uint8)
    ramp = cv2.applyColorMap(levels[None], CAM_COLORMAP)  # 1xWx3 BGR
    for x, (b, g, r) in enumerate(ramp[0]):
        draw.line((left + x, top, left + x, bottom), fill=(int(r), int(g), int(b)))
    draw.text((bar_right + 4, (top + bottom) // 2), '1', fill=(255, 255, 255), font=font, anchor='lm')


def annotate(preview: Preview, faces: Sequence[tuple[Face, float]], caption: str, threshold: float,
             cams: Sequence[np.ndarray] = ()) -> Image.Image:
    """The preview with each face's box and p_fake (vermillion: fake at threshold, blue: real), a
    caption strip above, and the Grad-CAM overlays (if any) stacked in a column on the right above
    their colour bar."""
    image = Image.fromarray(preview.image).convert('RGB')
    side = max(image.size)
    width, font = max(2, round(side / 250)), _font(max(12, round(side / 32)))
    draw = ImageDraw.Draw(image)
    for face, p_fake in faces:
        box, s = face.box, preview.scale
        colour = FAKE_COLOUR if p_fake >= threshold else REAL_COLOUR
        x0, y0 = round(box.x * s), round(box.y * s)
        draw.rectangle((x0, y0, round((box.x + box.w) * s) - 1, round((box.y + box.h) * s) - 1),
                       outline=colour, width=width)
        _label(draw, (max(0, x0), y0), f'{"fake" if p_fake >= threshold else "real"} {p_fake:.2f}',
               colour, font)
    strip = round(font.size * 1.6) if hasattr(font, 'size') else 20
    column = image.height // max(1, len(cams)) if cams else 0
    canvas = Image.new('RGB', (image.width + column, image.height + strip * (2 if cams else 1)),
                       CAPTION_BACKGROUND)
    canvas.paste(image, (0, strip))
    for index, overlay in enumerate(cams):
        tile = Image.fromarray(overlay).resize((column, column), Image.Resampling.BILINEAR)
        canvas.paste(tile, (image.width, strip + index * column))
    caption_draw = ImageDraw.Draw(canvas)
    caption_draw.text((4, strip // 2), caption, fill=(255, 255, 255), font=font, anchor='lm')
    if cams:
        bottom = strip + image.height
        colour_bar(caption_draw, (image.width + 4, bottom + strip // 4, canvas.width - 4,
                                  bottom + 3 * strip // 4), font)
    return canvas


@dataclass
class PictureWriter:
    """Writes folder/<name>.jpg per input: its picture (a video: the frame of its highest-scoring face)."""

    folder: Path
    names: dict[str, str]  # input path -> file name
    threshold: tuple[float, str]  # (value, source: a key of detect.THRESHOLD_SOURCES)
    model: nn.Module
    cam_layer: nn.Module | None = None  # None: no Grad-CAM

    @staticmethod
    def shown(found: FoundFaces, p_fakes: Sequence[float]) -> tuple[int | None, list[tuple[Face, float]]]:
        """The frame a picture shows (of the highest-scoring face; the first preview without a face) and
        the scored faces on it."""
        scored = list(zip(found.faces, p_fakes, strict=True))
        if not scored:
            return next(iter(found.previews)), []
        best = max(scored, key=lambda pair: pair[1])[0].frame
        return best, [(face, p) for face, p in scored if face.frame == best]

    def cams(self, shown_crops: Sequence[Sequence[np.ndarray]], batch_size: int) -> list[list[np.ndarray]]:
        """The Grad-CAM overlays of several pictures' faces, in batches of `batch_size` faces (one
        backward pass per batch, not per face); [] per picture without --cam."""
        if self.cam_layer is None:
            return [[] for _ in shown_crops]
        crops = [crop for group in shown_crops for crop in group]
        overlays = [overlay for start in range(0, len(crops), batch_size)
                    for overlay in cam_overlays(self.model, self.cam_layer, crops[start:start + batch_size])]
        groups, start = [], 0
        for group in shown_crops:
            groups.append(overlays[start:start + len(group)])
            start += len(group)
        return groups

    def save(self, found: FoundFaces, p_fakes: Sequence[float], p_fake: float | None, verdict: str,
             cams: Sequence[np.ndarray] | None = None) -> str:
        """Draw and write one input's picture; returns its path ('' when there is nothing to draw).
        `cams`: the Grad-CAM overlays of its shown faces, when computed for several pictures at once."""
        if not found.previews:
            return ''
        best, scored = self.shown(found, p_fakes)
        name, where = Path(found.input.path).name, '' if best is None else f' frame {best}'
        if p_fake is None:
            caption = f'{name}{where}: no face found'
        else:
            caption = (f'{name}: {verdict.upper()} p_fake {p_fake:.2f} (threshold {self.threshold[0]:.3g}, '
                       f'{self.threshold[1]})'
                       + (f', shown:{where}' if where else ''))
        if cams is None:
            cams = self.cams([[face.crop for face, _ in scored]], max(1, len(scored)))[0]
        picture = annotate(found.previews[best], scored, caption, self.threshold[0], cams)
        path = self.folder / self.names[found.input.path]
        # JPEG and no fsync: a few ms per picture (PNG took 12 ms at 300 px, 45 ms at 640, with optimize
        # seconds); a picture is cheap to draw again, unlike the tables, which are synced
        atomic_write(path, lambda handle: picture.save(handle, format='JPEG', quality=JPEG_QUALITY),
                     fsync=False)
        return str(path)
