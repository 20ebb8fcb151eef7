"""Fast paths give the same numbers: channels_last, the compile fallback, uint8 decoding and batching."""
from __future__ import annotations

import copy
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate

from faces_dataset import FacesDataset, read_rgb, read_rgb_tensor
from fmd.core.devices import default_workers
from fmd.core.registry import build_model
from fmd.data import decode_cache
from fmd.data.presets import TRANSFORM_TEST, TRANSFORM_TRAIN, RandomCropFlip
from fmd.training import performance
from helpers import PROJECT_ROOT, make_split, script_env, write_image
from trainer import LoggingParameters, Trainer
from utils import load_dataset

TOLERANCE = {'atol': 1e-4, 'rtol': 1e-4}
# Tiny inputs keep this file fast: SimpleNet and BonusNet need 256x256, Xception takes any >= 32.
# EfficientNetLite0 gets 64: at 32 its last stages are 1x1, and BatchNorm over two numbers
# amplifies float32 rounding (loss 1e-3 apart) in either format alike.
MODEL_INPUTS = {'SimpleNet': (2, 256), 'BonusNet': (2, 256), 'XceptionBased': (2, 32),
                'EfficientNetLite0': (2, 64)}


def loss_and_gradients(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, train: bool,
                       ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Logits, cross-entropy loss and every parameter's gradient of one forward/backward pass."""
    torch.manual_seed(1)  # the same dropout masks for both formats
    model.train(train)
    model.zero_grad()
    logits = model(images)
    loss = nn.functional.cross_entropy(logits, labels)
    loss.backward()
    return logits.detach(), loss.detach(), {name: p.grad.detach().clone()
                                            for name, p in model.named_parameters()}


@pytest.mark.parametrize('model_name', list(MODEL_INPUTS))
def test_channels_last_matches_contiguous(model_name: str) -> None:
    torch.manual_seed(0)
    batch, size = MODEL_INPUTS[model_name]
    contiguous = build_model(model_name, pretrained=False)
    fast = copy.deepcopy(contiguous).to(memory_format=torch.channels_last)
    assert performance.input_memory_format(fast) == torch.channels_last
    assert performance.input_memory_format(contiguous) == torch.contiguous_format
    images = torch.randn(batch, 3, size, size)
    images_cl = images.contiguous(memory_format=torch.channels_last)
    labels = torch.arange(batch) % 2
    # A training step (batch statistics, dropout): the same loss.
    _, loss, _ = loss_and_gradients(contiguous, images, labels, train=True)
    _, loss_cl, _ = loss_and_gradients(fast, images_cl, labels, train=True)
    torch.testing.assert_close(loss_cl, loss, **TOLERANCE)
    # Evaluation: the same logits, and the same gradients. (Gradients are compared here, with
    # BatchNorm on running statistics: a batch of two's own statistics amplify float32 rounding
    # beyond 1e-4 in either format alike.)
    logits, _, expected = loss_and_gradients(contiguous, images, labels, train=False)
    logits_cl, _, found = loss_and_gradients(fast, images_cl, labels, train=False)
    torch.testing.assert_close(logits_cl, logits, **TOLERANCE)
    for name, gradient in found.items():
        torch.testing.assert_close(gradient, expected[name], **TOLERANCE, msg=name)


def test_channels_last_decision_is_per_model_and_device() -> None:
    cpu = torch.device('cpu')
    for name, wanted in performance.CHANNELS_LAST_ON_CPU.items():
        expected = torch.channels_last if wanted else torch.contiguous_format
        assert performance.memory_format_for(name, cpu) == expected
    assert performance.memory_format_for('SomeNewNet', cpu) == torch.contiguous_format
    model, memory_format, compiled = performance.prepare_model(
        build_model('SimpleNet'), 'SimpleNet', cpu)
    assert not compiled
    assert performance.input_memory_format(model) == memory_format


def tiny_conv_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 2))


def tiny_trainer(model: nn.Module) -> Trainer:
    generator = torch.Generator().manual_seed(0)
    dataset = TensorDataset(torch.randn(6, 3, 8, 8, generator=generator),
                            torch.tensor([0, 1, 0, 1, 0, 1]))
    return Trainer(model, torch.optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss(), 4,
                   dataset, dataset, dataset, num_workers=0, show_progress=False)


def test_compile_fallback_warns_once_and_still_trains(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    def broken_compile(*args: object, **kwargs: object) -> None:
        raise RuntimeError('no compiler here')

    monkeypatch.setattr(performance, 'compiler_unavailable_reason', lambda device: None)
    monkeypatch.setattr(torch, 'compile', broken_compile)
    model = tiny_conv_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model, _, compiled = performance.prepare_model(model, 'tiny', torch.device('cpu'),
                                                       compile=True)
        trainer = tiny_trainer(model)
        trainer.epoch = 1
        loss, _ = trainer.train_one_epoch()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not compiled
    assert len(messages) == 1 and 'no compiler here' in messages[0]
    assert np.isfinite(loss)


def test_no_compiler_warns_without_calling_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(performance, 'compiler_unavailable_reason', lambda device: 'no g++')
    monkeypatch.setattr(torch, 'compile', lambda *a, **k: pytest.fail('compile was called'))
    with pytest.warns(RuntimeWarning, match='no g\\+\\+'):
        assert not performance.compile_model(tiny_conv_model(), torch.device('cpu'))


def test_compiled_run_saves_a_plain_state_dict(monkeypatch: pytest.MonkeyPatch, workdir: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    # The graph is traced by TorchDynamo but run eagerly (backend 'eager'): the same module
    # wrapping as inductor, without minutes of C++ compilation.
    real_compile = torch.compile
    monkeypatch.setattr(performance, 'compiler_unavailable_reason', lambda device: None)
    monkeypatch.setattr(torch, 'compile', lambda fn, **kwargs: real_compile(fn, backend='eager'))
    model = tiny_conv_model()
    assert performance.compile_model(model, torch.device('cpu'))
    trainer = tiny_trainer(model)
    trainer.run(1, LoggingParameters('tiny', 'tinyset', 'Adam', {}))
    state = torch.load(workdir / 'checkpoints' / 'tinyset_tiny_Adam.pt', weights_only=True)['model']
    assert not any(key.startswith('_orig_mod') for key in state)
    tiny_conv_model().load_state_dict(state)  # strict


@pytest.mark.parametrize('mode', ['RGB', 'L', 'RGBA', 'P'])
def test_png_decode_equals_pil_exactly(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f'{mode}.png'
    write_image(path, np.random.default_rng(3), mode=mode, size=32)
    decoded = read_rgb_tensor(path)
    expected = torch.from_numpy(np.asarray(read_rgb(path), dtype=np.uint8).copy()).permute(2, 0, 1)
    assert decoded.dtype == torch.uint8 and decoded.shape == (3, 32, 32)
    assert torch.equal(decoded, expected)


def test_other_files_take_the_pil_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    wide = tmp_path / 'wide.png'  # another size: resized by PIL, as read_rgb does
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(wide)
    deep = tmp_path / 'deep.png'  # 16-bit grey: PIL scales it to 8 bits
    Image.fromarray(rng.integers(0, 65536, (16, 16), dtype=np.uint16)).save(deep)
    jpeg = tmp_path / 'photo.jpg'
    write_image(jpeg, rng, size=16)
    for path, size in ((wide, 24), (deep, None), (jpeg, None)):
        expected = np.asarray(read_rgb(path, size), dtype=np.uint8)
        assert torch.equal(read_rgb_tensor(path, size), torch.from_numpy(expected.copy()).permute(2, 0, 1))
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 40)
    with pytest.raises(OSError, match=r'broken\.png'):
        read_rgb_tensor(broken)


def test_random_crop_flip_equals_the_pil_preset_for_the_same_seed(tmp_path: Path) -> None:
    make_split(tmp_path, 3, 3, seed=5)
    pil = FacesDataset(str(tmp_path), TRANSFORM_TRAIN, image_size=256)
    fast = FacesDataset(str(tmp_path), RandomCropFlip(), image_size=256, decoder='tensor')
    for seed in range(12):  # enough draws to cover both flips and the padded borders
        torch.manual_seed(seed)
        expected, label = pil[seed % 6]
        torch.manual_seed(seed)
        image, fast_label = fast[seed % 6]
        assert image.dtype == torch.uint8 and fast_label == label
        assert torch.equal(performance.normalize_uint8(image), expected)
    assert torch.equal(torch.get_rng_state(), (torch.manual_seed(11), pil[5], torch.get_rng_state())[2])


def test_uint8_datasets_batch_to_the_float_pipeline(data_root: Path) -> None:
    float_train = load_dataset('fakes_dataset', 'train', data_root)
    uint8_train = load_dataset('fakes_dataset', 'train', data_root, uint8=True)
    uint8_test = load_dataset('fakes_dataset', 'test', data_root, uint8=True)
    torch.manual_seed(1)
    expected = default_collate([float_train[i] for i in range(len(float_train))])
    torch.manual_seed(1)
    images, labels = performance.collate_images([uint8_train[i] for i in range(len(uint8_train))])
    assert images.dtype == torch.uint8 and images.is_contiguous(memory_format=torch.channels_last)
    for memory_format in (torch.contiguous_format, torch.channels_last):
        batch = performance.prepare_batch(images, torch.device('cpu'), memory_format)
        assert batch.is_contiguous(memory_format=memory_format)
        assert torch.equal(batch, expected[0])
    assert torch.equal(labels, expected[1])
    test_image, _ = uint8_test[0]
    assert torch.equal(performance.normalize_uint8(test_image),
                       TRANSFORM_TEST(read_rgb(uint8_test.image_path(0)[0], 256)))


def test_bonus_energy_front_end_is_unchanged() -> None:
    torch.manual_seed(2)
    model = build_model('BonusNet')
    images = torch.randn(2, 3, 256, 256) * 3  # large enough that clipping happens
    expected = model.residuals(images).abs()
    assert torch.equal(model.residuals.energy(images), expected)
    assert torch.equal(model.residuals.energy(images.requires_grad_(True)), expected)
    (model.residuals.energy(images) * expected).sum().backward()  # saliency maps need this path
    assert images.grad is not None and images.grad.abs().sum() > 0


def epoch_batches(dataset: Dataset, seed: int) -> list:
    loader = DataLoader(dataset, batch_size=3, shuffle=True, num_workers=1,
                        collate_fn=performance.collate_images,
                        generator=torch.Generator().manual_seed(seed))
    return list(loader)


def test_decoded_cache_gives_the_same_batches_across_workers_and_epochs(
        data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_cache, '_reserved_bytes', 0)
    cached = load_dataset('fakes_dataset', 'train', data_root, uint8=True)
    plain = load_dataset('fakes_dataset', 'train', data_root, uint8=True)
    assert 'cache: 6 of 6 images' in decode_cache.cache_datasets([cached])
    for epoch in range(2):  # epoch 0 decodes in a worker and fills; epoch 1 reads the cache
        for (images, labels), (expected, expected_labels) in zip(
                epoch_batches(cached, epoch), epoch_batches(plain, epoch), strict=True):
            assert torch.equal(images, expected) and torch.equal(labels, expected_labels)
        assert bool(cached.decoded_cache.filled.all())  # written by the worker, seen here


def test_decoded_cache_stays_within_its_budget(data_root: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_cache, '_reserved_bytes', 0)
    monkeypatch.setenv(decode_cache.BUDGET_ENV, '1')  # 1 MiB: five 256x256 images
    splits = [load_dataset('fakes_dataset', part, data_root, uint8=True) for part in ('train', 'val')]
    assert 'cache: 5 of 12 images' in decode_cache.cache_datasets(splits)
    assert splits[0].decoded_cache.count == 5 and splits[1].decoded_cache is None
    image, _ = splits[0][5]  # beyond the cache: decoded every time
    assert image.shape == (3, 256, 256)
    monkeypatch.setenv(decode_cache.BUDGET_ENV, '0')
    assert 'off' in decode_cache.cache_datasets(
        [load_dataset('fakes_dataset', 'test', data_root, uint8=True)])


def test_optimizers_are_fused_where_possible_else_plain() -> None:
    from train_main import build_optimizer

    model = nn.Linear(3, 2)
    for name in ('SGD', 'Adam', 'AdamW'):
        assert build_optimizer(name, model, 1e-3, 0.9).param_groups[0]['fused'] is True

    class NoFused(torch.optim.Adam):
        def __init__(self, params: list, fused: bool | None = None, **kwargs: object) -> None:
            if fused:
                raise RuntimeError('no fused kernel here')
            super().__init__(params, **kwargs)

    plain = performance.fused_optimizer(NoFused, list(model.parameters()), lr=1e-3)
    assert not plain.param_groups[0]['fused']


def test_prepare_datasets_decodes_up_front_and_picks_workers(
        data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_cache, '_reserved_bytes', 0)
    cpu = torch.device('cpu')
    splits = [load_dataset('fakes_dataset', part, data_root, uint8=True) for part in ('val', 'test')]
    rng = torch.get_rng_state()
    workers, line = decode_cache.prepare_datasets(splits, cpu, None, fill_workers=1)
    assert torch.equal(torch.get_rng_state(), rng)  # the run's random draws are unchanged
    assert workers == 0 and '12 decoded up front' in line and 'workers: 0' in line
    assert all(bool(split.decoded_cache.filled.all()) for split in splits)
    assert decode_cache.prepare_datasets(splits, cpu, 3, fill_workers=0)[0] == 3  # as asked
    monkeypatch.setenv(decode_cache.BUDGET_ENV, '0')  # nothing cached: workers decode
    uncached = [load_dataset('fakes_dataset', 'train', data_root, uint8=True)]
    assert decode_cache.prepare_datasets(uncached, cpu, None, 0)[0] == default_workers()


# Ten rounds of allocating and freeing 64 + 32 MiB, glibc's default, then the same after
# keep_freed_memory(); prints whether it took and the page faults of the last five rounds of each.
# With 4 KiB pages that is 24,576 new pages a round when glibc unmaps the blocks, none when it keeps them.
FAULTS = r'''
import resource, torch
from fmd.training.performance import keep_freed_memory
def faults_of_five_rounds():
    for round in range(10):
        if round == 5:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        x, y = torch.ones(2 ** 24), torch.ones(2 ** 23)
        del x, y
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
default = faults_of_five_rounds()
print(keep_freed_memory(), default, faults_of_five_rounds())
'''


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt: Linux only')
def test_kept_freed_memory_is_reused_without_page_faults() -> None:
    output = subprocess.run([sys.executable, '-c', FAULTS], cwd=PROJECT_ROOT, env=script_env(),
                            capture_output=True, text=True, timeout=120, check=True).stdout.split()
    took, default, kept = output[0], int(output[1]), int(output[2])
    assert took == 'True' and kept < 100
    assert default >= 0.9 * 5 * (2 ** 26 + 2 ** 25) // 4096  # about 122,880
