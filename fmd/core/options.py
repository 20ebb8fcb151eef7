"""The choices the command lines offer, in a module without torch so that --help answers at once.

Each constant keeps its name where the code that uses it lives (presets.AUGMENT_PRESETS,
trainer.SELECT_BY, ...), imported from here: one owner, no second list to keep in step.
"""
from __future__ import annotations

import os

IMAGE_SIZE = 256  # fmd.data.presets: the assignment's image side (256x256 RGB)
SPLIT_NAMES = ('train', 'val', 'test')  # the split folders of every dataset
CLASS_NAMES = ('real', 'fake')  # the class folders of every split; index = label (0 real, 1 fake)
AUGMENT_PRESETS = ('assignment', 'forensic')  # fmd.data.presets: training augmentation presets
UINT8_PRESETS = ('assignment',)  # the presets with a uint8-tensor twin (presets.uint8_transform)
FAKES_MODES = ('dataset', 'self-blend', 'dataset+self-blend')  # fmd.data.training_fakes
SELECT_BY = ('val_acc', 'val_auc')  # trainer.py: what "best epoch" means
OPTIMIZERS = ('SGD', 'Adam', 'AdamW')  # fmd.training.optimizers
SCHEDULERS = ('none', 'cosine')
CLASS_WEIGHTS = ('none', 'balanced')
LR_FIND_STEPS = 100  # fmd.training.lr_finder.DEFAULT_STEPS: steps of the range test

# fmd.core.registry's models and their aliases, written out so that -m is checked without importing
# the models and torch (a training run forks its image decoders first: fmd.data.prefetch); a test
# keeps it equal to the registry, and a name registered but not listed here is still accepted.
MODEL_NAMES = {
    'SimpleNet': (),
    'XceptionBased': ('Xception-Based',),
    'BonusNet': (),
    'EfficientNetLite0': ('EfficientNet-Lite0',),
}

# fmd.data.data_root: where the datasets are looked for, in this order.
DATA_ROOT_ENV = 'FACES_DATA_ROOT'
DATASET_NAMES = ('fakes_dataset', 'synthetic_dataset')  # the assignment's two datasets
COURSE_DATA_DIRS = ('Assignment4_datasets', '../Assignment4_datasets')
DEMO_DATA_DIR = 'demo_datasets'
DATA_SEARCH_ORDER = (f'./{COURSE_DATA_DIRS[0]}, {COURSE_DATA_DIRS[1]}, the parent folder when it holds '
                     f'{" and ".join(DATASET_NAMES)}, ./{DEMO_DATA_DIR}')


def launched_by_torchrun() -> bool:
    """True when torchrun (or srun with the same variables) started this process."""
    return 'RANK' in os.environ and 'WORLD_SIZE' in os.environ


def env_world_size() -> int:
    """Number of training processes this job will have (1 without torchrun)."""
    return int(os.environ['WORLD_SIZE']) if launched_by_torchrun() else 1
