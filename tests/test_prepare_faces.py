"""face_crop.py and fmd.prepare: boxes, crops, frames, layout, leak-free splits, reuse, interrupts."""
from __future__ import annotations

import csv
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import faces_dataset
from fmd.data import face_crop
from fmd.data.face_crop import FaceBox
from fmd.prepare import cli as prepare_faces
from fmd.prepare import crops, sources, splits
from helpers import (
    CANVAS,
    FACE_CENTRE,
    FACE_SIZE,
    PROJECT_ROOT,
    pasted,
    run_script,
    script_command,
    write_video,
)

VIDEO_FRAMES = 10
FRAMES_PER_VIDEO = 4
EXPECTED_FRAMES = [1, 3, 6, 8]  # centres of 4 equal parts of 10 frames: (2i + 1) * 10 // 8


# Image inputs: path -> (offset, scale, canvas, swap). Names carry an identity for --group-by regex.
IMAGES = {
    'real/id01/a.png': ((100, 50), 1.0, CANVAS, False),
    'real/id01/b.jpg': ((-150, 60), 0.9, CANVAS, False),  # the face near the left border
    'real/id02_a.png': ((20, 80), 1.0, CANVAS, False),
    'real/id03_a.webp': ((120, 30), 1.0, CANVAS, False),
    'real/id04_a.bmp': ((50, 0), 0.9, CANVAS, False),
    'real/id05_big.jpeg': ((100, 100), 2.0, (1300, 900), False),  # detected on a downscaled copy
    'fake/id01_swap.png': ((110, 40), 1.0, CANVAS, True),
    'fake/id02_swap.png': ((60, 70), 0.9, CANVAS, True),
    'fake/x/id03_swap.png': ((128, 20), 1.0, CANVAS, True),
    'fake/id04_swap.jpg': ((10, 10), 1.0, CANVAS, True),
    'fake/id05_swap.png': ((70, 60), 1.1, CANVAS, True),
}
VIDEOS = {'real/id06_clip.mp4': False, 'fake/id06_clip.mp4': True}
SKIPPED = {  # source -> start of the reason
    'real/broken.jpg': 'unreadable: ',
    'fake/broken.mp4': 'unreadable: ',
    'fake/noise.png': 'no face',
    'real/notes.txt': 'unsupported file type',
}


@pytest.fixture(scope='module')
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SRC with real/ and fake/: pasted faces, two videos, a corrupt image and video, noise, a text file."""
    root = tmp_path_factory.mktemp('src')
    for rel, (offset, scale, canvas, swap) in IMAGES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pasted(offset, scale, canvas, swap)[0]).save(root / rel, quality=95)
    for rel, swap in VIDEOS.items():
        write_video(root / rel, [pasted((20 * i - 100, 40), 1.0, (480, 360), swap)[0]
                                 for i in range(VIDEO_FRAMES)])
    (root / 'real/broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
    (root / 'fake/broken.mp4').write_bytes(os.urandom(2000))
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / 'fake/noise.png')
    (root / 'real/notes.txt').write_text('not an image')
    (root / 'real/.DS_Store').write_bytes(b'\x00junk')
    return root


def prepare(src: Path, out: Path, *extra: str, name: str = 'faces') -> int:
    return prepare_faces.main([str(src), '--out', str(out), '--name', name, '--workers', '1',
                               '--no-progress', '--frames-per-video', str(FRAMES_PER_VIDEO), *extra])


@pytest.fixture(scope='module')
def prepared(src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT/faces prepared with the default detector, split and grouping."""
    out = tmp_path_factory.mktemp('out')
    assert prepare(src, out) == 0
    return out / 'faces'


def manifest(root: Path) -> list[dict[str, str]]:
    with open(root / 'MANIFEST.csv', newline='') as handle:
        return list(csv.DictReader(handle))


def file_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


# ----------------------------------------------------------------------------- face_crop

def test_square_box_applies_margin_on_the_longer_side_and_stays_inside() -> None:
    # 80x100 box centred at (140, 100): side round(1.3 * 100) = 130, corner (75, 35).
    assert face_crop.square_box(FaceBox(100, 50, 80, 100), 1.3, 640, 480) == FaceBox(75, 35, 130, 130)
    # Near the top-left corner the square is shifted inside, not shrunk.
    assert face_crop.square_box(FaceBox(0, 5, 100, 60), 1.5, 640, 480) == FaceBox(0, 0, 150, 150)
    # Near the bottom-right corner: side 120 ends at the border.
    assert face_crop.square_box(FaceBox(600, 440, 40, 40), 3.0, 640, 480) == FaceBox(520, 360, 120, 120)
    # Longer than the 100 px high image: it stays centred on the face (10 rows padded above and below)...
    assert face_crop.square_box(FaceBox(50, 10, 80, 80), 1.5, 640, 100) == FaceBox(30, -10, 120, 120)
    # ... unless that would leave image rows out: centred at y 10 it would start at -50, not -20.
    assert face_crop.square_box(FaceBox(50, 0, 80, 20), 1.5, 640, 100) == FaceBox(30, -20, 120, 120)


def test_crop_square_pads_with_black_and_resizes() -> None:
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    crop = face_crop.crop_square(image, FaceBox(-1, -1, 3, 3), 3)
    assert crop.dtype == np.uint8 and crop.shape == (3, 3, 3)
    assert (crop[0] == 0).all() and (crop[:, 0] == 0).all()
    assert (crop[1:, 1:] == image[:2, :2]).all()
    big = face_crop.crop_square(np.full((10, 10, 3), 200, np.uint8), FaceBox(0, 0, 10, 10), 20)
    assert big.shape == (20, 20, 3) and (big == 200).all()


def test_none_detector_keeps_a_256_image_unchanged() -> None:
    image = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    crop, box = face_crop.crop_face(image, 'none', margin=1.3, size=256)
    assert box == FaceBox(0, 0, 256, 256) and np.array_equal(crop, image)
    assert face_crop.centre_box(300, 200) == FaceBox(50, 0, 200, 200)
    assert face_crop.get_detector('none')(image) == [FaceBox(0, 0, 256, 256)]


def test_extensions_match_the_dataset_loader_and_no_torch_import() -> None:
    assert face_crop.IMAGE_EXTENSIONS == faces_dataset.IMAGE_EXTENSIONS
    assert set(face_crop.VIDEO_EXTENSIONS) == {'.mp4', '.avi', '.mov', '.mkv', '.webm'}
    code = 'import sys, fmd.prepare.cli; sys.exit("torch" in sys.modules)'
    assert subprocess.run([sys.executable, '-c', code], cwd=PROJECT_ROOT, timeout=60).returncode == 0


def test_detector_none_end_to_end_keeps_cropped_inputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    pixels = {}
    for class_name in ('real', 'fake'):
        (tmp_path / 'src' / class_name).mkdir(parents=True)
        for i in range(5):
            pixels[f'{class_name}/{i}.png'] = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
            Image.fromarray(pixels[f'{class_name}/{i}.png']).save(tmp_path / 'src' / f'{class_name}/{i}.png')
    assert prepare(tmp_path / 'src', tmp_path / 'out', '--detector', 'none') == 0
    rows = manifest(tmp_path / 'out' / 'faces')
    assert len(rows) == 10
    for row in rows:
        assert (row['detector'], row['x'], row['y'], row['w'], row['h']) == ('none', '0', '0', '256', '256')
        output = np.asarray(Image.open(tmp_path / 'out' / 'faces' / row['path']))
        assert np.array_equal(output, pixels[row['source']])


def test_real_faces_alone_make_a_dataset_with_empty_fake_folders(tmp_path: Path) -> None:
    """SRC with real/ only (faces to train self-blends on): every split's fake/ exists and is empty."""
    rng = np.random.default_rng(3)
    (tmp_path / 'src' / 'real').mkdir(parents=True)
    for i in range(5):
        pixels = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / 'src' / 'real' / f'{i}.png')
    assert prepare(tmp_path / 'src', tmp_path / 'out', '--detector', 'none') == 0
    rows = manifest(tmp_path / 'out' / 'faces')
    assert len(rows) == 5 and {row['label'] for row in rows} == {'0'}
    for split in ('train', 'val', 'test'):
        assert list((tmp_path / 'out' / 'faces' / split / 'fake').iterdir()) == []


def test_unknown_detector_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown detector 'mtcnn'; choose one of hog, cnn, none"):
        face_crop.get_detector('mtcnn')
    assert face_crop.DEFAULT_DETECTOR in face_crop.DETECTORS
    assert face_crop.largest_face([FaceBox(0, 0, 5, 5), FaceBox(9, 9, 6, 6)]) == FaceBox(9, 9, 6, 6)
    assert face_crop.largest_face([]) is None


@pytest.mark.parametrize('detector', ['hog', 'cnn'])
def test_detectors_find_the_known_face(detector: str) -> None:
    offset = (40, 30) if detector == 'hog' else (-123, -33)  # cnn: a small image, it is slow
    image, (cx, cy) = pasted(offset, 1.0, CANVAS if detector == 'hog' else (200, 200))
    boxes = face_crop.get_detector(detector)(image)
    assert len(boxes) == 1
    box = boxes[0]
    assert abs(box.x + box.w / 2 - cx) < 15 and abs(box.y + box.h / 2 - cy) < 15
    assert 0.6 * FACE_SIZE < box.w < 1.3 * FACE_SIZE


def test_read_image_rgb_converts_modes_and_names_a_bad_file(tmp_path: Path) -> None:
    for mode in ('L', 'RGBA', 'P', 'CMYK', 'I;16'):
        path = tmp_path / f'{mode.replace(";", "")}.{"jpg" if mode == "CMYK" else "png"}'
        base = Image.new('RGB', (7, 5), (10, 20, 30))
        (base.convert('L').convert(mode) if mode == 'I;16' else base.convert(mode)).save(path)
        pixels = face_crop.read_image_rgb(path)
        assert pixels.shape == (5, 7, 3) and pixels.dtype == np.uint8, mode
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'nope')
    with pytest.raises(face_crop.InputReadError, match=r'bad\.png'):
        face_crop.read_image_rgb(bad)


def test_a_large_jpeg_is_read_reduced_and_cropped_as_from_the_whole_image(tmp_path: Path) -> None:
    # 1280 px: decoded at 1/2 (640 px). A face of ~440 px has a box of ~570 px, over 256 in the reduced
    # pixels: cut from them. A face of ~140 px is too small for the reduced copy: found and cut whole.
    for name, scale, offset in (('near.jpg', 4.6, (-400, 0)), ('far.jpg', 1.5, (400, 500))):
        pixels, (cx, cy) = pasted(offset, scale, (1280, 1280))
        Image.fromarray(pixels).save(tmp_path / name, quality=95)
        reduced, factor = face_crop.read_image_reduced(tmp_path / name)
        assert reduced.shape == (640, 640, 3) and factor == 0.5
        face = face_crop.image_face(tmp_path / name)
        whole = face_crop.read_image_rgb(tmp_path / name)
        assert max(abs(face.box.x + face.box.w / 2 - cx), abs(face.box.y + face.box.h / 2 - cy)) < 15 * scale
        from_whole = face_crop.crop_square(whole, face.box, 256).astype(np.float64)
        if name == 'near.jpg':
            assert face.scale == 0.5 and face.box.w > 512
            assert np.abs(face.crop - from_whole).mean() < 1.0  # grey levels
        else:
            assert face.scale == 1.0 and face.box.w < 256 and np.array_equal(face.crop, from_whole)
    png = tmp_path / 'near.png'  # not a JPEG: read whole
    Image.open(tmp_path / 'near.jpg').save(png)
    assert face_crop.read_image_reduced(png)[1] == 1.0


def test_read_video_frames_returns_the_evenly_spaced_frames(tmp_path: Path) -> None:
    # Frame i is a flat grey of level 20 + 4 * (i % 50); 300 frames, so far frames are reached by seeking.
    path = tmp_path / 'grey.avi'
    write_video(path, [np.full((48, 64, 3), 20 + 4 * (i % 50), np.uint8) for i in range(300)], 'MJPG')
    for n, expected in ((2, [75, 225]), (3, [50, 150, 250]), (1, [150])):
        frames = face_crop.read_video_frames(path, n)
        assert [index for index, _ in frames] == expected
        for index, frame in frames:
            assert frame.shape == (48, 64, 3) and abs(frame.mean() - (20 + 4 * (index % 50))) < 2.5
    assert face_crop.frame_indices(3, 8) == [0, 1, 2]
    with pytest.raises(face_crop.InputReadError, match=r'nothing\.mp4'):
        face_crop.read_video_frames(tmp_path / 'nothing.mp4', 4)


# ----------------------------------------------------------------------------- prepare_faces

def test_layout_manifest_and_png_size(prepared: Path) -> None:
    rows = manifest(prepared)
    with open(prepared / 'MANIFEST.csv', newline='') as handle:
        header = next(csv.reader(handle))
    assert header[:11] == ['path', 'label', 'split', 'group', 'source', 'frame', 'x', 'y', 'w', 'h',
                           'detector']
    expected_outputs = len(IMAGES) + len(VIDEOS) * FRAMES_PER_VIDEO
    assert len(rows) == expected_outputs
    on_disk = sorted(p.relative_to(prepared).as_posix() for p in prepared.rglob('*.png'))
    assert on_disk == sorted(r['path'] for r in rows)
    assert sorted(p.name for p in prepared.iterdir()) == ['MANIFEST.csv', 'PREPARE.json', 'skipped.csv',
                                                          'test', 'train', 'val']
    for row in rows:
        split, class_name, _ = row['path'].split('/')
        assert split == row['split'] and class_name == ('real', 'fake')[int(row['label'])]
        assert row['source'].startswith(class_name + '/') and row['detector'] == 'hog'
        with Image.open(prepared / row['path']) as image:
            assert (image.format, image.mode, image.size) == ('PNG', 'RGB', (256, 256))
    for split in ('train', 'val', 'test'):
        assert {r['label'] for r in rows if r['split'] == split} == {'0', '1'}


def test_crop_box_is_square_with_the_margin_around_the_known_face(prepared: Path) -> None:
    rows = {r['source']: r for r in manifest(prepared) if r['frame'] == ''}
    assert set(rows) == set(IMAGES)
    for rel, (offset, scale, canvas, swap) in IMAGES.items():
        _, (cx, cy) = pasted(offset, scale, canvas, swap)
        x, y, w, h = (int(rows[rel][k]) for k in 'xywh')
        assert w == h, rel
        assert abs(x + w / 2 - cx) < 15 * scale and abs(y + h / 2 - cy) < 15 * scale, rel
        assert 1.3 * 0.6 * FACE_SIZE * scale < w < 1.3 * 1.3 * FACE_SIZE * scale, rel


def test_png_is_the_box_of_the_source_resized(prepared: Path, src: Path) -> None:
    row = next(r for r in manifest(prepared) if r['source'] == 'real/id01/a.png')
    x, y, w, h = (int(row[k]) for k in 'xywh')
    expected = Image.open(src / row['source']).convert('RGB').crop((x, y, x + w, y + h)) \
        .resize((256, 256), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(Image.open(prepared / row['path'])), np.asarray(expected))


def test_frames_per_video_and_video_groups(prepared: Path) -> None:
    rows = manifest(prepared)
    for rel in VIDEOS:
        frames = [r for r in rows if r['source'] == rel]
        assert [int(r['frame']) for r in frames] == EXPECTED_FRAMES
        assert {r['group'] for r in frames} == {rel} and len({r['split'] for r in frames}) == 1
        for r in frames:  # the face moves 20 px right per frame
            cx = 20 * int(r['frame']) - 100 + FACE_CENTRE[0]
            assert abs(int(r['x']) + int(r['w']) / 2 - cx) < 15


def test_skipped_inputs_are_listed_with_reasons(prepared: Path) -> None:
    with open(prepared / 'skipped.csv', newline='') as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r['source'] for r in rows) == sorted(SKIPPED)
    for row in rows:
        assert row['reason'].startswith(SKIPPED[row['source']]), row
    assert not any(r['source'] in SKIPPED for r in manifest(prepared))


def _splits_of_groups(rows: list[dict[str, str]]) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for row in rows:
        groups.setdefault(row['group'], set()).add(row['split'])
    return groups


def test_no_group_in_two_splits_with_regex_groups(src: Path, prepared: Path, tmp_path: Path) -> None:
    assert all(len(s) == 1 for s in _splits_of_groups(manifest(prepared)).values())
    assert prepare(src, tmp_path, '--group-by', r'regex:(id\d+)', '--seed', '3') == 0
    rows = manifest(tmp_path / 'faces')
    skipped = (tmp_path / 'faces' / 'skipped.csv').read_text()
    assert 'real/broken.jpg,no group: the --group-by regex does not match the path' in skipped
    groups = _splits_of_groups(rows)
    assert sorted(groups) == [f'id0{i}' for i in range(1, 7)]
    assert all(len(s) == 1 for s in groups.values())
    # id01 holds two real photos and a fake: all three in one split.
    assert len({r['source'] for r in rows if r['group'] == 'id01'}) == 3


def test_group_of_each_mode() -> None:
    video = 'video'
    assert sources.group_of('real/v1/0001.png', 'image', 'file') == 'real/v1/0001.png'
    assert sources.group_of('real/v1/0001.png', 'image', video) == 'real/v1'
    assert sources.group_of('real/a/v1/0001.png', 'image', video) == 'real/a/v1'
    assert sources.group_of('real/loose.png', 'image', video) == 'real/loose.png'
    assert sources.group_of('fake/000_003.mp4', 'video', video) == 'fake/000_003.mp4'
    pattern = sources.parse_group_by(r'regex:/(\d{3})')
    assert sources.group_of('fake/000_003.mp4', 'video', pattern) == '000'
    assert sources.group_of('real/x.mp4', 'video', pattern) is None


def test_split_groups_follows_the_fractions_deterministically() -> None:
    weights = {f'g{i:02d}': 1 for i in range(20)}
    strata = {g: 'real' for g in weights}
    first = splits.split_groups(weights, strata, (0.6, 0.2, 0.2), seed=0)
    assert first == splits.split_groups(weights, strata, (0.6, 0.2, 0.2), seed=0)
    assert sorted(first.values()).count('train') == 12 and list(first.values()).count('val') == 4
    assert first != splits.split_groups(weights, strata, (0.6, 0.2, 0.2), seed=1)


def test_same_bytes_twice_and_with_two_workers(src: Path, prepared: Path, tmp_path: Path) -> None:
    assert prepare(src, tmp_path / 'again') == 0
    assert prepare_faces.main([str(src), str(tmp_path / 'two'), '--name', 'faces', '--workers', '2',
                               '--no-progress', '--frames-per-video', str(FRAMES_PER_VIDEO)]) == 0
    reference = file_digests(prepared)
    assert file_digests(tmp_path / 'again' / 'faces') == reference
    assert file_digests(tmp_path / 'two' / 'faces') == reference


def test_rerun_reuses_and_a_different_dataset_needs_overwrite(
        src: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    assert prepare(src, tmp_path) == 0
    before = file_digests(tmp_path / 'faces')
    inode = (tmp_path / 'faces' / 'MANIFEST.csv').stat().st_ino
    capsys.readouterr()
    assert prepare(src, tmp_path) == 0
    assert 'reusing complete' in capsys.readouterr().err
    assert (tmp_path / 'faces' / 'MANIFEST.csv').stat().st_ino == inode
    assert prepare(src, tmp_path, '--seed', '5') == 2
    assert 'pass --overwrite' in capsys.readouterr().err
    assert file_digests(tmp_path / 'faces') == before
    # With --overwrite a new split reuses the crops: no detection runs.
    monkeypatch.setattr(face_crop, 'face_box', lambda *a, **k: pytest.fail('detector ran'))
    assert prepare(src, tmp_path, '--seed', '5', '--overwrite') == 0
    after = manifest(tmp_path / 'faces')
    assert sorted(r['sha256'] for r in after) == sorted(
        v for k, v in before.items() if k.endswith('.png'))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


ORIGINAL_PROCESS_SOURCE = crops.process_source


def _die_on_id02(task: dict) -> tuple[list, list]:
    if 'id02_a' in task['source'].rel:
        os._exit(9)  # like a worker killed for memory
    return ORIGINAL_PROCESS_SOURCE(task)


def test_a_dead_worker_is_an_error_not_a_hang(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(crops, 'process_source', _die_on_id02)  # forked workers see it too
    argv = [str(src), str(tmp_path), '--name', 'faces', '--workers', '2', '--no-progress']
    assert prepare_faces.main(argv) == 1  # not a usage error: the run failed
    assert 'a worker process died' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_video_failing_half_way_leaves_no_stray_frames(src: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    real_face_box, video_calls = face_crop.face_box, []

    def crash_on_third_video_frame(image: np.ndarray, *args, **kwargs):
        if image.shape[:2] == (360, 480):  # the fixture's video frames
            video_calls.append(1)
            if len(video_calls) % FRAMES_PER_VIDEO == 3:
                raise RuntimeError('detector crashed')
        return real_face_box(image, *args, **kwargs)

    monkeypatch.setattr(face_crop, 'face_box', crash_on_third_video_frame)
    assert prepare(src, tmp_path) == 0
    root = tmp_path / 'faces'
    rows = manifest(root)
    assert not any(r['source'] in VIDEOS for r in rows)
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob('*.png'))
    assert on_disk == sorted(r['path'] for r in rows)
    skipped = (root / 'skipped.csv').read_text()
    for rel in VIDEOS:
        assert f'{rel},error: RuntimeError: detector crashed' in skipped


def test_overwrite_refuses_a_folder_of_other_files(src: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    (tmp_path / 'faces').mkdir()
    (tmp_path / 'faces' / 'thesis.tex').write_text('precious')
    assert prepare(src, tmp_path, '--overwrite') == 2
    assert 'did not write (thesis.tex)' in capsys.readouterr().err
    assert (tmp_path / 'faces' / 'thesis.tex').read_text() == 'precious'


def test_output_stems_are_unique_per_class_folder() -> None:
    entries = [('real/a.png', 0, 'image'), ('real/a.jpg', 0, 'image'), ('real/x/y.png', 0, 'image'),
               ('fake/a.png', 1, 'image'), ('fake/v.mp4', 1, 'video'), ('fake/v_frame000001.png', 1, 'image')]
    stems = sources._stems(entries)
    assert stems[2:4] == ['x__y', 'a']
    assert stems[0].startswith('a_') and stems[1].startswith('a_') and stems[0] != stems[1]
    assert stems[4] == 'v' and stems[5].startswith('v_frame000001_')


def _run(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, 'PYTHONPATH': str(PROJECT_ROOT), 'OMP_NUM_THREADS': '1'}
    return subprocess.Popen([*script_command('fmd.prepare'), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _default_sigint() -> None:
    """Ctrl-C at its default in the child even when the tests run as a background job: a
    non-interactive shell starts those with SIGINT ignored, and Python keeps an ignored SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize('signum, code', [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_leaves_no_dataset_and_no_temp_folder(src: Path, tmp_path: Path, signum: int,
                                                        code: int) -> None:
    many = tmp_path / 'many'
    for class_name in ('real', 'fake'):
        (many / class_name).mkdir(parents=True)
        for i in range(150):
            (many / class_name / f'{i:03d}.png').symlink_to(src / 'real/id02_a.png')
    out = tmp_path / 'out'
    process = _run(str(many), str(out), '--name', 'big', '--workers', '2', start_new_session=True,
                   preexec_fn=_default_sigint)
    deadline = time.monotonic() + 60
    while not any(out.glob('.big.tmp-*/*/*/*.png')) and time.monotonic() < deadline:  # the first crop
        time.sleep(0.05)
    assert process.poll() is None, 'the run ended before it could be interrupted'
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)  # like Ctrl-C: the whole process group
    else:
        process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert 'Traceback' not in stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize('args, message', [
    (['{missing}', '{out}', '--name', 'x'], 'error: SRC {missing} does not exist'),
    (['{empty}', '{out}', '--name', 'x'], 'must hold a real/ folder'),
    (['{src}', '{out}', '--name', 'x', '--split', '0.5', '0.5', '0.5'], '--split needs three fractions'),
    (['{src}', '{out}', '--name', 'x', '--group-by', 'regex:id'], 'needs a capture group'),
    (['{src}', '{out}', '--name', 'x', '--group-by', r'regex:(zz\d)'], 'matches no group in any'),
    (['{src}', '{out}', '--name', '../x'], '--name must be a plain folder name'),
    (['{src}', '{out}', '--name', 'x', '--detector', 'mtcnn'], "invalid choice: 'mtcnn'"),
])
def test_bad_arguments_are_one_line_errors(src: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / 'empty').mkdir()
    values = {'missing': tmp_path / 'missing', 'empty': tmp_path / 'empty', 'src': src, 'out': tmp_path / 'o'}
    process = _run(*(a.format(**values) for a in args))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert 'Traceback' not in stderr
    error_lines = [line for line in stderr.splitlines() if 'error:' in line]
    assert len(error_lines) == 1 and message.format(**values) in error_lines[0], stderr
    assert not (tmp_path / 'o' / 'x').exists()


def test_help_runs() -> None:
    process = _run('--help')
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and '--frames-per-video' in stdout and 'regex:PATTERN' in stdout


def test_custom_dataset_name_works_with_train_and_analysis(prepared: Path, tmp_path: Path) -> None:
    root = str(prepared.parent)
    run_script('train_main.py', '-d', 'faces', '-m', 'SimpleNet', '-e', '1', '--batch-size', '4',
               '--data-root', root, '--workers', '0', '--no-progress', cwd=tmp_path)
    checkpoint = tmp_path / 'checkpoints' / 'faces_SimpleNet_Adam.pt'
    assert checkpoint.is_file()
    run_script('numerical_analysis.py', '-m', 'SimpleNet', '--checkpoint', str(checkpoint), '-d', 'faces',
               '--data-root', root, '--workers', '0', cwd=tmp_path)
    assert (tmp_path / 'figures' / 'faces_SimpleNet_roc_curve.png').is_file()


def test_landmarks_flag_stores_the_points_of_every_crop(src: Path, prepared: Path, tmp_path: Path) -> None:
    from fmd.data.landmarks import read_landmarks

    assert prepare(src, tmp_path, '--landmarks') == 0
    root = tmp_path / 'faces'
    crops = {row['path'] for row in manifest(root)}
    landmarks = read_landmarks(root / 'landmarks.npz')
    assert set(landmarks.points) | set(landmarks.missing) == crops
    assert len(landmarks.points) >= len(crops) - 2  # every crop is the astronaut's face
    for path, points in landmarks.points.items():  # in the crop's own pixels, on the face
        assert points.shape == (68, 2) and (points >= 0).all() and (points < 256).all(), path
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == landmarks.sha256[path]
    assert prepare(src, tmp_path) == 0  # a rerun without the flag reuses the dataset, landmarks kept
    assert (root / 'landmarks.npz').is_file()
