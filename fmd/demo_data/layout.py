"""Image size, folder layout and dataset sizes (scales) of the demo datasets, mirroring the course data."""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from fmd.core.options import CLASS_NAMES, DATASET_NAMES, IMAGE_SIZE, SPLIT_NAMES  # noqa: F401 (IMAGE_SIZE: read from here by the demo modules)

DATASETS, SPLITS, CLASSES = DATASET_NAMES, SPLIT_NAMES, CLASS_NAMES  # the course data's layout

Counts = dict[str, dict[str, dict[str, int]]]  # dataset -> split -> class -> number of images
ImageKey = tuple[str, str, str, int]  # (dataset, split, class, index): names one image


def course_proportions(fakes_totals: tuple[int, int, int],
                       synthetic_totals: tuple[int, int, int]) -> Counts:
    """Counts from per-split totals, balanced like the course: fakes 1 fake : 2 real, synthetic 1 : 1."""
    return {
        'fakes_dataset': {split: {'real': total - total // 3, 'fake': total // 3}
                          for split, total in zip(SPLITS, fakes_totals, strict=True)},
        'synthetic_dataset': {split: {'real': total - total // 2, 'fake': total // 2}
                              for split, total in zip(SPLITS, synthetic_totals, strict=True)},
    }


SCALES: dict[str, Counts] = {
    'tiny': course_proportions((6, 6, 6), (6, 6, 6)),  # unit tests: seconds
    'quick': course_proportions((48, 24, 24), (32, 16, 16)),  # QUICK=1 ./run_me.sh
    # make run: SimpleNet needs ~900 fakes_dataset images to learn in the assignment's 5 epochs;
    # synthetic_dataset is small because XceptionBased costs most of the run on a CPU.
    'starter': course_proportions((900, 300, 300), (160, 60, 60)),
    'small': course_proportions((900, 300, 300), (400, 150, 150)),  # the README's demo measurements
    'medium': course_proportions((3600, 1200, 1200), (1600, 600, 600)),
    'full': course_proportions((5400, 2100, 2100), (5400, 2100, 2100)),  # course sizes
}
DEFAULT_SCALE = 'starter'  # what `make run` and `python -m fmd.demo_data` generate without --scale


def resolve_scale(scale: str | Mapping) -> tuple[str, Counts]:
    """Name and counts of a scale given by name (see SCALES) or as a custom counts mapping."""
    if isinstance(scale, str):
        if scale not in SCALES:
            raise ValueError(f'unknown --scale {scale!r}; choose one of {", ".join(SCALES)}')
        return scale, SCALES[scale]
    counts: Counts = {}
    for dataset, splits in scale.items():
        if dataset not in DATASETS:
            raise ValueError(f'unknown dataset {dataset!r} in scale; expected {DATASETS}')
        counts[dataset] = {}
        for split, classes in splits.items():
            if split not in SPLITS or set(classes) != set(CLASSES):
                raise ValueError(f'bad scale entry {dataset}/{split}: need split in {SPLITS} '
                                 f'and exactly the classes {CLASSES}, got {dict(classes)}')
            if any(int(number) < 1 for number in classes.values()):
                raise ValueError(f'scale entry {dataset}/{split} needs at least one image per class')
            counts[dataset][split] = {class_name: int(classes[class_name]) for class_name in CLASSES}
    return 'custom', counts


def image_keys(counts: Counts) -> Iterator[ImageKey]:
    """Every image that `counts` asks for, folder by folder."""
    for dataset, splits in counts.items():
        for split, classes in splits.items():
            for class_name in CLASSES:
                for index in range(classes[class_name]):
                    yield dataset, split, class_name, index


def relative_path(dataset: str, split: str, class_name: str, index: int) -> str:
    """Where one image lives under the output folder, as the course layout has it."""
    return f'{dataset}/{split}/{class_name}/{index:05d}.png'
