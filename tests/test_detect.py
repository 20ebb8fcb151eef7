"""fmd.detect: inputs, scores equal to predict's, video means, verdicts, no-face and error rows, pictures."""
from __future__ import annotations

import csv
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faces_dataset import FacesDataset
from fmd.core.cli import run_cli
from fmd.core.inference import fake_probability, predict
from fmd.data.face_crop import FaceBox
from fmd.data.presets import TRANSFORM_TEST
from fmd.detect import cli as detect
from fmd.detect.draw import CAPTION_BACKGROUND, FAKE_COLOUR, REAL_COLOUR, annotate
from fmd.detect.inputs import DetectInputError, Face, Preview, list_inputs
from fmd.detect.outputs import FACE_COLUMNS, SUMMARY_COLUMNS
from fmd.training import performance
from fmd.training.checkpoints import load_trained_model
from helpers import pasted, script_command, script_env, untrained_checkpoints, write_video

CPU = torch.device('cpu')
VIDEO_FRAMES = 8
FRAMES_PER_VIDEO = 4  # frames 1, 3, 5, 7 of 8


@pytest.fixture(scope='module')
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Face photos (one in a sub-folder), a video of a moving face, a noise image, a corrupt image, a text
    file, crops/{real,fake}/ of 256x256 images and a 300x200 one."""
    root = tmp_path_factory.mktemp('media')
    (root / 'photos' / 'sub').mkdir(parents=True)
    Image.fromarray(pasted((100, 50))[0]).save(root / 'photos' / 'face.png')
    Image.fromarray(pasted((20, 40), 0.9)[0]).save(root / 'photos' / 'sub' / 'face2.jpg', quality=95)
    (root / 'photos' / '.hidden.png').write_bytes(b'not looked at')
    write_video(root / 'clip.mp4', [pasted((15 * i - 100, 40), 1.0, (480, 360))[0]
                                    for i in range(VIDEO_FRAMES)])
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(root / 'noise.png')
    (root / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
    (root / 'notes.txt').write_text('not an image')
    for label, count in (('real', 3), ('fake', 2)):
        (root / 'crops' / label).mkdir(parents=True)
        for index in range(count):
            pixels = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / 'crops' / label / f'{label}_{index}.png')
    Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(root / 'wide.png')
    return root


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A checkpoint of each untrained model, saved as train_main.py saves them (XceptionBased: random)."""
    return untrained_checkpoints(tmp_path_factory.mktemp('checkpoints'))


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline='') as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_list_inputs_searches_folders_sorted_and_flags_what_cannot_be_scored(media: Path) -> None:
    inputs = list_inputs([media / 'photos', media / 'clip.mp4', media / 'notes.txt', media / 'gone.png',
                          media / 'crops' / 'real', media / 'photos' / 'face.png'])
    assert [(Path(i.path).relative_to(media).as_posix(), i.kind, i.error.split(' (')[0]) for i in inputs] == [
        ('photos/face.png', 'image', ''), ('photos/sub/face2.jpg', 'image', ''), ('clip.mp4', 'video', ''),
        ('notes.txt', '', 'unsupported file type'), ('gone.png', 'image', 'no such file or folder'),
        ('crops/real/real_0.png', 'image', ''), ('crops/real/real_1.png', 'image', ''),
        ('crops/real/real_2.png', 'image', '')]  # a file found twice is scored once
    empty = media / 'empty'
    empty.mkdir(exist_ok=True)
    assert list_inputs([empty])[0].error.startswith('no images or videos')


@pytest.mark.parametrize('model_name', ['SimpleNet', 'BonusNet'])
def test_detector_none_scores_exactly_as_predict_over_the_dataset(
        media: Path, checkpoints: dict[str, Path], model_name: str) -> None:
    results = detect.detect_paths([media / 'crops'], checkpoints[model_name], detector='none', device=CPU,
                                  batch_size=4)
    model = load_trained_model(checkpoints[model_name], CPU)
    dataset = FacesDataset(str(media / 'crops'), TRANSFORM_TEST, image_size=256)
    expected = fake_probability(predict(model, dataset, device=CPU)[0]).numpy()
    paths = [str(dataset.image_path(i)[0]) for i in range(len(dataset))]
    by_input = {r.input: r for r in results}
    assert sorted(by_input) == sorted(paths)
    got = np.array([by_input[path].p_fake for path in paths])
    assert np.abs(got - expected).max() < 1e-5
    assert all(r.kind == 'image' and len(r.faces) == 1 and r.model == model_name for r in results)


def test_compiled_model_scores_as_the_eager_one_in_channels_last(
        media: Path, checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    real_compile = torch.compile  # inductor takes ~30 s per graph on CPU; 'eager' tests the wiring
    calls = []
    monkeypatch.setattr(performance, 'compiler_unavailable_reason', lambda device: None)
    monkeypatch.setattr(torch, 'compile',
                        lambda fn, **kwargs: calls.append(fn) or real_compile(fn, backend='eager'))
    eager = detect.detect_paths([media / 'crops'], checkpoints['BonusNet'], detector='none', device=CPU)
    assert calls == []
    compiled = detect.detect_paths([media / 'crops'], checkpoints['BonusNet'], detector='none', device=CPU,
                                   compile=True)
    assert len(calls) == 1
    assert np.abs(np.array([r.p_fake for r in compiled]) - [r.p_fake for r in eager]).max() < 1e-4
    model = load_trained_model(checkpoints['BonusNet'], CPU)
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_verdicts_follow_the_threshold(media: Path, checkpoints: dict[str, Path]) -> None:
    path = media / 'crops' / 'real' / 'real_0.png'
    (first,) = detect.detect_paths(path, checkpoints['BonusNet'], detector='none', device=CPU)  # one path
    p_fake = first.p_fake
    at = detect.detect_paths([path], checkpoints['BonusNet'], detector='none', device=CPU, threshold=p_fake)
    above = detect.detect_paths([path], checkpoints['BonusNet'], detector='none', device=CPU,
                                threshold=min(1.0, p_fake + 1e-6))
    assert (first.verdict, at[0].verdict, above[0].verdict) == ('fake' if p_fake >= 0.5 else 'real',
                                                                'fake', 'real')
    assert detect.verdict_of(None, 0.5) == 'no face'
    (wide,) = detect.detect_paths([media / 'wide.png'], checkpoints['BonusNet'], detector='none', device=CPU)
    assert (wide.faces[0].x, wide.faces[0].y, wide.faces[0].w, wide.faces[0].h) == (50, 0, 200, 200)


def test_cli_scores_photos_and_videos_and_lists_failures(media: Path, checkpoints: dict[str, Path],
                                                         tmp_path: Path) -> None:
    out = tmp_path / 'out'
    inputs = [media / 'photos', media / 'clip.mp4', media / 'noise.png', media / 'broken.jpg',
              media / 'notes.txt']
    result = subprocess.run(
        [*script_command('fmd.detect'), *map(str, inputs), '--checkpoint',
         str(checkpoints['SimpleNet']), '--out', str(out), '--frames-per-video', str(FRAMES_PER_VIDEO),
         '--threshold', '0.5', '--cam', '--workers', '2', '--no-progress'],
        cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr  # a partial failure: the other inputs were scored
    assert 'Traceback' not in result.stderr
    assert f'error: {media / "broken.jpg"}: cannot read it' in result.stderr
    assert f'error: {media / "notes.txt"}: unsupported file type' in result.stderr

    columns, summary = read_csv(out / 'summary.csv')
    assert tuple(columns[:6]) == SUMMARY_COLUMNS[:6] and columns[6:8] == ['checkpoint', 'threshold']
    assert json.loads((out / 'summary.json').read_text()) == [
        {**row, 'faces': int(row['faces']), 'p_fake': float(row['p_fake']) if row['p_fake'] else None,
         'threshold': float(row['threshold']),
         **{key: int(row[key]) if row[key] else None for key in ('file_size', 'file_mtime_ns')}}
        for row in summary]
    rows = {Path(row['input']).relative_to(media).as_posix(): row for row in summary}
    assert list(rows) == ['photos/face.png', 'photos/sub/face2.jpg', 'clip.mp4', 'noise.png', 'broken.jpg',
                          'notes.txt']
    face_columns, faces = read_csv(out / 'faces.csv')
    assert tuple(face_columns) == FACE_COLUMNS
    clip = [f for f in faces if f['input'] == str(media / 'clip.mp4')]
    assert [int(f['frame']) for f in clip] == [1, 3, 5, 7]
    assert float(rows['clip.mp4']['p_fake']) == pytest.approx(np.mean([float(f['p_fake']) for f in clip]),
                                                             abs=1e-6)
    for rel in ('photos/face.png', 'photos/sub/face2.jpg', 'clip.mp4'):
        row = rows[rel]
        assert row['kind'] == ('video' if rel.endswith('mp4') else 'image') and row['message'] == ''
        assert row['verdict'] == ('fake' if float(row['p_fake']) >= 0.5 else 'real')
        assert int(row['faces']) == (FRAMES_PER_VIDEO if rel == 'clip.mp4' else 1)
        with Image.open(row['annotated']) as picture:  # with --cam the overlay stands beside the picture
            assert picture.width > picture.height
    image_faces = [f for f in faces if f['input'] == str(media / 'photos/face.png')]
    assert len(image_faces) == 1 and image_faces[0]['frame'] == ''
    x, y, w = (int(image_faces[0][k]) for k in 'xyw')
    assert abs(x + w / 2 - (100 + 223)) < 20 and abs(y + w / 2 - (50 + 123)) < 20  # the astronaut's face
    assert (rows['noise.png']['verdict'], rows['noise.png']['faces'], rows['noise.png']['p_fake']) == \
        ('no face', '0', '')
    assert Path(rows['noise.png']['annotated']).is_file()
    for rel in ('broken.jpg', 'notes.txt'):
        assert rows[rel]['verdict'] == 'error' and rows[rel]['message'] and rows[rel]['annotated'] == ''
    assert rows['clip.mp4']['checkpoint'] == str(checkpoints['SimpleNet'])
    assert result.stdout.startswith('verdict')
    assert re.search(r'^6 inputs: \d fake, \d real, 1 no face, 2 error; 6 faces in ', result.stdout, re.M)

    # The same scores in this process, with no worker processes and nothing written.
    again = detect.detect_paths(inputs, checkpoints['SimpleNet'], frames_per_video=FRAMES_PER_VIDEO,
                                device=CPU)
    assert [r.verdict for r in again] == [row['verdict'] for row in summary]
    assert [round(f.p_fake, 6) for r in again for f in r.faces] == \
        pytest.approx([float(f['p_fake']) for f in faces], abs=1e-5)


def test_every_input_read_exits_0_and_xception_scores_a_photo_with_grad_cam(
        media: Path, checkpoints: dict[str, Path], tmp_path: Path) -> None:
    assert detect.main([str(media / 'crops' / 'real'), '--checkpoint', str(checkpoints['BonusNet']),
                        '--detector', 'none', '--out', str(tmp_path / 'bonus'), '--cam',
                        '--no-progress']) == 0
    assert len(list((tmp_path / 'bonus' / 'annotated').glob('*.jpg'))) == 3
    # Xception takes any crop size; 96 px keeps its forward and backward passes quick on a CPU.
    (result,) = detect.detect_paths([media / 'photos' / 'face.png'], checkpoints['XceptionBased'],
                                    out=tmp_path / 'xception', cam=True, size=96, device=CPU)
    assert result.model == 'XceptionBased' and len(result.faces) == 1 and result.verdict in ('fake', 'real')
    with Image.open(result.annotated) as picture:
        assert picture.width > picture.height


def test_bad_settings_and_checkpoints_are_named_errors(media: Path, checkpoints: dict[str, Path],
                                                       tmp_path: Path) -> None:
    path = [media / 'noise.png']
    with pytest.raises(DetectInputError, match='threshold must be in'):
        detect.detect_paths(path, checkpoints['SimpleNet'], threshold=1.5)
    with pytest.raises(DetectInputError, match=r'SimpleNet from .* cannot score 128x128 crops'):
        detect.detect_paths(path, checkpoints['SimpleNet'], size=128, device=CPU)
    with pytest.raises(FileNotFoundError, match=r'missing\.pt'):
        detect.detect_paths(path, tmp_path / 'missing.pt')
    with pytest.raises(SystemExit) as stop:
        run_cli(detect.main, [str(path[0]), '--checkpoint', str(media / 'notes.txt')])
    assert str(stop.value.code).startswith(f'error: {media / "notes.txt"} is not a readable checkpoint')


def test_pictures_use_colour_blind_safe_colours_and_show_the_grad_cam_scale() -> None:
    preview = Preview(None, np.full((200, 300, 3), 128, np.uint8), 1.0)
    crop = np.zeros((8, 8, 3), np.uint8)
    faces = [(Face(None, FaceBox(10, 10, 50, 50), crop), 0.9),
             (Face(None, FaceBox(100, 10, 50, 50), crop), 0.1)]
    plain = annotate(preview, faces, 'caption', 0.5)
    strip = plain.height - 200
    with_cam = annotate(preview, faces, 'caption', 0.5, [np.zeros((64, 64, 3), np.uint8)])
    assert with_cam.size == (300 + 200, 200 + 2 * strip)  # the overlay column, and a strip for its scale
    # Okabe-Ito vermillion (fake at the threshold) and blue (real), not red and green.
    assert plain.getpixel((10, strip + 35)) == FAKE_COLOUR == (213, 94, 0)
    assert plain.getpixel((100, strip + 35)) == REAL_COLOUR == (0, 114, 178)
    # The bar under the overlays runs through viridis, from its first colour to its last.
    y, x = 200 + strip + strip // 2, 300 + 4
    bar = []
    while with_cam.getpixel((x, y)) != CAPTION_BACKGROUND:
        bar.append(with_cam.getpixel((x, y)))
        x += 1
    assert len(bar) > 150 and (bar[0], bar[-1]) == ((68, 1, 84), (253, 231, 37))


FIND_FACES_AFTER_OPENCV = '''
import sys
import cv2
import numpy as np
from PIL import Image
from fmd.detect.inputs import CropSettings, found_faces, list_inputs

folder = sys.argv[1]
for i in range(4):
    Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(f'{folder}/{i}.png')
cv2.GaussianBlur(np.zeros((2000, 2000, 3), np.uint8), (9, 9), 0)  # OpenCV's thread pool runs here
found = list(found_faces(list_inputs([folder]), CropSettings(detector='none'), workers=2))
print('found', len(found), sum(len(f.faces) for f in found))
'''


def test_worker_processes_start_after_opencv_ran_in_this_process(tmp_path: Path) -> None:
    # A forked child of a process whose OpenCV pool has run used to hang in its first OpenCV call
    # (detect.main in-process, --workers auto); the timeout turns a hang into a failure.
    result = subprocess.run([sys.executable, '-c', FIND_FACES_AFTER_OPENCV, str(tmp_path)],
                            env=script_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['found', '4', '4']  # --detector none: the whole image is the face


RESUME_INPUTS = 96
RESUME_BATCH = 8  # rows are appended a batch at a time; a batch of 1 costs a forward pass per input


def test_an_interrupted_run_keeps_its_rows_and_resume_ends_with_the_same_tables(
        checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photos = tmp_path / 'photos'
    photos.mkdir()
    rng = np.random.default_rng(5)
    for index in range(RESUME_INPUTS):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(photos / f'{index:03d}.png')
    common = [str(photos), '--checkpoint', str(checkpoints['SimpleNet']), '--detector', 'none',
              '--workers', '0', '--batch-size', str(RESUME_BATCH), '--no-progress']
    whole, out = tmp_path / 'whole', tmp_path / 'cut'
    assert detect.main([*common, '--out', str(whole)]) == 0  # the uninterrupted run, in this process
    process = subprocess.Popen([*script_command('fmd.detect'), *common, '--out', str(out)], cwd=tmp_path,
                               env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    summary = out / 'summary.csv'
    deadline = time.monotonic() + 240
    while not (summary.is_file() and len(summary.read_text().splitlines()) > RESUME_BATCH):  # header, a batch
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGSTOP)  # paused mid-run (holding its lock), however fast this machine is
    try:
        with pytest.raises(SystemExit) as refused:  # one run per folder: a second one stops at once
            run_cli(detect.main, [*common, '--out', str(out)])
        process.send_signal(signal.SIGINT)  # Ctrl-C, delivered when it continues
    finally:
        process.send_signal(signal.SIGCONT)
    assert refused.value.code == (f'error: fmd.detect on {out} is already running in process {process.pid} '
                                  f'(lock {out / ".detect.lock"}); wait for it to finish or stop it first.')
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and 'Traceback' not in stderr, stderr
    kept = len(read_csv(summary)[1])
    assert RESUME_BATCH <= kept < RESUME_INPUTS
    command = shlex.join(['python', '-m', 'fmd.detect', *common, '--out', str(out), '--resume'])
    assert stderr.strip().splitlines()[-2:] == [
        f'interrupted: {kept} of {RESUME_INPUTS} inputs are kept in {summary}; continue with: {command}',
        'interrupted']
    assert not list(out.rglob('*.tmp')) and not (out / 'summary.json').exists()
    capsys.readouterr()
    assert detect.main([*common, '--out', str(out), '--resume']) == 0
    assert f'Resuming: {kept} of {RESUME_INPUTS} inputs are already scored' in capsys.readouterr().out
    for name in ('faces.csv', 'summary.csv', 'summary.json', 'settings.json'):
        assert (out / name).read_text().replace(str(out), str(whole)) == (whole / name).read_text(), name
    assert sorted(p.name for p in (out / 'annotated').iterdir()) == \
        sorted(p.name for p in (whole / 'annotated').iterdir())
    with pytest.raises(SystemExit) as other:  # the tables of one threshold are not continued with another
        run_cli(detect.main, [*common, '--out', str(out), '--resume', '--threshold', '0.3'])
    assert other.value.code == (
        f"error: --resume: {out} was scored with other settings (threshold 0.5 -> 0.3; threshold_source "
        "'default' -> 'given'); rerun with the flags of that run, or without --resume to start anew")
