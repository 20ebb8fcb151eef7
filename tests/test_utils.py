"""utils: model registry, parameter counts, data-root lookup, checkpoints and safe JSON logs."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from torch import nn

import utils
from fmd.core.atomic_io import DiskWriteError
from models import SimpleNet


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"Unknown model 'ResNet'.*'SimpleNet'"):
        utils.load_model('ResNet')


def test_alias_maps_to_canonical_name() -> None:
    assert utils.canonical_model_name('Xception-Based') == 'XceptionBased'
    assert utils.canonical_model_name('SimpleNet') == 'SimpleNet'


def test_load_model_builds_a_fresh_simplenet() -> None:
    model = utils.load_model('SimpleNet')
    assert isinstance(model, SimpleNet)


def test_get_nof_params_counts_only_trainable() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 3*4+4 = 16 and 4*2+2 = 10
    assert utils.get_nof_params(model) == 26
    model[0].weight.requires_grad = False  # 12 weights frozen
    assert utils.get_nof_params(model) == 14


def test_unknown_dataset_and_part_are_errors(data_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r'faces not found; datasets under .*: fakes_dataset, '
                                                r'synthetic_dataset'):
        utils.load_dataset('faces', 'train', data_root)
    with pytest.raises(ValueError, match="'validation'"):
        utils.load_dataset('fakes_dataset', 'validation', data_root)


def test_load_dataset_uses_train_and_test_transforms(data_root: Path) -> None:
    train = utils.load_dataset('fakes_dataset', 'train', data_root)
    test = utils.load_dataset('fakes_dataset', 'test', data_root)
    assert train.transform is utils.TRANSFORM_TRAIN and test.transform is utils.TRANSFORM_TEST
    assert train.root_path == str(data_root / 'fakes_dataset' / 'train')
    assert len(test) == 6


def test_unnormalize_inverts_the_test_transform() -> None:
    pixel = torch.tensor([0.2, 0.5, 0.9]).view(3, 1, 1)
    normalised = utils.TRANSFORM_TEST.transforms[1](pixel)
    assert torch.allclose(utils.unnormalize(normalised), pixel, atol=1e-6)
    assert torch.allclose(utils.unnormalize(normalised.unsqueeze(0))[0], pixel, atol=1e-6)


class TestDataRoot:
    def test_explicit_argument_wins(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(utils.DATA_ROOT_ENV, str(tmp_path / 'elsewhere'))
        assert utils.resolve_data_root(tmp_path) == tmp_path

    def test_environment_variable_is_next(self, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(utils.DATA_ROOT_ENV, str(tmp_path))
        assert utils.resolve_data_root() == tmp_path

    def test_course_data_before_demo_data(self, workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
        monkeypatch.delenv(utils.DATA_ROOT_ENV, raising=False)
        (workdir / 'demo_datasets').mkdir()
        assert utils.resolve_data_root() == Path('demo_datasets')
        assert 'DEMO data' in capsys.readouterr().err
        (workdir / 'Assignment4_datasets').mkdir()
        assert utils.resolve_data_root() == Path('Assignment4_datasets')
        assert 'DEMO' not in capsys.readouterr().err

    def test_nothing_found_lists_what_was_searched(self, workdir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(utils.DATA_ROOT_ENV, raising=False)
        if Path('../Assignment4_datasets').is_dir():
            pytest.skip('a real ../Assignment4_datasets exists next to the temp folder')
        with pytest.raises(utils.DataRootNotFoundError) as error:
            utils.resolve_data_root()
        message = str(error.value)
        for searched in ('FACES_DATA_ROOT', 'Assignment4_datasets', 'demo_datasets',
                         'fmd.demo_data'):
            assert searched in message

    def test_missing_explicit_folder_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(utils.DataRootNotFoundError, match='nowhere'):
            utils.resolve_data_root(tmp_path / 'nowhere')


class TestCheckpoints:
    def test_round_trip(self, tmp_path: Path) -> None:
        model = nn.Linear(3, 2)
        path = tmp_path / 'ckpt' / 'm.pt'
        utils.atomic_torch_save({'model': model.state_dict(), 'epoch': 3}, path)
        assert [p.name for p in path.parent.iterdir()] == ['m.pt']  # no temp file left
        fresh = nn.Linear(3, 2)
        checkpoint = utils.load_checkpoint(fresh, path, 'Linear')
        assert checkpoint['epoch'] == 3
        assert torch.equal(fresh.weight, model.weight) and torch.equal(fresh.bias, model.bias)

    def test_a_refused_write_is_one_clear_error_and_keeps_the_old_file(self, tmp_path: Path) -> None:
        import resource

        path = tmp_path / 'm.pt'
        path.write_bytes(b'the previous checkpoint')
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**16, hard))  # the kernel refuses writes past 64 KiB
        try:
            with pytest.raises(DiskWriteError, match=rf'could not write {path}: .*ulimit -f'):
                utils.atomic_torch_save({'w': torch.zeros(2**16)}, path)  # 256 KiB of weights
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert path.read_bytes() == b'the previous checkpoint'
        assert [p.name for p in tmp_path.iterdir()] == ['m.pt']  # no temp file left

    def test_wrong_architecture_names_model_and_file(self, tmp_path: Path) -> None:
        path = tmp_path / 'other.pt'
        torch.save({'model': nn.Linear(3, 2).state_dict()}, path)
        with pytest.raises(utils.CheckpointMismatchError,
                           match=r'other\.pt is not a SimpleNet checkpoint.*missing key'):
            utils.load_checkpoint(SimpleNet(), path, 'SimpleNet')

    def test_wrong_shapes_and_recorded_name(self, tmp_path: Path) -> None:
        path = tmp_path / 'wide.pt'
        torch.save({'model': nn.Linear(4, 2).state_dict(), 'model_name': 'Wide'}, path)
        with pytest.raises(utils.CheckpointMismatchError,
                           match=r'saved from Wide.*key .weight. has shape \(2, 4\), the model '
                                 r'expects \(2, 3\)'):
            utils.load_checkpoint(nn.Linear(3, 2), path, 'Narrow')

    def test_missing_file_says_how_to_get_one(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match=r'train_main\.py'):
            utils.load_checkpoint(nn.Linear(3, 2), tmp_path / 'none.pt', 'Linear')


class TestJsonLog:
    def test_atomic_write_and_read(self, tmp_path: Path) -> None:
        path = tmp_path / 'log.json'
        utils.atomic_write_json([{'a': 1}], path)
        assert utils.read_json_list(path) == [{'a': 1}]
        assert utils.read_json_list(tmp_path / 'absent.json') == []

    @pytest.mark.parametrize('content', ['{not json', '{"a": 1}'])
    def test_bad_log_is_moved_aside_not_lost(self, tmp_path: Path, content: str,
                                             capsys: pytest.CaptureFixture) -> None:
        path = tmp_path / 'log.json'
        path.write_text(content)
        assert utils.read_json_list(path) == []
        backups = list(tmp_path.glob('log.json.corrupt-*'))
        assert len(backups) == 1 and backups[0].read_text() == content
        assert not path.exists()
        assert 'WARNING' in capsys.readouterr().err


def test_seed_everything_repeats_random_draws() -> None:
    utils.seed_everything(7)
    first = (torch.rand(3), random.random())
    utils.seed_everything(7)
    assert torch.equal(torch.rand(3), first[0])
    assert random.random() == first[1]


@pytest.mark.parametrize('cuda, mps, expected', [
    (True, True, 'cuda'), (False, True, 'mps'), (False, False, 'cpu')])
def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch, cuda: bool,
                                                    mps: bool, expected: str) -> None:
    from fmd.core import devices
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: mps)
    assert devices.pick_device() == torch.device(expected)


def test_run_cli_makes_sigterm_raise_only_while_main_runs() -> None:
    import signal

    from fmd.core import interrupts
    from fmd.core.cli import run_cli

    before = signal.getsignal(signal.SIGTERM)
    assert run_cli(lambda: signal.getsignal(signal.SIGTERM)) is interrupts._raise_terminated
    assert signal.getsignal(signal.SIGTERM) is before  # not leaked into the caller (or its forks)
