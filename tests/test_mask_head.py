"""The mask head: shapes and size, its loss, masks that follow the image, training with it, detect --mask."""
from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bonus_model import BonusNet
from fmd.data.presets import RandomCropFlip
from fmd.data.training_fakes import masked_item
from fmd.detect import cli as detect
from fmd.models.mask_head import (
    MASK_HEAD_KEY,
    MASK_LAYERS_KEY,
    MaskHeadError,
    attach_saved_head,
    build_mask_head,
    mask_loss,
)
from helpers import pasted
from models import SimpleNet
from test_self_blend import tiny_dataset

BONUS_LIMIT = 169_017  # the assignment's parameter limit for the bonus model


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- the head

@pytest.mark.parametrize(('model', 'head_params'), [
    # per tapped map: 1x1 conv C->16 (16 C) + BN (32); then depthwise 3x3 (144) + BN (32), 1x1 16->1 (17)
    (BonusNet, (32 * 16 + 32) + (128 * 16 + 32) + 144 + 32 + 17),   # stem 32 ch, features.3 128 ch
    (SimpleNet, (16 * 16 + 32) + (24 * 16 + 32) + 144 + 32 + 17),   # conv2 16 ch, conv3 24 ch
])
def test_the_head_draws_a_64x64_map_and_leaves_the_detector_as_it_was(model, head_params: int) -> None:
    torch.manual_seed(0)
    detector = model().eval()
    keys = list(detector.state_dict())
    images = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        alone = detector(images)
        masked = build_mask_head(detector).eval()
        logits, mask_logits = masked(images)
        after = detector(images)
    assert logits.shape == (2, 2) and mask_logits.shape == (2, 1, 64, 64)
    assert torch.equal(logits, alone) and torch.equal(after, alone)  # the hooks only listen
    assert list(detector.state_dict()) == keys
    assert n_params(masked.head) == head_params


def test_bonus_net_with_its_head_stays_within_the_bonus_limit() -> None:
    detector = BonusNet()
    assert n_params(detector) == 164_276
    assert n_params(detector) + n_params(build_mask_head(detector).head) == 167_093 <= BONUS_LIMIT


def test_a_model_without_mask_layers_is_a_named_error() -> None:
    with pytest.raises(MaskHeadError, match='Linear has no mask head'):
        build_mask_head(torch.nn.Linear(2, 2))


def test_mask_loss_is_zero_for_a_perfect_map_and_the_kl_divergence_otherwise() -> None:
    # sigmoid(log(1/3)) = 1/4 and sigmoid(0) = 1/2: predictions equal to their targets.
    perfect = mask_loss(torch.tensor([math.log(1 / 3), 0.0]), torch.tensor([0.25, 0.5]))
    assert perfect.item() == pytest.approx(0.0, abs=1e-7)
    # target 1/2, logit 1: BCE = (softplus(-1) + softplus(1)) / 2, minus the entropy log 2.
    expected = (math.log1p(math.exp(-1)) + math.log1p(math.exp(1))) / 2 - math.log(2)
    assert mask_loss(torch.tensor([1.0]), torch.tensor([0.5])).item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.12011, abs=1e-5)


def test_the_mask_is_cut_and_flipped_with_its_image() -> None:
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).permute(2, 0, 1)
    mask = np.zeros((256, 256), dtype=np.float32)
    mask[:, :64] = 1.0  # the left quarter was changed
    flip = RandomCropFlip(256, padding=0, flip_probability=1.0)
    out, label, target = masked_item(image, mask, 1, flip)
    assert label == 1 and torch.equal(out, image.flip(2)) and out.permute(1, 2, 0).is_contiguous()
    expected = torch.zeros(1, 64, 64)
    expected[..., 48:] = 1.0  # after the flip: the right quarter, 16 of 64 cells
    assert torch.equal(target, expected)
    _, label, real_target = masked_item(image, None, 0, flip)
    assert label == 0 and torch.equal(real_target, torch.zeros(1, 64, 64))


# ----------------------------------------------------------------------------- training

def train(tmp_path: Path, *extra: str) -> dict:
    import train_main

    dataset_root = tmp_path / 'data'
    if not dataset_root.exists():
        tiny_dataset(dataset_root, n_real=4, n_fake=2, without=1)
    return train_main.main(['--data-root', str(dataset_root), '-d', 'tiny', '-m', 'BonusNet', '-e', '2',
                            '--batch-size', '4', '--fakes', 'self-blend', '--workers', '0',
                            '--no-progress', *extra])


def test_mask_loss_weight_0_trains_the_very_same_weights(tmp_path: Path, workdir: Path) -> None:
    train(tmp_path)
    plain = torch.load(workdir / 'checkpoints' / 'tiny+self-blend_BonusNet_Adam.pt', weights_only=True)
    shutil.rmtree(workdir / 'checkpoints')
    train(tmp_path, '--mask-loss-weight', '0')
    zero = torch.load(workdir / 'checkpoints' / 'tiny+self-blend_BonusNet_Adam.pt', weights_only=True)
    assert MASK_HEAD_KEY not in zero and zero['model'].keys() == plain['model'].keys()
    for key, tensor in plain['model'].items():
        assert torch.equal(zero['model'][key], tensor), key


def test_a_mask_run_saves_its_head_under_a_name_of_its_own(tmp_path: Path, workdir: Path) -> None:
    record = train(tmp_path, '--mask-loss-weight', '1')
    checkpoint = torch.load(workdir / 'checkpoints' / 'tiny+self-blend+mask_BonusNet_Adam.pt',
                            weights_only=True)
    assert checkpoint[MASK_LAYERS_KEY] == ['stem', 'features.3']
    fresh = build_mask_head(BonusNet()).head.state_dict()
    assert checkpoint[MASK_HEAD_KEY].keys() == fresh.keys()
    assert list(checkpoint['model']) == list(BonusNet().state_dict())  # the detector's keys as ever
    assert record['mask_loss_weight'] == 1.0 and record['mask_head_params'] == 2_817
    assert len(record['train_mask_loss']) == 2 and all(v > 0 for v in record['train_mask_loss'])
    logged = json.loads((workdir / 'out' / 'tiny+self-blend+mask_BonusNet_Adam.json').read_text())[-1]
    assert logged['train_mask_loss'] == record['train_mask_loss']
    assert not (workdir / 'checkpoints' / 'tiny+self-blend_BonusNet_Adam.pt').exists()
    assert attach_saved_head(BonusNet(), checkpoint) is not None


def test_mask_loss_needs_self_blends_and_a_model_with_mask_layers(tmp_path: Path, workdir: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    import train_main

    with pytest.raises(SystemExit) as usage:
        train_main.parse_args(['--mask-loss-weight', '1'])
    assert usage.value.code == 2 and 'add --fakes self-blend' in capsys.readouterr().err
    with pytest.raises(SystemExit) as no_layers:
        train(tmp_path, '--mask-loss-weight', '1', '-m', 'EfficientNetLite0', '--no-pretrained')
    assert str(no_layers.value) == ('error: argument --mask-loss-weight: EfficientNetLite0 has no mask head: '
                                    '--mask-loss-weight works with BonusNet and SimpleNet')


# ----------------------------------------------------------------------------- detect --mask

def constant_mask_checkpoint(path: Path, value: float) -> Path:
    """A BonusNet checkpoint whose head predicts `value` everywhere (zero weights, bias logit(value))."""
    torch.manual_seed(0)
    detector = BonusNet()
    head = build_mask_head(detector).head
    final = head.refine[-1]
    with torch.no_grad():
        final.weight.zero_()
        final.bias.fill_(math.log(value / (1 - value)))
    torch.save({'model': detector.state_dict(), 'model_name': 'BonusNet', MASK_HEAD_KEY: head.state_dict(),
                MASK_LAYERS_KEY: ['stem', 'features.3']}, path)
    return path


def test_detect_mask_writes_the_overlay_and_the_part_scores(tmp_path: Path) -> None:
    Image.fromarray(pasted((100, 50))[0]).save(tmp_path / 'face.png')
    checkpoint = constant_mask_checkpoint(tmp_path / 'mask.pt', 0.3)
    out = tmp_path / 'out'
    assert detect.main([str(tmp_path / 'face.png'), '--checkpoint', str(checkpoint), '--out', str(out),
                        '--mask', '--no-progress']) == 0
    with open(out / 'faces.csv', newline='') as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert list(rows[0])[-5:] == ['left_eye', 'right_eye', 'nose', 'mouth', 'rest']
    assert [float(rows[0][part]) for part in ('left_eye', 'right_eye', 'nose', 'mouth', 'rest')] == [0.3] * 5
    picture = Image.open(out / 'annotated' / 'face_png_mask.png')
    assert picture.width == 256 and picture.height > 512  # the crop, its overlay, the scores below
    assert (out / 'annotated' / 'face_png.jpg').is_file()


def test_detect_mask_without_a_mask_head_is_a_named_error(tmp_path: Path) -> None:
    from fmd.core.cli import run_cli

    Image.fromarray(pasted((100, 50))[0]).save(tmp_path / 'face.png')
    plain = tmp_path / 'plain.pt'
    torch.save({'model': BonusNet().state_dict(), 'model_name': 'BonusNet'}, plain)
    with pytest.raises(SystemExit) as stop:
        run_cli(detect.main, [str(tmp_path / 'face.png'), '--checkpoint', str(plain), '--mask',
                              '--out', str(tmp_path / 'out'), '--no-progress'])
    assert str(stop.value) == (f'error: {plain} has no mask head: --mask needs a checkpoint trained with '
                               '--fakes self-blend --mask-loss-weight W (docs/masks.md)')


def test_a_resumed_mask_run_ends_where_the_uninterrupted_one_does(tmp_path: Path, workdir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer import Trainer

    name = 'tiny+self-blend+mask_BonusNet_Adam'
    straight = train(tmp_path, '--mask-loss-weight', '1')
    expected = torch.load(workdir / 'checkpoints' / f'{name}.pt', weights_only=True)
    shutil.rmtree(workdir / 'checkpoints')
    shutil.rmtree(workdir / 'out')
    train_one_epoch = Trainer.train_one_epoch

    def interrupted_in_epoch_2(self: Trainer) -> object:
        if self.epoch == 2:
            raise KeyboardInterrupt
        return train_one_epoch(self)

    with monkeypatch.context() as patch:  # Ctrl-C in epoch 2: the state after epoch 1 kept, no result
        patch.setattr(Trainer, 'train_one_epoch', interrupted_in_epoch_2)
        with pytest.raises(SystemExit) as stop:
            train(tmp_path, '--mask-loss-weight', '1')
        assert stop.value.code == 130
    assert (workdir / 'checkpoints' / f'{name}.interrupted.pt').is_file()
    resumed = train(tmp_path, '--mask-loss-weight', '1', '--resume')
    assert resumed['train_mask_loss'] == pytest.approx(straight['train_mask_loss'], abs=1e-6)
    got = torch.load(workdir / 'checkpoints' / f'{name}.pt', weights_only=True)
    for part in ('model', MASK_HEAD_KEY):
        for key, tensor in expected[part].items():
            torch.testing.assert_close(got[part][key], tensor, rtol=0, atol=1e-6)
