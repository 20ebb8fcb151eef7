"""What a prepared dataset looks like: split and class folders, file names, CSV columns, the error type.

Every other module of fmd.prepare reads its names from here, so the layout is stated once.
"""
from __future__ import annotations

import re

from fmd.core.options import CLASS_NAMES, SPLIT_NAMES
from fmd.data.landmarks import LANDMARKS_FILE

VERSION = '1.0.0'
SPLITS = SPLIT_NAMES
CLASSES = CLASS_NAMES  # label 0, label 1
MANIFEST_NAME = 'MANIFEST.csv'
SKIPPED_NAME = 'skipped.csv'
SETTINGS_NAME = 'PREPARE.json'  # written last: its presence means the dataset is complete
MANIFEST_COLUMNS = ('path', 'label', 'split', 'group', 'source', 'frame', 'x', 'y', 'w', 'h', 'detector',
                    'faces', 'sha256')
SKIPPED_COLUMNS = ('source', 'reason')
OWN_ENTRIES = {*SPLITS, MANIFEST_NAME, SKIPPED_NAME, SETTINGS_NAME, LANDMARKS_FILE}
CROP_KEYS = ('detector', 'margin', 'size', 'frames_per_video')  # what a crop depends on
NAME_PATTERN = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')


class PrepareError(ValueError):
    """Bad input or arguments; main prints it as one line."""
