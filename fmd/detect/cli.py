"""Verdicts on new media: score any photo, folder or video with a trained detector.

`faces-detect photo.jpg clips/ --checkpoint checkpoints/ciplab_BonusNet_Adam.pt` crops the largest face
of each image and of evenly spaced video frames exactly as fmd.prepare does, scores every face with
the checkpoint's model (P(fake), through inference.predict), and writes faces.csv, summary.csv,
summary.json and annotated pictures to out/detect/. A video's score is the mean over its frames' faces.
The verdict threshold is the checkpoint's validation EER threshold (train_main.py stores it; 0.5 for a
checkpoint without one) unless --threshold gives another. Rows are appended as inputs finish, so an
interrupted run keeps them and `--resume` scores only the rest (fmd.detect.journal).
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from common import OUTPUT_DIR
from fmd.core.cli import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PARTIAL,
    MAX_BATCH_SIZE,
    MAX_CROP_SIZE,
    MAX_FRAMES_PER_VIDEO,
    WORKERS_PER_CORE,
    UsageError,
    add_batch_size_arg,
    add_compile_arg,
    add_out_dir_arg,
    add_progress_arg,
    add_workers_arg,
    crop_size_int,
    frames_per_video_int,
    max_workers,
    positive_float,
    resolve_workers,
    run_cli,
    unit_interval,
    usable_cores,
)
from fmd.core.devices import pick_device
from fmd.core.runs import VAL_THRESHOLD_KEY
from fmd.data import face_crop
from fmd.detect.inputs import CropSettings, DetectInputError, FoundFaces, found_faces, list_inputs
from fmd.detect.journal import ANNOTATED_DIR, RunFolder, whole_rows
from fmd.detect.outputs import SUMMARY_COLUMNS, SUMMARY_CSV, annotated_names, stdout_table, verdict_counts
from fmd.detect.results import DetectResult, FaceScore, file_stamp, verdict_of

if TYPE_CHECKING:  # torch and the modules importing it load on first use: --help stays quick
    import torch
    from torch import nn

    from fmd.detect.draw import PictureWriter

DEFAULT_OUT = Path(OUTPUT_DIR) / 'detect'
DEFAULT_THRESHOLD = 0.5  # for a checkpoint that stores no validation EER threshold
THRESHOLD_SOURCES = {'checkpoint': f"the checkpoint's validation EER threshold ({VAL_THRESHOLD_KEY})",
                     'given': 'given (--threshold)',
                     'default': f'the default: the checkpoint stores no {VAL_THRESHOLD_KEY}'}
DEFAULT_FRAMES_PER_VIDEO = 16
DEFAULT_BATCH_SIZE = 32


class CropsDataset:
    """Face crops (HxWx3 uint8 RGB) through TRANSFORM_TEST, as FacesDataset serves its files (a map-style
    dataset: DataLoader needs only __len__ and __getitem__)."""

    def __init__(self, crops: Sequence[np.ndarray]):
        self.crops = crops

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """(normalised 3xHxW tensor, dummy label 0)."""
        from fmd.data.presets import TRANSFORM_TEST

        return TRANSFORM_TEST(Image.fromarray(self.crops[index])), 0


def score_crops(model: nn.Module, crops: Sequence[np.ndarray], *, device: torch.device,
                batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """P(fake) of each crop, in batches through inference.predict (float64)."""
    from fmd.core.inference import fake_probability, predict

    if not crops:
        return np.zeros(0)
    logits, _ = predict(model, CropsDataset(crops), device=device, batch_size=batch_size)
    return fake_probability(logits).numpy()


def check_settings(threshold: float | None, frames_per_video: int, detector: str, margin: float, size: int,
                   workers: int, batch_size: int) -> None:
    """DetectInputError naming every bad setting (the command line checks them the same way)."""
    problems = []
    if threshold is not None and not 0 <= threshold <= 1:
        problems.append(f'threshold must be in [0, 1], got {threshold}')
    if not 1 <= frames_per_video <= MAX_FRAMES_PER_VIDEO:
        problems.append(f'frames_per_video must be in 1..{MAX_FRAMES_PER_VIDEO}, got {frames_per_video}')
    if detector not in face_crop.DETECTORS:
        problems.append(f'detector must be one of {", ".join(face_crop.DETECTORS)}, got {detector!r}')
    if not (math.isfinite(margin) and margin > 0):
        problems.append(f'margin must be a finite number > 0, got {margin}')
    if not 8 <= size <= MAX_CROP_SIZE:
        problems.append(f'size must be in 8..{MAX_CROP_SIZE}, got {size}')
    if not 0 <= workers <= max_workers():
        problems.append(f'workers must be in 0..{max_workers()} ({WORKERS_PER_CORE} per usable core), '
                        f'got {workers}')
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        problems.append(f'batch_size must be in 1..{MAX_BATCH_SIZE}, got {batch_size}')
    if problems:
        raise DetectInputError('; '.join(problems))


def check_crop_size(model: nn.Module, model_name: str, size: int, checkpoint: str,
                    device: torch.device) -> None:
    """A model that cannot take size x size crops (SimpleNet and BonusNet need 256) is a named error."""
    import torch

    from fmd.data.presets import IMAGE_SIZE

    if size == IMAGE_SIZE:
        return
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, size, size, device=device))
    except RuntimeError as error:
        raise DetectInputError(f'{model_name} from {checkpoint} cannot score {size}x{size} crops; use '
                               f'--size {IMAGE_SIZE}, the size training uses') from error


def resolve_threshold(threshold: float | None, checkpoint: dict) -> tuple[float, str]:
    """(threshold, source): `threshold` when given, else the checkpoint's validation EER threshold, else
    DEFAULT_THRESHOLD (source a key of THRESHOLD_SOURCES)."""
    from fmd.core.checkpoint_files import stored_val_threshold

    if threshold is not None:
        return threshold, 'given'
    stored = stored_val_threshold(checkpoint)
    return (DEFAULT_THRESHOLD, 'default') if stored is None else (stored, 'checkpoint')


def _result(found: FoundFaces, p_fakes: np.ndarray, checkpoint: str, threshold: tuple[float, str],
            model_name: str, detector: str, stamp: tuple[int | None, int | None],
            parts: Sequence[dict[str, float] | None] | None = None) -> DetectResult:
    parts = [None] * len(found.faces) if parts is None else parts
    faces = [FaceScore(face.frame, face.box.x, face.box.y, face.box.w, face.box.h, float(p), part)
             for face, p, part in zip(found.faces, p_fakes, parts, strict=True)]
    p_fake = float(np.mean(p_fakes)) if faces else None
    verdict = 'error' if found.error else verdict_of(p_fake, threshold[0])
    return DetectResult(found.input.path, found.input.kind, faces, p_fake, verdict, found.error,
                        checkpoint, *threshold, model_name, detector, file_size=stamp[0],
                        file_mtime_ns=stamp[1])


def run_settings(checkpoint: str, threshold: tuple[float, str], settings: CropSettings, cam: bool,
                 mask: bool) -> dict:
    """What the rows of a run depend on (settings.json): --resume continues only a run with the same."""
    size, mtime_ns = file_stamp(checkpoint)
    return {'checkpoint': checkpoint, 'checkpoint_size': size, 'checkpoint_mtime_ns': mtime_ns,
            'threshold': threshold[0], 'threshold_source': threshold[1], 'detector': settings.detector,
            'margin': settings.margin, 'size': settings.size, 'frames_per_video': settings.frames_per_video,
            'cam': cam, 'mask': mask}


def detect_paths(paths: str | os.PathLike | Iterable[str | os.PathLike], checkpoint: str | os.PathLike, *,
                 threshold: float | None = None, frames_per_video: int = DEFAULT_FRAMES_PER_VIDEO,
                 detector: str = face_crop.DEFAULT_DETECTOR, margin: float = face_crop.DEFAULT_MARGIN,
                 size: int = face_crop.DEFAULT_SIZE, out: str | os.PathLike | None = None,
                 cam: bool = False, workers: int = 0, batch_size: int = DEFAULT_BATCH_SIZE,
                 device: torch.device | None = None, progress: bool = False,
                 compile: bool = False, mask: bool = False, resume: bool = False) -> list[DetectResult]:
    """Score every image and video under `paths` (one path or several); one DetectResult per input.

    With `out`, also writes faces.csv, summary.csv, summary.json, settings.json and annotated/*.jpg
    there (with Grad-CAM overlays when `cam`; with the mask head's overlays annotated/*_mask.png and
    the part scores in faces.csv when `mask`). One run at a time per `out` (fmd.detect.journal); each
    input's rows are appended as soon as it is scored, and `resume` keeps the rows of inputs that are
    unchanged since an earlier (interrupted) run with the same settings instead of scoring them again.
    An unreadable input is an 'error' result, never an exception.
    `threshold` None: the checkpoint's validation EER threshold (resolve_threshold).
    """
    from fmd.core.registry import canonical_model_name, grad_cam_layer
    from fmd.training.checkpoints import load_trained_model, read_checkpoint

    check_settings(threshold, frames_per_video, detector, margin, size, workers, batch_size)
    device = device or pick_device()
    checkpoint = os.fspath(checkpoint)
    saved = read_checkpoint(checkpoint)
    verdict_threshold = resolve_threshold(threshold, saved)
    inputs = list_inputs([paths] if isinstance(paths, str | os.PathLike) else paths)
    settings = CropSettings(detector, margin, size, frames_per_video, previews=out is not None)
    folder = None
    if out is not None:  # the lock first: a second run on the same folder stops before any work
        from fmd.detect.masks import PART_COLUMNS

        folder = RunFolder(out, run_settings(checkpoint, verdict_threshold, settings, cam, mask),
                           PART_COLUMNS if mask else ())
        folder.acquire()
    try:
        if verdict_threshold[1] == 'default':
            print(f'Note: {checkpoint} stores no {VAL_THRESHOLD_KEY} (trained before train_main.py stored '
                  f'it, or its val split lacks a class); verdicts use p_fake >= {DEFAULT_THRESHOLD}.')
        if compile and (cam or mask):
            print('Note: --compile is ignored with --cam and --mask (they hook into the eager model).')
        model = load_trained_model(checkpoint, device, compile=compile and not (cam or mask))
        masked = mask_head_of(model, saved, checkpoint) if mask else None
        model_name = canonical_model_name(saved['model_name'])
        check_crop_size(model, model_name, size, checkpoint, device)
        face_crop.get_detector(detector)  # a missing package fails here, before any work
        picture = None
        if folder is not None:  # pictures only with an --out folder
            from fmd.detect.draw import PictureWriter

            picture = PictureWriter(folder.out / ANNOTATED_DIR, annotated_names([i.path for i in inputs]),
                                    verdict_threshold, model, grad_cam_layer(model)[1] if cam else None)
        kept = folder.start([i.path for i in inputs], resume) if folder is not None else {}
        scorer = _Scorer(model, masked, device, batch_size, picture, folder,
                         (checkpoint, verdict_threshold, model_name, detector))
        todo = [item for item in inputs if item.path not in kept]
        stamps = {item.path: file_stamp(item.path) for item in todo}  # before reading: a later change shows
        with tqdm(total=len(inputs), initial=len(kept), desc=f'detect ({model_name})', unit='input',
                  disable=None if progress else True) as bar, model_threads(workers if todo else 0):
            for found in found_faces(todo, settings, workers):
                scorer.add(found, stamps[found.input.path])
                bar.update()
                bar.set_postfix(faces=scorer.faces, refresh=False)
            scorer.flush()
        results = [kept[item.path] if item.path in kept else scorer.results[item.path] for item in inputs]
        if folder is not None:
            folder.finish(results)
    finally:
        if folder is not None:
            folder.release()
    return results


@contextlib.contextmanager
def model_threads(workers: int) -> Iterator[None]:
    """While `workers` processes find faces, the model gets the other cores (at least one thread):
    torch's threads would otherwise compete with the workers for them."""
    import torch

    threads = torch.get_num_threads()
    if workers > 0:
        torch.set_num_threads(max(1, min(threads, usable_cores() - workers)))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _Scorer:
    """Scores the faces of finished inputs in batches of `batch_size` faces, then draws each input's
    picture and appends its rows (fmd.detect.journal) before the next batch."""

    def __init__(self, model: nn.Module, masked: nn.Module | None, device: torch.device, batch_size: int,
                 picture: PictureWriter | None, folder: RunFolder | None, identity: tuple) -> None:
        self.model, self.masked, self.device, self.batch_size = model, masked, device, batch_size
        self.picture, self.folder = picture, folder
        self.checkpoint, self.threshold, self.model_name, self.detector = identity
        self.pending: list[tuple[FoundFaces, tuple[int | None, int | None]]] = []
        self.results: dict[str, DetectResult] = {}
        self.faces = 0

    def add(self, found: FoundFaces, stamp: tuple[int | None, int | None]) -> None:
        """Queue one input; score the queue once it holds a batch of faces."""
        self.pending.append((found, stamp))
        self.faces += len(found.faces)
        if sum(len(f.faces) for f, _ in self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Score every queued face, then finish each queued input in order."""
        crops = [face.crop for found, _ in self.pending for face in found.faces]
        maps = parts = None
        if self.masked is None:
            p_fakes = score_crops(self.model, crops, device=self.device, batch_size=self.batch_size)
        else:
            from fmd.detect.masks import crop_part_scores, score_and_map

            p_fakes, maps = score_and_map(self.masked, crops, self.device, self.batch_size)
            parts = [crop_part_scores(crop, mask_map) for crop, mask_map in zip(crops, maps, strict=True)]
        done, start = [], 0
        for found, stamp in self.pending:
            end = start + len(found.faces)
            result = _result(found, p_fakes[start:end], self.checkpoint, self.threshold, self.model_name,
                             self.detector, stamp, parts[start:end] if parts is not None else None)
            done.append((found, start, end, result))
            start = end
        cams = self._cams(done)
        for (found, start, end, result), cam in zip(done, cams, strict=True):
            if self.picture is not None:
                result.annotated = self.picture.save(found, [f.p_fake for f in result.faces], result.p_fake,
                                                     result.verdict, cam)
                if maps is not None:
                    save_shown_masks(result, found, maps[start:end])
            if self.folder is not None:
                self.folder.append(result)
            self.results[result.input] = result
        self.pending.clear()

    def _cams(self, done: list[tuple[FoundFaces, int, int, DetectResult]]) -> list[list[np.ndarray] | None]:
        """--cam: every queued picture's Grad-CAM overlays, in batches; None per input otherwise."""
        if self.picture is None or self.picture.cam_layer is None:
            return [None] * len(done)
        shown = [[face.crop for face, _ in self.picture.shown(found, [f.p_fake for f in result.faces])[1]]
                 if found.previews else [] for found, _, _, result in done]
        return self.picture.cams(shown, self.batch_size)


def mask_head_of(model: nn.Module, saved: dict, checkpoint: str) -> nn.Module:
    """--mask: the model with the checkpoint's mask head (fmd.models.mask_head); a named error when
    the checkpoint has none."""
    from fmd.models.mask_head import attach_saved_head

    masked = attach_saved_head(getattr(model, '_orig_mod', model), saved)
    if masked is None:
        raise DetectInputError(f'{checkpoint} has no mask head: --mask needs a checkpoint trained with '
                               '--fakes self-blend --mask-loss-weight W (docs/masks.md)')
    return masked


def save_shown_masks(result: DetectResult, found: FoundFaces, maps: np.ndarray) -> None:
    """annotated/<name>_mask.png beside the annotated picture: the faces of the frame it shows."""
    from fmd.detect.masks import save_mask_picture

    if not result.faces:
        return
    shown = max(result.faces, key=lambda face: face.p_fake).frame
    keep = [i for i, face in enumerate(result.faces) if face.frame == shown]
    save_mask_picture(result.annotated, [found.faces[i].crop for i in keep], [maps[i] for i in keep],
                      [result.faces[i].parts for i in keep])


# ----------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    """The command line of faces-detect (light modules only: --help answers at once)."""
    images, videos = (', '.join(e[1:] for e in kind)
                      for kind in (face_crop.IMAGE_EXTENSIONS, face_crop.VIDEO_EXTENSIONS))
    parser = argparse.ArgumentParser(prog='faces-detect', description=__doc__.splitlines()[0], epilog=(
        f'INPUT: image files ({images}), video files ({videos}) or folders, searched recursively. '
        'Writes DIR/faces.csv, DIR/summary.csv, DIR/summary.json, DIR/settings.json and '
        'DIR/annotated/*.jpg; rows are appended as inputs finish, so an interrupted run keeps them '
        '(continue it with --resume); one run at a time per DIR. '
        'Exit code 0 when every input was read, 3 when some could not be (the others are scored), '
        '1 when none could, 2 for a usage error, 130/143 when interrupted.'))
    parser.add_argument('inputs', nargs='+', metavar='INPUT', help='image, video or folder')
    parser.add_argument('--checkpoint', required=True, metavar='PATH',
                        help='a checkpoint train_main.py wrote; the model is built from its model_name')
    add_out_dir_arg(parser, str(DEFAULT_OUT),
                    'faces.csv, summary.csv, summary.json, settings.json and annotated/*.jpg')
    parser.add_argument('--threshold', type=unit_interval, default=None,
                        help="verdict fake when p_fake >= this (default: the checkpoint's validation EER "
                             f'threshold, {VAL_THRESHOLD_KEY}; {DEFAULT_THRESHOLD} if it stores none)')
    parser.add_argument('--frames-per-video', type=frames_per_video_int, default=DEFAULT_FRAMES_PER_VIDEO,
                        help=f'evenly spaced frames scored per video, 1..{MAX_FRAMES_PER_VIDEO} '
                             '(default: %(default)s)')
    parser.add_argument('--detector', default=face_crop.DEFAULT_DETECTOR, choices=face_crop.DETECTORS,
                        help='face finder, as in fmd.prepare; none: the centre square, for faces '
                             'already cropped (default: %(default)s)')
    parser.add_argument('--margin', type=positive_float, default=face_crop.DEFAULT_MARGIN,
                        help='the face box is enlarged this many times (default: %(default)s)')
    parser.add_argument('--size', type=crop_size_int, default=face_crop.DEFAULT_SIZE,
                        help=f'side of the square crop the model sees, 8..{MAX_CROP_SIZE} '
                             '(default: %(default)s)')
    parser.add_argument('--cam', action='store_true',
                        help='draw a Grad-CAM overlay of each face crop beside the picture (on the layer '
                             'grad_cam_analysis.py maps: conv3 of SimpleNet and XceptionBased, the last '
                             'spatial convolution of BonusNet)')
    parser.add_argument('--mask', action='store_true',
                        help="draw the checkpoint's predicted manipulation map of each face in "
                             'annotated/<name>_mask.png and add its parts\' scores (left_eye, right_eye, '
                             'nose, mouth, rest) to faces.csv; needs a checkpoint trained with '
                             '--mask-loss-weight')
    parser.add_argument('--resume', action='store_true',
                        help='continue an interrupted run on the same --out: keep the rows of inputs whose '
                             'file is unchanged (path, size and mtime) and score only the others; needs the '
                             'same checkpoint and settings')
    add_workers_arg(parser, 'processes that read inputs and find faces, 0: in this process')
    add_batch_size_arg(parser, DEFAULT_BATCH_SIZE, 'faces per model batch')
    add_progress_arg(parser)
    add_compile_arg(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; bad values end with a one-line usage error (exit 2). --workers auto
    becomes its number (cli.resolve_workers)."""
    args = build_parser().parse_args(argv)
    args.workers = resolve_workers(args.workers)
    try:
        check_settings(args.threshold, args.frames_per_video, args.detector, args.margin, args.size,
                       args.workers, args.batch_size)
    except DetectInputError as error:
        raise UsageError(str(error)) from None
    return args


def main(argv: list[str] | None = None) -> int:
    """Score the inputs, write the outputs, print the table; the exit code: 0 when every input was
    read, 3 (partial failure) when some could not be and the others were, 1 when none could.
    Ctrl-C or SIGTERM says how many inputs are kept in the tables and the command that continues."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        results = detect_paths(args.inputs, args.checkpoint, threshold=args.threshold,
                               frames_per_video=args.frames_per_video, detector=args.detector,
                               margin=args.margin, size=args.size, out=args.out, cam=args.cam,
                               workers=args.workers, batch_size=args.batch_size,
                               progress=not args.no_progress, compile=args.compile, mask=args.mask,
                               resume=args.resume)
    except KeyboardInterrupt:
        print(interrupted_line(args, argv), file=sys.stderr)
        raise
    seconds = time.perf_counter() - start
    rows = [r.summary_row() for r in results]
    print('\n'.join(stdout_table(rows)))
    faces = sum(len(r.faces) for r in results)
    print(f'{len(rows)} inputs: {verdict_counts(rows)}; {faces} faces in {seconds:.1f} s '
          f'({faces / seconds:.2f} faces/s); wrote {args.out}')
    if results:
        print(f'threshold: p_fake >= {results[0].threshold:g} is fake, '
              f'{THRESHOLD_SOURCES[results[0].threshold_source]}')
    failed = [r for r in results if r.verdict == 'error']
    for result in failed:
        print(f'error: {result.input}: {result.message}', file=sys.stderr)
    if not failed:
        return EXIT_OK
    return EXIT_PARTIAL if len(failed) < len(results) else EXIT_ERROR


def interrupted_line(args: argparse.Namespace, argv: Sequence[str]) -> str:
    """What an interrupted run kept (the rows of summary.csv) and the command that continues it."""
    try:
        kept = len(whole_rows(Path(args.out) / SUMMARY_CSV, SUMMARY_COLUMNS) or [])
    except ValueError:
        kept = 0
    command = ['python', '-m', 'fmd.detect', *argv, *([] if args.resume else ['--resume'])]
    return (f'interrupted: {kept} of {len(list_inputs(args.inputs))} inputs are kept in '
            f'{Path(args.out) / SUMMARY_CSV}; continue with: {shlex.join(command)}')


def entry() -> None:
    """The console script and `python -m fmd.detect`."""
    sys.exit(run_cli(main))


if __name__ == '__main__':
    entry()
