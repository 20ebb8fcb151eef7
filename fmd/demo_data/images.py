"""One demo image as a pure function of (seed, dataset, split, class, index), and a sample grid for docs."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .camera import camera_capture, jpeg_round_trip, to_uint8
from .faces import random_identity, random_scene
from .forgeries import face_swap, gan_like_image, upsampling_layers
from .layout import CLASSES, DATASETS, IMAGE_SIZE
from .render import render_face
from .seeding import identity_keys, keyed_rng


def make_image(seed: int, dataset: str, split: str, class_name: str, index: int) -> np.ndarray:
    """The uint8 256x256x3 image number `index` of one folder; the same bytes on every call."""
    rng = keyed_rng(seed, dataset, split, class_name, index)
    target_key, source_key = identity_keys(seed, dataset, split, class_name, index)
    identity = random_identity(seed, target_key)
    scene = random_scene(rng)
    if dataset == 'fakes_dataset' and class_name == 'fake':
        image = face_swap(identity, random_identity(seed, source_key), scene, rng)
    elif dataset == 'synthetic_dataset' and class_name == 'fake':
        image = gan_like_image(identity, scene, upsampling_layers(seed), rng)
    else:
        image = camera_capture(render_face(identity, scene, IMAGE_SIZE, rng), rng)
    return to_uint8(jpeg_round_trip(image, int(rng.integers(80, 96))))


def sample_grid(seed: int = 0, per_class: int = 3, tile: int = 128) -> Image.Image:
    """A titled grid for the README: one labelled row per (dataset, class), `per_class` train images each."""
    label_width, title_height = 150, 30
    rows = [(dataset, class_name) for dataset in DATASETS for class_name in CLASSES]
    grid = Image.new('RGB', (label_width + per_class * tile, title_height + len(rows) * tile), 'white')
    draw = ImageDraw.Draw(grid)
    draw.text((6, 8), f'Demo data (drawn faces): {per_class} train images per dataset and class, seed {seed}',
              fill='black', font=ImageFont.load_default(size=14))
    for row, (dataset, class_name) in enumerate(rows):
        top = title_height + row * tile
        draw.text((6, top + tile // 2 - 12), f'{dataset}\n{class_name}', fill='black')
        for column in range(per_class):
            image = Image.fromarray(make_image(seed, dataset, 'train', class_name, column))
            grid.paste(image.resize((tile, tile), Image.LANCZOS), (label_width + column * tile, top))
    return grid
