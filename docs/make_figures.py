"""Regenerate the README's figures in docs/ from our own demo data and scikit-image's bundled photo.

    python docs/make_figures.py demo_samples augmentations_forensic cross_dataset_auc
    python docs/make_figures.py detect_example --checkpoint checkpoints/fakes_dataset_BonusNet_Adam.pt \\
        --data-root demo_datasets

No third-party face data goes into docs/: `augmentations_forensic` draws on skimage's astronaut photo
(public domain, NASA), `detect_example` on the demo test split (fmd.demo_data), and
`cross_dataset_auc` plots docs/cross_dataset_auc.json, the rows of the README's cross-dataset table
(fmd.evaluate's keys; the ciplab checkpoints it scored are not in the repository). Run from the
repository root (it writes docs/<name>.png) or pass --out-dir.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

DOCS = Path(__file__).resolve().parent
FIGURES = ('demo_samples', 'augmentations_forensic', 'cross_dataset_auc', 'detect_example')  # main's order
DETECT_INPUTS = ('real/00000.png', 'fake/00000.png')  # under <data root>/fakes_dataset/test


def demo_samples(out: Path, args: argparse.Namespace) -> None:
    """fmd.demo_data's labelled sample grid (no data needed: images are made on the fly)."""
    from fmd.demo_data import cli as make_demo_datasets
    make_demo_datasets.main(['--sample-grid', str(out)])


def augmentations_forensic(out: Path, args: argparse.Namespace) -> None:
    """fmd.data.plot_augmentations on the astronaut's face, cropped as fmd.prepare crops (HOG)."""
    import numpy as np
    from skimage.data import astronaut

    from fmd.data import plot_augmentations
    from fmd.data.face_crop import crop_face

    found = crop_face(np.asarray(astronaut()), detector='hog')
    if found is None:
        raise RuntimeError('HOG found no face in skimage.data.astronaut()')
    with tempfile.TemporaryDirectory() as folder:
        face = Path(folder) / 'astronaut_face.png'
        Image.fromarray(found[0]).save(face)
        written = plot_augmentations.main([str(face), '--augment', 'forensic', '--out', str(out.parent)])
    if written != out:  # plot_augmentations names its file; the README shows this one
        written.replace(out)


def cross_dataset_auc(out: Path, args: argparse.Namespace) -> None:
    """fmd.evaluate's heat map of the README table's rows."""
    from fmd.core.analysis_cli import save_figure, use_agg_backend
    from fmd.evaluate.tables import plot_auc_heatmap

    use_agg_backend()
    rows = json.loads((DOCS / 'cross_dataset_auc.json').read_text())
    save_figure(plot_auc_heatmap(rows), out)


def detect_example(out: Path, args: argparse.Namespace) -> None:
    """fmd.detect --detector none --cam on a real and a fake demo test image, its two pictures stacked."""
    from fmd.detect import cli as detect
    if args.checkpoint is None or args.data_root is None:
        raise SystemExit('detect_example needs --checkpoint (trained on the demo fakes_dataset) and '
                         '--data-root')
    split = Path(args.data_root) / 'fakes_dataset' / 'test'
    with tempfile.TemporaryDirectory() as folder:
        inputs = [Path(folder) / name.replace('/', '_') for name in DETECT_INPUTS]  # captions say the class
        for name, path in zip(DETECT_INPUTS, inputs, strict=True):
            path.write_bytes((split / name).read_bytes())
        results = detect.detect_paths(inputs, args.checkpoint, detector='none', cam=True,
                                      out=Path(folder) / 'out')
        pictures = [Image.open(result.annotated).convert('RGB') for result in results]
        stacked = Image.new('RGB', (max(p.width for p in pictures), sum(p.height for p in pictures)))
        for index, picture in enumerate(pictures):
            stacked.paste(picture, (0, sum(p.height for p in pictures[:index])))
    stacked.save(out, optimize=True)
    for name, result in zip(DETECT_INPUTS, results, strict=True):
        print(f'{name}: {result.verdict} p_fake {result.p_fake:.3f} '
              f'(threshold {result.threshold:.3f}, {result.threshold_source})')
    print(f'wrote {out}')


def main(argv: list[str] | None = None) -> list[Path]:
    """Write the named figures (default: every one that needs no checkpoint); returns their paths."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('figures', nargs='*', default=list(FIGURES[:3]), metavar='FIGURE',
                        help=f'any of {", ".join(FIGURES)} (default: the first three)')
    parser.add_argument('--checkpoint', help='for detect_example: a model trained on the demo fakes_dataset')
    parser.add_argument('--data-root', help='for detect_example: the demo data root (fmd.demo_data)')
    parser.add_argument('--out-dir', default=str(DOCS), help='default: docs/')
    args = parser.parse_args(argv)
    makers = {'demo_samples': demo_samples, 'augmentations_forensic': augmentations_forensic,
              'cross_dataset_auc': cross_dataset_auc, 'detect_example': detect_example}
    unknown = [name for name in args.figures if name not in makers]
    if unknown:
        parser.error(f'unknown figure {", ".join(unknown)}; choose from {", ".join(FIGURES)}')
    written = []
    for name in args.figures:
        out = Path(args.out_dir) / f'{name}.png'
        out.parent.mkdir(parents=True, exist_ok=True)
        makers[name](out, args)  # each prints what it wrote
        written.append(out)
    return written


if __name__ == '__main__':
    main()
