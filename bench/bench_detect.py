"""fmd.detect throughput on real photos: faces/s end to end.

At two image sizes, 1 and 2 workers, with and without --cam: faces/s, peak memory, and where the
time goes (decode, face finding, crop, model, picture).

Inputs: the first COUNT/2 real and COUNT/2 fake photos of ciplab_faces_300 (300x300 JPEG) and the same
photos upscaled (bicubic) to 1280x1280, a phone photo's scale, written as JPEG (quality 95) to a
temporary folder. The checkpoint is an untrained one of --model saved as train_main.py saves it (speed
does not depend on the weights), or --checkpoint.

End to end: each configuration runs fmd.detect.cli.main() in a fresh child process, torch imported
before the clock starts (a long job pays that once); the time includes loading the model, starting the
workers and writing every table and annotated picture. Peak RSS of the main process and of its largest
worker. Breakdown: each stage run alone in a fresh process on --stage-images photos, one thread
(torch.set_num_threads(1)): CPU milliseconds per input of one core (decode: as the root's fmd.detect
decodes, a large JPEG at a reduced scale where it does; crop: from those pixels).

--root times another checkout of the project (for a before/after comparison on one machine).
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

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path('/work/shared/data/ciplab_faces_300')

CHILD = '''
import json, resource, sys, time
sys.path.insert(0, {root!r})
import torch, torchvision  # noqa: F401 (imported before the clock: a long job pays it once)
from fmd.detect import cli
started = time.perf_counter()
status = cli.main({argv!r})
seconds = time.perf_counter() - started
own, workers = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({{'status': status, 'seconds': seconds,
                  'cpu_seconds': own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime,
                  'main_cpu_seconds': own.ru_utime + own.ru_stime,
                  'self_kb': own.ru_maxrss, 'children_kb': workers.ru_maxrss}}))
'''


def make_inputs(src: Path, folder: Path, count: int, side: int) -> list[Path]:
    """count photos (half real, half fake, the first of each by name) into folder, resized to side."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    chosen = [p for c in ('real', 'fake') for p in sorted((src / c).iterdir())[:count // 2]]
    written = []
    for path in chosen:
        target = folder / f'{path.parent.name}_{path.stem}.jpg'
        with Image.open(path) as image:
            image = image.convert('RGB')
            if image.size != (side, side):
                image = image.resize((side, side), Image.Resampling.BICUBIC)
            image.save(target, quality=95)
        written.append(target)
    return written


def make_checkpoint(model: str, path: Path, root: Path) -> None:
    """An untrained checkpoint of `model` as train_main.py saves it (`model` and `model_name`)."""
    code = (f'import sys, torch; sys.path.insert(0, {str(root)!r}); '
            'from fmd.core.registry import build_model; torch.manual_seed(0); '
            f'torch.save({{"model": build_model({model!r}, pretrained=False).state_dict(), '
            f'"model_name": {model!r}}}, {str(path)!r})')
    subprocess.run([sys.executable, '-c', code], check=True, env={**os.environ, 'XCEPTION_WEIGHTS': 'none'})


def run_once(folder: Path, out: Path, checkpoint: Path, workers: int, cam: bool, root: Path) -> dict:
    """fmd.detect.cli.main() on folder in a child process: its timing line and the faces scored."""
    argv = [str(folder), '--checkpoint', str(checkpoint), '--out', str(out), '--workers', str(workers),
            '--no-progress', *(['--cam'] if cam else [])]
    done = subprocess.run([sys.executable, '-c', CHILD.format(root=str(root), argv=argv)], cwd=root,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, 'XCEPTION_WEIGHTS': 'none'})
    if done.returncode != 0:
        sys.exit(f'error: fmd.detect failed on {folder}:\n{done.stderr[-2000:]}')
    result = json.loads(done.stdout.strip().splitlines()[-1])
    summary = json.loads((out / 'summary.json').read_text())
    result['faces'] = sum(row['faces'] for row in summary)
    result['inputs'] = len(summary)
    return result


def breakdown(paths: list[Path], checkpoint: Path, cam: bool, root: Path) -> dict[str, float]:
    """CPU seconds per input of each stage on one thread, stage by stage over the same photos."""
    code = f'''
import json, sys, tempfile, time
sys.path.insert(0, {str(root)!r})
import torch
torch.set_num_threads(1)
from pathlib import Path
from fmd.core.registry import grad_cam_layer
from fmd.data import face_crop
from fmd.detect import cli
from fmd.detect.draw import PictureWriter
from fmd.detect.inputs import CropSettings, Input, find_faces
from fmd.training.checkpoints import load_trained_model
paths = {[str(p) for p in paths]!r}
device = torch.device('cpu')
model = load_trained_model({str(checkpoint)!r}, device)
face_crop.get_detector('hog')
times = {{}}
def timed(name, function):
    started = time.process_time()
    value = function()
    times[name] = (time.process_time() - started) / len(paths)
    return value
read = getattr(face_crop, 'read_image_reduced', lambda p: (face_crop.read_image_rgb(p), 1.0))
images = timed('decode', lambda: [read(p)[0] for p in paths])  # a large JPEG reduced, where the root does
boxes = timed('find face', lambda: [face_crop.face_box(i)[0] for i in images])
found = [(i, b) for i, b in zip(images, boxes) if b is not None]
crops = timed('crop', lambda: [face_crop.crop_square(i, b, 256) for i, b in found])
cli.score_crops(model, crops[:2], device=device)  # warm-up
timed('model', lambda: cli.score_crops(model, crops, device=device))
settings = CropSettings(previews=True)
found = [find_faces(Input(p, 'image'), settings) for p in paths]
with tempfile.TemporaryDirectory() as tmp:
    writer = PictureWriter(Path(tmp), {{p: Path(p).stem + '.png' for p in paths}}, (0.5, 'given'), model,
                           grad_cam_layer(model)[1] if {cam!r} else None)
    def pictures():
        cams = [None] * len(found)
        if hasattr(writer, 'cams'):  # Grad-CAM in batches of faces, as fmd.detect draws them
            shown = [[x.crop for x, _ in writer.shown(f, [0.5] * len(f.faces))[1]] if f.previews else []
                     for f in found]
            cams = writer.cams(shown, 32)
        return [writer.save(f, [0.5] * len(f.faces), 0.5 if f.faces else None, 'fake',
                            *([] if c is None else [c])) for f, c in zip(found, cams)]
    timed('picture' + (' with --cam' if {cam!r} else ''), pictures)
print(json.dumps(times))
'''
    done = subprocess.run([sys.executable, '-c', code], cwd=root, capture_output=True, text=True, check=False,
                          env={**os.environ, 'XCEPTION_WEIGHTS': 'none', 'OMP_NUM_THREADS': '1'})
    if done.returncode != 0:
        sys.exit(f'error: the breakdown failed:\n{done.stderr[-2000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--src', type=Path, default=SOURCE, help='folder with real/ and fake/ photos '
                        '(default: %(default)s)')
    parser.add_argument('--count', type=int, default=300, help='photos, half real, half fake (default: 300)')
    parser.add_argument('--sizes', type=int, nargs='+', default=[300, 1280],
                        help='image sides to time (default: 300 1280; 300 is the photos as they are)')
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2], help='default: 1 2')
    parser.add_argument('--cam', choices=('no', 'yes', 'both'), default='both',
                        help='time without --cam, with it, or both (default: both)')
    parser.add_argument('--model', default='BonusNet',
                        help='untrained model to score with (default: %(default)s)')
    parser.add_argument('--checkpoint', type=Path, default=None, help='a checkpoint instead of --model')
    parser.add_argument('--stage-images', type=int, default=40,
                        help='photos the breakdown times each stage on (default: 40; 0: no breakdown)')
    parser.add_argument('--root', type=Path, default=ROOT, help='checkout of the project to time '
                        '(default: this one)')
    args = parser.parse_args(argv)
    cams = {'no': [False], 'yes': [True], 'both': [False, True]}[args.cam]
    with tempfile.TemporaryDirectory(prefix='bench_detect_') as tmp:
        tmp_path = Path(tmp)
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = tmp_path / f'{args.model}.pt'
            make_checkpoint(args.model, checkpoint, args.root)
        print(f'{args.root}: fmd.detect, detector hog, {checkpoint.name}; {args.count} photos of {args.src}')
        print(f'load average before: {" ".join(f"{x:.1f}" for x in os.getloadavg())}')
        print('| size | workers | --cam | inputs | faces | seconds | faces/s | CPU s (main) '
              '| faces per CPU s | peak RSS main | peak RSS worker |')
        print('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|')
        inputs = {}
        for side in args.sizes:
            inputs[side] = make_inputs(args.src, tmp_path / f'photos_{side}', args.count, side)
            for cam in cams:
                for workers in args.workers:
                    out = tmp_path / f'out_{side}_{workers}_{cam}'
                    result = run_once(tmp_path / f'photos_{side}', out, checkpoint, workers, cam, args.root)
                    faces, seconds = result['faces'], result['seconds']
                    cpu, main_cpu = result['cpu_seconds'], result['main_cpu_seconds']
                    print(f'| {side} | {workers} | {"yes" if cam else "no"} | {result["inputs"]} | {faces} | '
                          f'{seconds:.1f} | {faces / seconds:.1f} | {cpu:.1f} ({main_cpu:.1f}) | '
                          f'{faces / cpu:.1f} | {result["self_kb"] / 1024:.0f} MiB | '
                          f'{result["children_kb"] / 1024:.0f} MiB |', flush=True)
        print(f'load average after: {" ".join(f"{x:.1f}" for x in os.getloadavg())}')
        if args.stage_images:
            print(f'\nCPU ms per input, one thread, {args.stage_images} of the photos of each size:')
            rows = {}
            for side in args.sizes:
                sample = inputs[side][::max(1, len(inputs[side]) // args.stage_images)][:args.stage_images]
                for cam in cams:
                    rows.setdefault(side, {}).update(breakdown(sample, checkpoint, cam, args.root))
            stages = list(next(iter(rows.values())))
            print('| size | ' + ' | '.join(stages) + ' |')
            print('|---:|' + '---:|' * len(stages))
            for side, times in rows.items():
                print(f'| {side} | ' + ' | '.join(f'{1000 * times[s]:.0f}' for s in stages) + ' |')
    return 0


if __name__ == '__main__':
    started = time.perf_counter()
    status = main()
    print(f'bench time {time.perf_counter() - started:.0f} s', file=sys.stderr)
    sys.exit(status)
