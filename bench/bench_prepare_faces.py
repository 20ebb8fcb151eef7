"""fmd.prepare throughput: images/s and video frames/s with 1 and 2 (or more) workers, peak memory.

Each configuration runs prepare_faces.main() in a fresh child process on the same inputs, timed from
the call to its return (the detector's start-up included; the interpreter's start-up not), with the
CPU seconds it and its workers used, and the peak resident memory of that process and of its largest
worker. On a shared machine the wall-clock rate depends on the other load; crops per CPU second does
not, and is what one free core achieves. Inputs are generated: photos of the astronaut from
scikit-image pasted on textured 640x480 canvases (JPEG) and 640x360 videos of such frames, or --src
to time a real folder of images instead.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage.data import astronaut

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fmd.data.face_crop import DEFAULT_DETECTOR, DETECTORS

ROOT = Path(__file__).resolve().parents[1]

CHILD = '''
import json, resource, sys, time
sys.path.insert(0, {root!r})
from fmd.prepare import cli as prepare_faces
started = time.perf_counter()
status = prepare_faces.main({argv!r})
seconds = time.perf_counter() - started
own, workers = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({{'status': status, 'seconds': seconds,
                  'cpu_seconds': own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime,
                  'self_kb': own.ru_maxrss, 'children_kb': workers.ru_maxrss}}))
'''


def scene(rng: np.random.Generator, width: int, height: int,
          offset: tuple[int, int] | None = None) -> np.ndarray:
    """The astronaut's head and shoulders at a random place and scale on a textured background."""
    canvas = rng.normal(128, 30, (height // 8, width // 8, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(canvas).resize((width, height), Image.Resampling.BICUBIC)
    scale = rng.uniform(0.8, 1.1)
    photo = Image.fromarray(astronaut()[:320]).resize((round(512 * scale), round(320 * scale)))
    if offset is None:
        offset = (int(rng.integers(-120, width - 380)), int(rng.integers(-40, max(-39, height - 300))))
    image.paste(photo, offset)
    return np.asarray(image)


def make_inputs(folder: Path, images: int, videos: int, video_frames: int, seed: int) -> None:
    """folder/images/{real,fake}/*.jpg and folder/videos/{real,fake}/*.mp4, half real, half fake."""
    rng = np.random.default_rng(seed)
    for index in range(images):
        path = folder / 'images' / ('real', 'fake')[index % 2] / f'{index:05d}.jpg'
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene(rng, 640, 480)).save(path, quality=90)
    for index in range(videos):
        path = folder / 'videos' / ('real', 'fake')[index % 2] / f'{index:03d}.mp4'
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 25, (640, 360))
        start = int(rng.integers(-100, 100))
        for frame in range(video_frames):
            pixels = scene(np.random.default_rng([seed, index]), 640, 360, (start + 2 * frame, 20))
            writer.write(np.ascontiguousarray(pixels[:, :, ::-1]))
        writer.release()


def run_once(src: Path, out: Path, name: str, workers: int, args: argparse.Namespace) -> dict:
    """One prepare_faces.main() call in a child process: its result line plus the crop count."""
    argv = [str(src), '--out', str(out), '--name', name, '--workers', str(workers), '--no-progress',
            '--detector', args.detector, '--frames-per-video', str(args.frames_per_video)]
    done = subprocess.run([sys.executable, '-c', CHILD.format(root=str(ROOT), argv=argv)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f'error: prepare_faces failed on {src}:\n{done.stderr[-2000:]}')
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result['crops'] = len((out / name / 'MANIFEST.csv').read_text().splitlines()) - 1
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=200, help='generated photos (default: %(default)s)')
    parser.add_argument('--videos', type=int, default=8, help='generated videos (default: %(default)s)')
    parser.add_argument('--video-frames', type=int, default=250,
                        help='frames per generated video, 10 s at 25 fps (default: %(default)s)')
    parser.add_argument('--frames-per-video', type=int, default=8,
                        help='frames prepare_faces takes per video (default: %(default)s)')
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2],
                        help='worker counts to compare (default: 1 2)')
    parser.add_argument('--detector', default=DEFAULT_DETECTOR, choices=DETECTORS,
                        help='face detector (default: %(default)s)')
    parser.add_argument('--src', type=Path, default=None,
                        help='time this folder of real/ and fake/ images instead of the generated photos')
    parser.add_argument('--seed', type=int, default=0, help='seed of the generated inputs (default: 0)')
    args = parser.parse_args(argv)
    if min(args.workers) < 1 or args.images < 0 or args.videos < 0 or args.video_frames < 1:
        parser.error('--workers must be >= 1; --images and --videos >= 0; --video-frames >= 1')
    with tempfile.TemporaryDirectory(prefix='bench_prepare_faces_') as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        make_inputs(tmp_path, 0 if args.src else args.images, args.videos, args.video_frames, args.seed)
        print(f'inputs generated in {time.perf_counter() - started:.1f}s', file=sys.stderr)
        sets = [('images', args.src or tmp_path / 'images')] if args.src or args.images else []
        if args.videos:
            sets.append(('video frames', tmp_path / 'videos'))
        print(f'detector {args.detector}; {args.frames_per_video} frames per '
              f'{args.video_frames}-frame 640x360 video; photos 640x480 JPEG'
              + (f' (from {args.src})' if args.src else ''))
        print(f'load average before: {" ".join(f"{x:.1f}" for x in os.getloadavg())}')
        print('| input | workers | inputs | crops | seconds | crops/s | CPU s | crops per CPU s '
              '| peak RSS main | peak RSS worker |')
        print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
        for label, src in sets:
            inputs = sum(1 for c in ('real', 'fake') for p in (src / c).rglob('*') if p.is_file())
            for workers in args.workers:
                result = run_once(src, tmp_path / 'out', f'{label.split()[0]}_{workers}', workers, args)
                worker_kb = f'{result["children_kb"] / 1024:.0f} MiB' if workers > 1 else '-'
                crops, seconds, cpu = result['crops'], result['seconds'], result['cpu_seconds']
                print(f'| {label} | {workers} | {inputs} | {crops} | {seconds:.1f} | {crops / seconds:.1f} | '
                      f'{cpu:.1f} | {crops / cpu:.1f} | {result["self_kb"] / 1024:.0f} MiB | {worker_kb} |',
                      flush=True)
        print(f'load average after: {" ".join(f"{x:.1f}" for x in os.getloadavg())}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
