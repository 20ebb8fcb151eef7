"""The course template's contract, checked the way a grader's pytest uses it: main() functions called
with the grader's own sys.argv, a functional criterion in Trainer, the template's flag spellings and
defaults, both bonus checkpoint names, and the template's unchanged bonus_main run on our modules."""
from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import bonus_main
from bonus_model import BonusNet
from fmd.core import analysis_cli
from helpers import TINY_COUNTS, load_test_split_by_hand
from models import SimpleNet
from trainer import Trainer
from utils import get_nof_params

# A grader's command line, as sys.argv holds it inside `pytest test_bonus.py -q`.
GRADER_ARGV = ['pytest', 'test_bonus.py', '-q']

# The template's bonus_main.py ("the script we will use to evaluate your model"), in the form the
# assignment gives it: these imports, calls and keyword arguments, unchanged.
TEMPLATE_BONUS_MAIN = '''\
"""The course template's bonus evaluation script."""
from torch import nn
from trainer import Trainer
from bonus_model import my_bonus_model
from utils import load_dataset, get_nof_params


def main() -> tuple[float, int]:
    test_dataset = load_dataset('fakes_dataset', 'test')
    model = my_bonus_model()
    trainer = Trainer(model=model, optimizer=None,
                      criterion=nn.CrossEntropyLoss(), batch_size=16,
                      train_dataset=test_dataset,
                      validation_dataset=test_dataset,
                      test_dataset=test_dataset)
    _, test_accuracy = trainer.test()
    nof_parameters = get_nof_params(model)
    return test_accuracy, nof_parameters


if __name__ == "__main__":
    accuracy, nof_params = main()
    print(f"Your bonus model test accuracy: {accuracy}")
    print(f"Your bonus model number of parameters: {nof_params}")
'''

# Every assignment module whose main() a grader may call, with its other API function that parses.
API_PARSERS = {'train_main': ('main', 'parse_args'), 'bonus_main': ('main', 'parse_args'),
               'numerical_analysis': ('main',), 'saliency_map': ('main',), 'grad_cam_analysis': ('main',),
               'plot_accuracy_and_loss': ('main',), 'plot_samples_of_faces_datasets': ('main',)}
ANALYSIS_MODULES = ('numerical_analysis', 'saliency_map', 'grad_cam_analysis')
# The template's names of each flag: the trainer names a run's files <dataset>_<model>_<optimizer>.
DEFAULT_CHECKPOINT = os.path.join('checkpoints', 'fakes_dataset_SimpleNet_Adam.pt')
DEFAULT_LOG = os.path.join('out', 'fakes_dataset_SimpleNet_Adam.json')


class Parsed(Exception):
    """Raised by the spy in place of parsing: carries the argument list a parser was given."""


@pytest.fixture
def grader(workdir: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A grader's session: its own sys.argv, the data found through $FACES_DATA_ROOT, an empty cwd."""
    monkeypatch.setattr(sys, 'argv', list(GRADER_ARGV))
    monkeypatch.setenv('FACES_DATA_ROOT', str(data_root))
    return workdir


@pytest.mark.parametrize('module_name', sorted(API_PARSERS))
def test_api_functions_parse_no_arguments_never_sys_argv(module_name: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """main() and parse_args() with no argument parse [] (every default), whatever sys.argv holds."""
    module = importlib.import_module(module_name)
    given = []

    def spy(parser: argparse.ArgumentParser, args: object = None, namespace: object = None) -> None:
        given.append(args)
        raise Parsed

    monkeypatch.setattr(sys, 'argv', [*GRADER_ARGV, '--no-such-flag'])
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', spy)
    for function in API_PARSERS[module_name]:
        with pytest.raises(Parsed):
            getattr(module, function)()
    assert given == [[]] * len(API_PARSERS[module_name])


def half_fake_bonus_model(images: torch.Tensor) -> BonusNet:
    """An untrained BonusNet whose fake logit is shifted so that exactly 3 of the 6 test images are
    called fake: the accuracy then depends on which images, not only on the class balance."""
    torch.manual_seed(21)
    model = BonusNet().eval()
    with torch.no_grad():
        logits = model(images)
        margins = (logits[:, 1] - logits[:, 0]).sort().values
        model.classifier.bias[1] -= (margins[2] + margins[3]) / 2
    return model


def test_bonus_main_and_the_template_script_agree_with_a_hand_count(
        grader: Path, data_root: Path, capsys: pytest.CaptureFixture) -> None:
    images, labels = load_test_split_by_hand(data_root)
    assert labels == [0] * TINY_COUNTS['fakes_dataset']['real'] + [1] * TINY_COUNTS['fakes_dataset']['fake']
    model = half_fake_bonus_model(images)
    with torch.no_grad():
        predictions = model(images).argmax(dim=1).tolist()
    assert sum(predictions) == 3
    expected = 100.0 * sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(labels)
    os.makedirs('checkpoints')
    torch.save({'model': model.state_dict(), 'model_name': 'BonusNet'}, 'checkpoints/bonus_model.pt')

    result = bonus_main.main()  # sys.argv holds the grader's command line
    assert type(result) is tuple and type(result[0]) is float and type(result[1]) is int
    assert result == (expected, get_nof_params(BonusNet()))

    template = grader / 'template_bonus_main.py'
    template.write_text(TEMPLATE_BONUS_MAIN)
    capsys.readouterr()
    namespace = runpy.run_path(str(template), run_name='__main__')
    assert (namespace['accuracy'], namespace['nof_params']) == result
    printed = capsys.readouterr().out
    assert f'Your bonus model test accuracy: {expected}\n' in printed
    assert f'Your bonus model number of parameters: {result[1]}\n' in printed


def test_export_writes_both_bonus_names_with_the_same_bytes(grader: Path) -> None:
    torch.manual_seed(4)
    trained = BonusNet()
    source = Path('checkpoints', 'fakes_dataset_BonusNet_Adam.pt')
    source.parent.mkdir()
    torch.save({'model': trained.state_dict(), 'model_name': 'BonusNet', 'epoch': 3}, source)

    assert bonus_main.export_bonus_checkpoint(source) == Path('checkpoints', 'bonus_model.pt')
    exported = Path('checkpoints', 'bonus_model.pt').read_bytes()
    assert Path('checkpoints', 'bonus.pt').read_bytes() == exported
    loaded = torch.load('checkpoints/bonus.pt', weights_only=True)
    assert loaded['epoch'] == 3
    assert all(torch.equal(loaded['model'][k], v) for k, v in trained.state_dict().items())
    assert sorted(os.listdir('checkpoints')) == ['bonus.pt', 'bonus_model.pt', source.name]


def tiny_trainer(criterion: object, batch_size: int) -> tuple[Trainer, TensorDataset, nn.Module]:
    """A linear model on five 3x2x2 images, the Trainer the template builds around it, and a copy."""
    generator = torch.Generator().manual_seed(3)
    data = TensorDataset(torch.randn(5, 3, 2, 2, generator=generator), torch.tensor([0, 1, 1, 0, 1]))
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    before = copy.deepcopy(model)
    trainer = Trainer(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
                      criterion=criterion, batch_size=batch_size, train_dataset=data,
                      validation_dataset=data, test_dataset=data, device=torch.device('cpu'),
                      num_workers=0, show_progress=False)
    return trainer, data, before


def test_trainer_takes_a_functional_criterion() -> None:
    trainer, data, before = tiny_trainer(torch.nn.functional.cross_entropy, batch_size=2)
    assert trainer.criterion is torch.nn.functional.cross_entropy
    images, labels = data.tensors
    with torch.no_grad():
        logits = before(images).numpy().astype(np.float64)
    # -log softmax of the true class, in float64 numpy, averaged over the 5 samples (batches 2+2+1)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected_loss = float(-log_softmax[np.arange(5), labels.numpy()].mean())
    expected_accuracy = 100.0 * float((logits.argmax(axis=1) == labels.numpy()).sum()) / 5
    loss, accuracy = trainer.test()
    assert loss == pytest.approx(expected_loss, rel=1e-6) and accuracy == expected_accuracy

    # One training batch holding every sample: one SGD step on the mean loss, whatever the shuffle.
    trainer, _, before = tiny_trainer(torch.nn.functional.cross_entropy, batch_size=8)
    torch.nn.functional.cross_entropy(before(images), labels).backward()
    train_loss, _ = trainer.train_one_epoch()
    assert train_loss == pytest.approx(expected_loss, rel=1e-6)
    for stepped, start in zip(trainer.model.parameters(), before.parameters(), strict=True):
        assert torch.allclose(stepped, start - 0.5 * start.grad, atol=1e-6)

    module_criterion = nn.CrossEntropyLoss()
    assert tiny_trainer(module_criterion, batch_size=2)[0].criterion is module_criterion


def help_text(parser: argparse.ArgumentParser) -> str:
    return ' '.join(parser.format_help().split())


@pytest.mark.parametrize('module_name', ANALYSIS_MODULES)
def test_analysis_scripts_take_the_template_flags_and_defaults(module_name: str) -> None:
    parser = importlib.import_module(module_name).build_parser()
    args = parser.parse_args([])
    assert (args.model, args.dataset, args.checkpoint_path) == ('SimpleNet', 'fakes_dataset', None)
    assert analysis_cli.default_run_file('checkpoint', args.dataset, args.model) == Path(DEFAULT_CHECKPOINT)
    assert analysis_cli.default_run_file('checkpoint', 'synthetic_dataset', 'XceptionBased') == Path(
        'checkpoints', 'synthetic_dataset_XceptionBased_Adam.pt')
    for model, checkpoint, dataset in (('--model', '--checkpoint_path', '--dataset'), ('-m', '-cpp', '-d'),
                                       ('-m', '--checkpoint', '-d')):
        args = parser.parse_args([model, 'XceptionBased', checkpoint, 'x.pt', dataset, 'synthetic_dataset'])
        assert (args.model, args.checkpoint_path, args.dataset) == ('XceptionBased', 'x.pt',
                                                                    'synthetic_dataset')
    shown = help_text(parser)
    assert '(default: SimpleNet)' in shown and '(default: fakes_dataset)' in shown
    assert DEFAULT_CHECKPOINT in shown and '--checkpoint_path' in shown


def test_plot_takes_the_template_flags_and_its_default_log(grader: Path) -> None:
    import plot_accuracy_and_loss

    parser = plot_accuracy_and_loss.build_parser()
    assert vars(parser.parse_args([])) == {'model': 'SimpleNet', 'json': None, 'dataset': 'fakes_dataset'}
    for flag in ('-j', '--train_details_json', '--json'):
        args = parser.parse_args(['--model', 'XceptionBased', flag, 'x.json', '-d', 'synthetic_dataset'])
        assert vars(args) == {'model': 'XceptionBased', 'json': 'x.json', 'dataset': 'synthetic_dataset'}
    shown = help_text(parser)
    assert '--train_details_json' in shown and DEFAULT_LOG in shown and '(default: SimpleNet)' in shown

    # main() with no arguments reads the default log's last record (the first is not a run)
    os.makedirs('out')
    record = {'train_loss': [0.7, 0.5], 'val_loss': [0.69, 0.6], 'test_loss': [0.7, 0.62],
              'train_acc': [50.0, 75.0], 'val_acc': [50.0, 62.5], 'test_acc': [50.0, 60.0]}
    Path(DEFAULT_LOG).write_text(json.dumps([{'not': 'a run'}, record]))
    written = plot_accuracy_and_loss.main()
    assert written == [Path('figures', 'fakes_dataset_SimpleNet_losses_plot.png'),
                       Path('figures', 'fakes_dataset_SimpleNet_accuracies_plot.png')]
    assert all(path.stat().st_size > 0 for path in written)


def test_a_bare_numerical_analysis_uses_the_default_run(grader: Path, data_root: Path) -> None:
    """main() with no arguments (a bare `python numerical_analysis.py`: run_cli(main, [])) analyses
    the checkpoint of SimpleNet on fakes_dataset."""
    images, labels = load_test_split_by_hand(data_root)
    torch.manual_seed(8)
    model = SimpleNet().eval()
    with torch.no_grad():
        predictions = model(images).argmax(dim=1)
    expected_accuracy = 100.0 * int((predictions == torch.tensor(labels)).sum()) / len(labels)
    os.makedirs('checkpoints')
    torch.save({'model': model.state_dict(), 'model_name': 'SimpleNet'}, DEFAULT_CHECKPOINT)

    import numerical_analysis

    metrics = numerical_analysis.main()
    assert json.loads(Path('out', 'fakes_dataset_SimpleNet_metrics.json').read_text()) == metrics
    assert (metrics['model'], metrics['dataset'], metrics['checkpoint_path']) == (
        'SimpleNet', 'fakes_dataset', DEFAULT_CHECKPOINT)
    assert (metrics['n_real'], metrics['n_fake']) == (4, 2)
    assert metrics['accuracy_at_argmax_percent'] == pytest.approx(expected_accuracy)
    assert sorted(os.listdir('figures')) == ['fakes_dataset_SimpleNet_det_curve.png',
                                             'fakes_dataset_SimpleNet_roc_curve.png']
