"""BonusNet: parameter budget, shapes, SRM and constrained filters, checkpoints, export, bonus_main."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch
from sklearn.metrics import roc_auc_score

import bonus_main
from bonus_main import export_bonus_checkpoint
from bonus_model import BONUS_CHECKPOINT, BonusNet, my_bonus_model
from fmd.core.cli import run_cli
from helpers import load_test_split_by_hand
from models import SimpleNet
from utils import CheckpointMismatchError, get_nof_params, load_model

SIMPLENET_PARAMS = 16_901_762


def hand_count() -> int:
    """BonusNet's trainable parameters from its layer shapes, written out by hand.

    learned constrained 5x5 filters, 2 shared by the colours, raw weights: 2*25 =      50
    input BN over 3 colour + 9 SRM + 6 learned residual-energy channels: 2*18  =      36
    stem conv 3x3, 18 -> 32, no bias: 18*32*9 = 5184; BN(32): 64               =    5248
    separable block cin -> cout: depthwise 9*cin + BN 2*cin + pointwise cin*cout + BN 2*cout
      32 -> 64:   288 +  64 +  2048 + 128                                       =    2528
      64 -> 64:   576 + 128 +  4096 + 128                                       =    4928
      64 -> 128:  576 + 128 +  8192 + 256                                       =    9152
     128 -> 128: 1152 + 256 + 16384 + 256                                       =   18048
     128 -> 256: 1152 + 256 + 32768 + 512                                       =   34688
     256 -> 256: 2304 + 512 + 65536 + 512                                       =   68864
    coarse energy 8x8 cells -> block 0: BN(15) 30 + conv 15*64 960 + BN(64) 128 =    1118
    coarse energy 16x16 -> block 2: BN(15) 30 + conv 15*128 1920 + BN(128) 256  =    2206
    global depthwise conv 8x8 over 256 channels, no bias: 256*64 = 16384; BN(256): 512 = 16896
    classifier 256 -> 2 with bias: 512 + 2                                      =     514
    total                                                                       = 164,276
    The SRM filters are a buffer, not a parameter.
    """
    return (50 + 36 + 5248 + 2528 + 4928 + 9152 + 18048 + 34688 + 68864 + 1118 + 2206 + 16896
            + 514)


def test_parameter_count_matches_hand_count_and_is_within_one_percent_of_simplenet() -> None:
    model = BonusNet()
    assert hand_count() == 164_276
    assert get_nof_params(model) == hand_count()
    assert sum(p.numel() for p in model.parameters()) == hand_count()  # nothing frozen by accident
    assert get_nof_params(SimpleNet()) == SIMPLENET_PARAMS
    assert hand_count() <= SIMPLENET_PARAMS // 100 == 169_017


def assert_constrained(weight: torch.Tensor) -> None:
    """Every 5x5 kernel has centre -1 and off-centre weights summing to 1 (so it sums to 0)."""
    assert weight.shape == (2, 1, 5, 5)
    assert torch.allclose(weight[:, 0, 2, 2], torch.full((2,), -1.0))
    off_centre = weight.sum(dim=(1, 2, 3)) - weight[:, 0, 2, 2]
    assert torch.allclose(off_centre, torch.ones(2), atol=1e-5)


def test_learned_filters_keep_the_bayar_constraint_after_optimizer_steps() -> None:
    torch.manual_seed(0)
    model = BonusNet()
    conv = model.learned_residuals.conv
    assert_constrained(conv.weight)
    before = conv.weight.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.5, weight_decay=0.05)
    for _ in range(3):  # large steps that would break an unprojected constraint
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 256, 256)),
                                          torch.tensor([0, 1])).backward()
        optimizer.step()
        assert_constrained(conv.weight)
    assert not torch.allclose(conv.weight, before)  # the filters did learn
    # A high-pass residual ignores a constant image (away from the zero-padded border).
    flat = torch.full((1, 3, 32, 32), 0.7)
    assert torch.allclose(model.learned_residuals(flat)[..., 1:-1, 1:-1],
                          torch.zeros(1, 6, 14, 14), atol=1e-5)


def test_registry_builds_an_untrained_bonusnet() -> None:
    assert type(load_model('BonusNet')) is BonusNet


def test_output_is_two_logits_per_image_and_every_parameter_learns() -> None:
    torch.manual_seed(0)
    model = BonusNet()
    logits = model(torch.randn(2, 3, 256, 256))
    assert logits.shape == (2, 2)
    logits.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ValueError, match='3x256x256'):
        model(torch.randn(2, 3, 128, 128))


def test_energy_map_is_cell_means_of_colour_and_absolute_residuals() -> None:
    model = BonusNet()
    image = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    energy = model.energy_map(image)
    assert energy.shape == (1, 18, 64, 64)
    # Cell (row 5, column 9) covers pixels 20..23 x 36..39; residual channel 3c+k is kernel k on c.
    assert torch.allclose(energy[0, :3, 5, 9], image[0, :, 20:24, 36:40].mean(dim=(1, 2)))
    kb = model.residuals.weight[0, 0]  # KB / 4
    patch = image[0, 1, 18:26, 34:42]  # colour 1 (green) with a 2-pixel margin
    by_hand = torch.stack([(patch[i:i + 5, j:j + 5] * kb).sum().clamp(-3, 3).abs()
                           for i in range(4) for j in range(4)]).mean()
    assert torch.allclose(energy[0, 3 + 3 * 1 + 0, 5, 9], by_hand, atol=1e-5)
    # Learned channel 12+2c+k: filter k on colour c at every other pixel (rows 20, 22; cols 36, 38).
    learned = model.learned_residuals.conv.weight[1, 0]
    patch = image[0, 2, 18:25, 34:41]  # colour 2 (blue) with a 2-pixel margin
    by_hand = torch.stack([(patch[i:i + 5, j:j + 5] * learned).sum().clamp(-3, 3).abs()
                           for i in (0, 2) for j in (0, 2)]).mean()
    assert torch.allclose(energy[0, 12 + 2 * 2 + 1, 5, 9], by_hand, atol=1e-5)


def test_srm_filters_are_fixed_and_vanish_on_flat_images() -> None:
    model = BonusNet()
    weight = model.residuals.weight
    assert weight.shape == (9, 1, 5, 5)
    assert 'residuals.weight' in dict(model.named_buffers())
    assert not any(name.startswith('residuals') for name, _ in model.named_parameters())
    # KB / 4 has centre -1 and sums to zero; every high-pass kernel ignores a constant image.
    assert weight[0, 0, 2, 2].item() == -1.0
    assert torch.allclose(weight.sum(dim=(1, 2, 3)), torch.zeros(9), atol=1e-6)
    flat = torch.full((1, 3, 32, 32), 0.7)
    assert torch.allclose(model.residuals(flat)[..., 2:-2, 2:-2], torch.zeros(1, 9, 28, 28),
                          atol=1e-6)


def trained_looking_model(seed: int) -> BonusNet:
    """A BonusNet with non-default BN running statistics, so a round trip must carry buffers too."""
    torch.manual_seed(seed)
    model = BonusNet()
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 256, 256) * 1.5 + 0.3)
    return model.eval()


def save_checkpoint(model: BonusNet, path: str | Path) -> None:
    """A checkpoint shaped like the Trainer's."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save({'model': model.state_dict(), 'val_acc': 50.0, 'test_acc': 50.0, 'epoch': 1,
                'model_name': 'BonusNet', 'dataset': 'fakes_dataset'}, path)


def test_my_bonus_model_round_trips_a_saved_checkpoint(workdir: Path) -> None:
    saved = trained_looking_model(seed=3)
    save_checkpoint(saved, BONUS_CHECKPOINT)
    loaded = my_bonus_model().eval()
    assert isinstance(loaded, BonusNet)
    inputs = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.equal(loaded(inputs), saved(inputs))
    fresh = BonusNet().eval()
    with torch.no_grad():
        assert not torch.equal(fresh(inputs), saved(inputs))


def test_missing_checkpoint_says_how_to_train_and_export(workdir: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        my_bonus_model()
    message = str(error.value)
    assert os.path.join('checkpoints', 'bonus_model.pt') in message
    assert 'python train_main.py -d fakes_dataset -m BonusNet' in message
    assert 'python bonus_main.py --export checkpoints/fakes_dataset_BonusNet_Adam.pt' in message
    with pytest.raises(SystemExit, match=re.escape('train_main.py -d fakes_dataset -m BonusNet')):
        run_cli(bonus_main.main, ['--data-root', str(workdir), '--workers', '0'])


def test_export_copies_a_bonusnet_checkpoint_and_rejects_others(workdir: Path) -> None:
    source = Path('checkpoints', 'fakes_dataset_BonusNet_Adam.pt')
    saved = trained_looking_model(seed=5)
    save_checkpoint(saved, source)
    assert export_bonus_checkpoint(source) == Path(BONUS_CHECKPOINT)
    exported = torch.load(BONUS_CHECKPOINT, weights_only=True)
    assert exported['epoch'] == 1
    assert all(torch.equal(exported['model'][k], v) for k, v in saved.state_dict().items())
    assert sorted(os.listdir('checkpoints')) == ['bonus.pt', 'bonus_model.pt',
                                                 'fakes_dataset_BonusNet_Adam.pt']

    torch.save({'model': SimpleNet().state_dict(), 'model_name': 'SimpleNet'}, 'simple.pt')
    with pytest.raises(CheckpointMismatchError, match=re.escape('simple.pt')):
        export_bonus_checkpoint('simple.pt')
    with pytest.raises(FileNotFoundError, match=re.escape('nothing.pt')):
        export_bonus_checkpoint('nothing.pt')


def test_bonus_main_returns_accuracy_and_parameters_of_the_checkpoint(
        workdir: Path, data_root: Path, capsys: pytest.CaptureFixture) -> None:
    images, labels = load_test_split_by_hand(data_root)
    assert labels == [0, 0, 0, 0, 1, 1]
    model = trained_looking_model(seed=11)
    # Shift the fake logit so that exactly half of the six test images are called fake: the
    # expected accuracy then depends on which images they are, not only on the class balance.
    with torch.no_grad():
        logits = model(images)
        margins = (logits[:, 1] - logits[:, 0]).sort().values
        model.classifier.bias[1] -= (margins[2] + margins[3]) / 2
        logits = model(images)
    predictions = logits.argmax(dim=1).tolist()
    assert sum(predictions) == 3
    expected_accuracy = 100.0 * sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(labels)
    save_checkpoint(model, BONUS_CHECKPOINT)

    result = bonus_main.main(['--data-root', str(data_root), '--workers', '0', '--no-progress',
                              '--batch-size', '4'])

    assert isinstance(result, tuple) and len(result) == 2
    accuracy, nof_parameters = result
    assert isinstance(accuracy, float) and isinstance(nof_parameters, int)
    assert accuracy == pytest.approx(expected_accuracy, abs=1e-9)
    assert nof_parameters == get_nof_params(BonusNet()) == hand_count()
    output = capsys.readouterr().out
    printed_auc = float(re.search(r'ROC AUC of the fake score: ([0-9.]+)', output).group(1))
    # P(fake) = softmax(logits)[1] is monotone in the logit margin, so its AUC is the margin's.
    margins = (logits[:, 1] - logits[:, 0]).tolist()
    assert printed_auc == pytest.approx(roc_auc_score(labels, margins), abs=1e-4)
    assert f'Test accuracy: {expected_accuracy:.2f}%' in output
    assert 'Number of parameters: 164,276' in output
    saved = json.loads((workdir / 'out' / 'bonus_main.json').read_text())
    assert saved['test_accuracy'] == accuracy and saved['nof_parameters'] == nof_parameters
    assert saved['roc_auc'] == pytest.approx(roc_auc_score(labels, margins), abs=1e-6)


def test_bonus_main_help_exits_cleanly(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bonus_main.main(['--help'])
    assert exit_info.value.code == 0
    assert '--export' in capsys.readouterr().out
