"""Part localization (fmd/evaluate/localization.py): part codes, part regions, part scores, the AUC
summary worked out by hand, and fmd.evaluate's localization rows and table on a tiny coded dataset."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faces_dataset import FacesDataset
from fmd.core.registry import build_model
from fmd.data.landmarks import LANDMARKS_FILE, Landmarks, write_landmarks
from fmd.data.presets import TRANSFORM_TEST
from fmd.data.self_blend import PART_POINTS, PARTS
from fmd.evaluate import cli as evaluate
from fmd.evaluate.localization import (
    REST,
    coded_fakes,
    localization_summary,
    parse_part_code,
    part_regions,
    part_scores,
)
from fmd.models.mask_head import (
    MASK_HEAD_KEY,
    MASK_LAYERS_KEY,
    attach_saved_head,
    build_mask_head,
    predict_masks,
)
from helpers import make_split, write_image


def ellipse(centre: tuple[float, float], radii: tuple[float, float], n: int, start: float = 0.0,
            stop: float = 2 * np.pi, closed: bool = True) -> np.ndarray:
    """n points on an ellipse (closed: evenly round it; else from `start` to `stop` inclusive)."""
    angles = np.linspace(start, stop, n, endpoint=not closed)
    return np.stack([centre[0] + radii[0] * np.cos(angles), centre[1] + radii[1] * np.sin(angles)], axis=1)


def face_layout(shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """68 dlib-numbered points of a frontal face in a 256x256 crop, every part >= 18 px from the others."""
    line = lambda x0, x1, y, n: np.stack([np.linspace(x0, x1, n), np.full(n, y)], axis=1)  # noqa: E731
    points = np.concatenate([
        ellipse((128, 110), (95, 110), 17, np.pi, 0, closed=False),       # jaw 0-16, image left to right
        line(60, 110, 78, 5), line(146, 196, 78, 5),                      # brows 17-21, 22-26
        np.stack([np.full(4, 128.0), np.linspace(95, 140, 4)], axis=1),   # nose bridge 27-30
        line(113, 143, 150, 5),                                           # nostrils 31-35
        ellipse((85, 100), (15, 6), 6), ellipse((171, 100), (15, 6), 6),  # eyes 36-41, 42-47
        ellipse((128, 185), (30, 12), 12), ellipse((128, 185), (20, 5), 8)])  # mouth 48-59, 60-67
    points[:17, 1] = 110 + np.abs(points[:17, 1] - 110)  # the jaw below the eyes, not above
    return (points + shift).astype(np.float32)


# ----------------------------------------------------------------------------- part codes

@pytest.mark.parametrize(('name', 'replaced'), [
    ('easy_101_0010.png', {'nose'}),
    ('mid_7_1100.png', {'left_eye', 'right_eye'}),
    ('hard_56_0001.jpg', {'mouth'}),
    ('test/fake/easy_3_1111.PNG', {'left_eye', 'right_eye', 'nose', 'mouth'}),
    ('hard_2_0000.webp', set()),
])
def test_part_codes_are_read_in_left_eye_right_eye_nose_mouth_order(name: str, replaced: set[str]) -> None:
    assert parse_part_code(name) == {part: part in replaced
                                     for part in ('left_eye', 'right_eye', 'nose', 'mouth')}


@pytest.mark.parametrize('name', ['real_00001.png', 'fake_000.png', 'easy_101_0210.png', 'easy_101_001.png',
                                  'easy_101_00100.png', 'medium_1_0010.png', 'easy_x_0010.png',
                                  'easy_101_0010', 'easy_101_0010.png.bak.', 'xeasy_101_0010.png'])
def test_a_name_without_a_valid_code_has_none(name: str) -> None:
    assert parse_part_code(name) is None


# ----------------------------------------------------------------------------- regions and scores

def test_each_part_region_holds_its_landmarks_and_rest_the_jaw() -> None:
    points = face_layout()
    regions = part_regions(points)
    assert set(regions) == {*PARTS, REST}
    assert all(region.shape == (256, 256) and region.dtype == bool for region in regions.values())
    pixel = lambda index: (round(float(points[index, 1])), round(float(points[index, 0])))  # noqa: E731
    for part, indices in PART_POINTS.items():
        assert all(regions[part][pixel(i)] for i in indices), part
        assert not any(regions[REST][pixel(i)] for i in indices), part
    assert all(regions[REST][pixel(i)] for i in range(17))  # the jaw is face, but none of the parts
    union = np.logical_or.reduce([regions[part] for part in PARTS])
    assert not (regions[REST] & union).any()


def test_regions_follow_the_landmarks_and_the_image_size() -> None:
    moved = part_regions(face_layout(shift=(10, 5)), shape=(300, 280))
    still = part_regions(face_layout(), shape=(300, 280))
    assert moved['nose'].shape == (300, 280)
    np.testing.assert_array_equal(moved['nose'][5:, 10:], still['nose'][:-5, :-10])
    with pytest.raises(ValueError, match='68x2 landmarks'):
        part_regions(np.zeros((5, 2)))


def test_a_map_of_ones_on_the_nose_scores_the_nose_alone() -> None:
    regions = part_regions(face_layout())
    parts = [regions[part] for part in PARTS]
    assert not any((a & b).any() for i, a in enumerate(parts) for b in parts[i + 1:])  # the layout's premise
    scores = part_scores(regions['nose'].astype(np.float32), regions)
    assert scores == {'left_eye': 0.0, 'right_eye': 0.0, 'nose': 1.0, 'mouth': 0.0, REST: 0.0}


def test_a_64x64_map_is_resized_with_x_across_and_y_down() -> None:
    regions = part_regions(face_layout())
    left_half, top_half, constant = np.zeros((64, 64)), np.zeros((64, 64)), np.full((64, 64), 0.25)
    left_half[:, :32], top_half[:32] = 1.0, 1.0
    left = part_scores(left_half, regions)
    assert (left['left_eye'], left['right_eye']) == (1.0, 0.0)
    top = part_scores(top_half, regions)
    assert (top['left_eye'], top['right_eye'], top['mouth']) == (1.0, 1.0, 0.0)
    assert part_scores(constant, regions) == pytest.approx(dict.fromkeys((*PARTS, REST), 0.25))


# ----------------------------------------------------------------------------- the summary, by hand

CODES = [dict(zip(PARTS, bits, strict=True)) for bits in
         [(True, False, False, True), (False, True, True, True), (False, False, False, True),
          (True, True, False, True)]]
SCORES = [dict(zip(PARTS, values, strict=True)) for values in
          [(0.9, 0.1, 0.6, 0.3), (0.8, 0.8, 0.4, 0.3), (0.3, 0.9, 0.3, 0.7), (0.7, 0.5, 0.5, 0.2)]]


def test_summary_equals_the_hand_computed_aucs_and_hits() -> None:
    # left eye: replaced {0.9, 0.7} vs untouched {0.8, 0.3}: 3 of 4 pairs ordered; right eye: {0.8, 0.5} vs
    # {0.1, 0.9}: 2 of 4; nose: {0.4} vs {0.6, 0.3, 0.5}: 1 of 3; mouth: replaced in all four, no AUC.
    # Top part: fake 0 left eye (replaced), 1 a left/right eye tie (one replaced: 1/2), 2 right eye
    # (untouched), 3 left eye (replaced). Chance: replaced parts / 4 = 2/4, 3/4, 1/4, 3/4.
    summary = localization_summary(SCORES, CODES)
    assert {part: entry['auc'] for part, entry in summary['parts'].items()} == pytest.approx(
        {'left_eye': 0.75, 'right_eye': 0.5, 'nose': 1 / 3, 'mouth': None})
    counts = {part: (entry['n_replaced'], entry['n_untouched']) for part, entry in summary['parts'].items()}
    assert counts == {'left_eye': (2, 2), 'right_eye': (2, 2), 'nose': (1, 3), 'mouth': (4, 0)}
    assert summary['mean_part_auc'] == pytest.approx((0.75 + 0.5 + 1 / 3) / 3)
    assert summary['top_part_hit'] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert summary['top_part_chance'] == pytest.approx((2 + 3 + 1 + 3) / 16)
    assert summary['n_fakes'] == 4


def test_a_map_that_is_the_truth_ranks_perfectly_and_unscored_fakes_are_left_out() -> None:
    truth = [{part: float(code[part]) for part in PARTS} for code in CODES]
    summary = localization_summary([*truth, dict.fromkeys(PARTS, float('nan'))], [*CODES, CODES[0]])
    assert [summary['parts'][part]['auc'] for part in PARTS] == [1.0, 1.0, 1.0, None]
    assert (summary['mean_part_auc'], summary['top_part_hit'], summary['n_fakes']) == (1.0, 1.0, 4)
    with pytest.raises(ValueError, match='3 part scores for 4 part codes'):
        localization_summary(SCORES[:3], CODES)


# ----------------------------------------------------------------------------- fmd.evaluate

CODED = {'easy_1_1000.png': (0, 0), 'mid_2_0110.png': (4, -3), 'hard_3_0001.png': (-5, 2),
         'easy_4_1111.png': (2, 6), 'easy_5_0101.png': (-3, -4)}  # name -> landmark shift
UNCODED, UNMARKED = 'fake_000.png', 'mid_6_0011.png'  # no part code; a code but no landmarks


@pytest.fixture(scope='module')
def coded_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny/test: 3 noise reals, 7 noise fakes (5 coded with landmarks, 1 uncoded, 1 without landmarks) and
    tiny/landmarks.npz; plain/test: make_split's uncoded fakes."""
    root = tmp_path_factory.mktemp('localization_data')
    make_split(root / 'tiny' / 'test', 3, 0, seed=1)
    rng = np.random.default_rng(2)
    for name in [*CODED, UNCODED, UNMARKED]:
        write_image(root / 'tiny' / 'test' / 'fake' / name, rng)
    points = {f'test/fake/{name}': face_layout(shift) for name, shift in CODED.items()}
    points['test/real/real_000.png'] = face_layout()
    write_landmarks(Landmarks(points=points, sha256=dict.fromkeys(points, 'x')),
                    root / 'tiny' / LANDMARKS_FILE)
    make_split(root / 'plain' / 'test', 3, 2, seed=3)
    return root


@pytest.fixture(scope='module')
def coded_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained BonusNets saved as train_main.py saves them: one with a mask head, one without."""
    folder = tmp_path_factory.mktemp('localization_checkpoints')
    torch.manual_seed(0)
    masked = build_mask_head(build_model('BonusNet'))
    for module in masked.head.modules():  # an untrained head's BN statistics: make its map vary
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
    masked.head.refine[-1].weight.data.mul_(100)  # ... by more than float noise, so ranks are stable
    paths = {'mask': folder / 'tiny+self-blend+mask_BonusNet_Adam.pt',
             'plain': folder / 'tiny_BonusNet_Adam.pt'}
    torch.save({'model': masked.detector.state_dict(), 'model_name': 'BonusNet', 'dataset': 'tiny',
                'fakes': 'self-blend', MASK_HEAD_KEY: masked.head.state_dict(),
                MASK_LAYERS_KEY: list(masked.layers)}, paths['mask'])
    torch.save({'model': build_model('BonusNet').state_dict(), 'model_name': 'BonusNet', 'dataset': 'tiny'},
               paths['plain'])
    return paths


def run_evaluate(root: Path, checkpoints: dict[str, Path], out: Path, *flags: str) -> list[dict]:
    return evaluate.main(['--checkpoint', str(checkpoints['mask']), str(checkpoints['plain']),
                          '--data', str(root / 'tiny'), str(root / 'plain'), '--out', str(out),
                          '--figure', str(out / 'auc.png'), '--bootstrap', '20', '--workers', '0',
                          '--batch-size', '2', '--no-progress', *flags])


def independent_scores(checkpoint: Path, root: Path, method: str) -> list[dict[str, float]]:
    """Part scores of the coded fakes with landmarks, each map drawn on its own image (no batching)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from fmd.training.checkpoints import read_checkpoint
    from utils import load_trained_model

    model = load_trained_model(checkpoint, torch.device('cpu')).eval()
    masked = attach_saved_head(model, read_checkpoint(checkpoint)) if method == 'mask' else None
    dataset = FacesDataset(str(root / 'tiny' / 'test'), transform=TRANSFORM_TEST)
    scores = []
    for name in sorted(CODED):
        image = dataset[dataset.fake_image_names.index(name) + len(dataset.real_image_names)][0][None]
        if method == 'mask':
            prob_map = predict_masks(masked, image)[1][0, 0].numpy()
        else:
            with GradCAM(model=model, target_layers=[model.get_submodule(model.grad_cam_layer_name)]) as cam:
                prob_map = cam(input_tensor=image, targets=[ClassifierOutputTarget(1)])[0]
        scores.append(part_scores(prob_map, part_regions(face_layout(CODED[name]))))
    return scores


def test_evaluate_adds_localization_rows_and_a_table(coded_root: Path, coded_checkpoints: dict[str, Path],
                                                     tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = run_evaluate(coded_root, coded_checkpoints, tmp_path / 'out')
    err = capsys.readouterr().err
    assert 'note: no part localization on plain:test: no fake file name carries a part code' in err
    assert 'note: part localization on tiny:test leaves out 1 coded fakes without landmarks' in err
    stored = json.loads((tmp_path / 'out' / 'evaluation.json').read_text())
    by_pair = {(Path(row['checkpoint']).name, row['data_name']): row for row in stored}
    assert not any('localization' in row for (_, data), row in by_pair.items() if data == 'plain')
    mask_row = by_pair[(coded_checkpoints['mask'].name, 'tiny')]
    plain_row = by_pair[(coded_checkpoints['plain'].name, 'tiny')]
    assert set(mask_row['localization']) == {'mask', 'grad_cam'}
    assert set(plain_row['localization']) == {'grad_cam'}
    codes = [parse_part_code(name) for name in sorted(CODED)]
    for checkpoint, row in ((coded_checkpoints['mask'], mask_row), (coded_checkpoints['plain'], plain_row)):
        for method, summary in row['localization'].items():
            assert summary['n_fakes'] == len(CODED)
            expected = localization_summary(independent_scores(checkpoint, coded_root, method), codes)
            for part in PARTS:
                assert summary['parts'][part] == pytest.approx(expected['parts'][part], abs=1e-4), method
            assert summary['top_part_hit'] == pytest.approx(expected['top_part_hit'], abs=1e-6)
    assert stored == json.loads(json.dumps(rows))
    markdown = (tmp_path / 'out' / 'evaluation.md').read_text()
    table = [line for line in markdown.splitlines() if line.startswith('| ') and '| tiny:test |' in line
             and ('| mask head |' in line or '| Grad-CAM (fake) |' in line)]
    assert len(table) == 3 and all(line.endswith(f'| {len(CODED)} |') for line in table)
    assert ('| checkpoint | evaluated on | map | left eye AUC | right eye AUC | nose AUC | mouth AUC '
            '| mean part AUC | top-part hit (chance) | fakes |') in markdown
    assert 'Part localization on the fakes' in markdown


def test_coded_fakes_say_why_there_are_none(coded_root: Path, tmp_path: Path) -> None:
    plain = FacesDataset(str(coded_root / 'plain' / 'test'))
    assert coded_fakes(plain, coded_root / 'plain' / 'test').startswith('no fake file name carries a part')
    make_split(tmp_path / 'test', 1, 0, seed=4)
    write_image(tmp_path / 'test' / 'fake' / 'easy_1_1000.png', np.random.default_rng(5))
    unmarked = FacesDataset(str(tmp_path / 'test'))
    why = coded_fakes(unmarked, tmp_path / 'test')
    assert why == f'no landmarks.npz in {tmp_path / "test"} or {tmp_path}'
    write_landmarks(Landmarks(), tmp_path / LANDMARKS_FILE)
    assert coded_fakes(unmarked, tmp_path / 'test') == (f'{tmp_path / LANDMARKS_FILE} has landmarks for none '
                                                        'of its 1 coded fakes')
    tiny = FacesDataset(str(coded_root / 'tiny' / 'test'))
    found = coded_fakes(tiny, coded_root / 'tiny' / 'test')
    assert [tiny.image_path(i)[0].name for i in found.indices] == sorted(CODED)
    assert found.codes == [parse_part_code(name) for name in sorted(CODED)]
    assert found.shapes == [(256, 256)] * len(CODED) and found.without_landmarks == 1


def test_no_localization_skips_it(coded_root: Path, coded_checkpoints: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    rows = run_evaluate(coded_root, coded_checkpoints, tmp_path / 'out', '--no-localization')
    assert len(rows) == 4 and not any('localization' in row for row in rows)
    assert 'Part localization' not in (tmp_path / 'out' / 'evaluation.md').read_text()
    assert 'part localization' not in capsys.readouterr().err
