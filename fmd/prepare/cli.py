"""Turn folders of real and fake photos or videos into the course layout: face crops, leak-free splits.

`python -m fmd.prepare SRC --out OUT --name NAME` (or `SRC OUT --name NAME`) reads
SRC/real/** and SRC/fake/** (images and videos), crops the largest face of every image and of evenly
spaced video frames (face_crop.py), splits by source group so that no group is in two splits, and
writes OUT/NAME/{train,val,test}/{real,fake}/*.png with OUT/NAME/MANIFEST.csv and OUT/NAME/skipped.csv.
The folder is built aside and renamed into place (build.py); this module is the command line only
and loads the building modules after parsing, so --help answers at once.
"""
from __future__ import annotations

import argparse
import math
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from fmd.core.cli import (
    EXIT_ERROR,
    EXIT_USAGE,
    MAX_CROP_SIZE,
    MAX_FRAMES_PER_VIDEO,
    add_out_dir_arg,
    add_progress_arg,
    add_seed_arg,
    add_workers_arg,
    crop_size_int,
    error_line,
    frames_per_video_int,
    resolve_workers,
)
from fmd.data import face_crop
from fmd.data.face_crop import (
    DEFAULT_DETECTOR,
    DEFAULT_MARGIN,
    DEFAULT_SIZE,
    DETECTORS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
)
from fmd.data.landmarks import LANDMARKS_FILE, add_landmarks
from fmd.data.landmarks import summary as landmarks_summary
from fmd.prepare.layout import CLASSES, NAME_PATTERN, SKIPPED_NAME, SPLITS, PrepareError


def build_parser() -> argparse.ArgumentParser:
    """The command line of faces-prepare (light modules only: --help answers at once)."""
    images, videos = (', '.join(e[1:] for e in kind) for kind in (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS))
    parser = argparse.ArgumentParser(prog='faces-prepare', description=__doc__.splitlines()[0], epilog=(
        f'SRC holds real/ and fake/ (any depth below them) with images ({images}) or videos ({videos}). '
        'Writes OUT/NAME/{train,val,test}/{real,fake}/*.png, MANIFEST.csv and skipped.csv; '
        'then use it with --data-root OUT -d NAME. Exit code 0 done, 1 error, 2 usage error.'))
    parser.add_argument('src', metavar='SRC', help='folder holding real/ and fake/')
    parser.add_argument('out_positional', nargs='?', metavar='OUT',
                        help='the same as --out (SRC OUT --name NAME)')
    add_out_dir_arg(parser, None, 'NAME/ (the dataset), the data root to pass as --data-root')
    parser.add_argument('--name', required=True, help='dataset folder name under OUT (the -d of the scripts)')
    parser.add_argument('--split', type=float, nargs=3, default=[0.6, 0.2, 0.2],
                        metavar=('TRAIN', 'VAL', 'TEST'),
                        help='fractions of the groups for train, val and test (default: 0.6 0.2 0.2)')
    parser.add_argument('--frames-per-video', type=frames_per_video_int, default=8,
                        help=f'evenly spaced frames taken from each video, 1..{MAX_FRAMES_PER_VIDEO} '
                             '(default: %(default)s)')
    parser.add_argument('--margin', type=float, default=DEFAULT_MARGIN,
                        help='the face box is enlarged this many times (default: %(default)s, as in '
                             'FaceForensics++)')
    parser.add_argument('--size', type=crop_size_int, default=DEFAULT_SIZE,
                        help=f'side of the square PNGs, 8..{MAX_CROP_SIZE} (default: %(default)s)')
    parser.add_argument('--detector', default=DEFAULT_DETECTOR, choices=DETECTORS,
                        help='hog: dlib HOG (fast); cnn: dlib CNN (finds more faces, ~70x slower on CPU); '
                             'none: centre square, for inputs already cropped (default: %(default)s)')
    parser.add_argument('--group-by', default='file', metavar='file|video|regex:PATTERN',
                        help='what must stay in one split: each source file (default); the folder of an '
                             "image (a video's frames) or the video file; or the first capture group of "
                             'PATTERN searched in the path relative to SRC. Frames of a video always stay '
                             'together')
    add_seed_arg(parser, 'seed of the split')
    add_workers_arg(parser, 'worker processes, at least 1')
    parser.add_argument('--landmarks', action='store_true',
                        help=f'also find the 68 face landmarks of every crop into OUT/NAME/{LANDMARKS_FILE} '
                             '(for train_main.py --fakes self-blend; python -m fmd.data.landmarks adds them '
                             'to any dataset later)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing OUT/NAME prepared with other arguments or sources')
    add_progress_arg(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; bad values end with a one-line usage error (exit 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out is None and args.out_positional is None:
        parser.error('the data root to write into is missing: give --out DIR (or SRC OUT)')
    if args.out is not None and args.out_positional is not None and args.out != args.out_positional:
        parser.error(f'OUT {args.out_positional} and --out {args.out} differ; give one of them')
    args.out = args.out if args.out is not None else args.out_positional
    args.workers = resolve_workers(args.workers)
    problems = []
    fractions = args.split
    if any(not math.isfinite(f) or f < 0 for f in fractions) or \
            not math.isclose(sum(fractions), 1, abs_tol=1e-6):
        problems.append('--split needs three fractions >= 0 that sum to 1, got '
                        + ' '.join(map(str, fractions)))
    elif args.split[0] == 0:
        problems.append('--split needs a train fraction above 0')
    if args.frames_per_video < 1:
        problems.append('--frames-per-video must be at least 1')
    if not math.isfinite(args.margin) or args.margin <= 0:
        problems.append('--margin must be above 0')
    if args.size < 8:
        problems.append('--size must be at least 8')
    if args.workers < 1:
        problems.append('--workers must be at least 1')
    if not NAME_PATTERN.fullmatch(args.name):
        problems.append(f'--name must be a plain folder name (letters, digits, _ . -), not {args.name!r}')
    if problems:
        parser.error('; '.join(problems))
    return args


def summary_lines(rows: Sequence[Mapping], skipped: Sequence[tuple[str, str]], out: Path) -> list[str]:
    """One line per split and class (images, groups, sources), then the skipped inputs by reason."""
    lines = []
    for split in SPLITS:
        for label, class_name in enumerate(CLASSES):
            mine = [r for r in rows if r['split'] == split and int(r['label']) == label]
            lines.append(f'{split:5} {class_name}: {len(mine):6d} images from '
                         f'{len({r["source"] for r in mine}):6d} sources in '
                         f'{len({r["group"] for r in mine}):6d} groups')
    reasons = Counter(re.sub(r' in frame \d+$', ' (video frames)', reason.split(':')[0])
                      for _, reason in skipped)
    listed = ', '.join(f'{reason} {n}' for reason, n in sorted(reasons.items()))
    lines.append(f'skipped: {len(skipped)} ({listed or "none"}), listed in {out / SKIPPED_NAME}')
    return lines


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM as SystemExit, so the finally blocks remove the build folder of a killed run."""
    raise SystemExit(128 + signum)


def _add_landmarks(out: Path, args: argparse.Namespace) -> bool:
    """--landmarks: find the landmarks of the finished dataset; False when interrupted (exit 130)."""
    try:
        landmarks, errors = add_landmarks(out, args.workers, not args.no_progress,
                                          log=lambda line: print(line, file=sys.stderr))
    except KeyboardInterrupt:
        print(f'prepare_faces: interrupted; the dataset is complete, the landmarks found so far are in '
              f'{out / LANDMARKS_FILE} (rerun to finish them)', file=sys.stderr)
        return False
    print(landmarks_summary(landmarks, errors, out / LANDMARKS_FILE)[-1])
    return True


def main(argv: list[str] | None = None) -> int:
    """Prepare the dataset; prints the summary and returns the exit status."""
    args = parse_args(argv)
    from fmd.prepare.build import prepare  # after parsing: --help and usage errors load no crop code

    src, out_root = Path(args.src), Path(args.out)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so a killed run removes its build folder
    start = time.perf_counter()
    try:
        if not src.is_dir():
            raise PrepareError(f'SRC {src} is not a folder' if src.exists() else f'SRC {src} does not exist')
        if any((out_root / args.name).resolve().is_relative_to((src / c).resolve()) for c in CLASSES):
            raise PrepareError(f'OUT/NAME {out_root / args.name} lies inside SRC/real or SRC/fake; '
                               'write it elsewhere')
        face_crop.get_detector(args.detector)  # a missing package fails here, before any work
        out, rows, skipped = prepare(src, out_root, args.name, args, progress=not args.no_progress)
    except PrepareError as error:  # the arguments or SRC: a usage error
        print(f'error: {error}', file=sys.stderr)
        return EXIT_USAGE
    except (RuntimeError, ImportError, OSError) as error:
        print(f'error: {error_line(error, writing=out_root / args.name)}', file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print('prepare_faces: interrupted; nothing was written', file=sys.stderr)
        return 130
    for line in summary_lines(rows, skipped, out):
        print(line)
    if args.landmarks and not _add_landmarks(out, args):
        return 130
    print(f'prepare_faces: {len(rows)} images in {out} ({time.perf_counter() - start:.1f}s); '
          f'use --data-root {out_root} -d {args.name}', file=sys.stderr)
    return 0


def entry() -> None:
    """The console script and `python -m fmd.prepare`."""
    sys.exit(main())


if __name__ == '__main__':
    entry()
