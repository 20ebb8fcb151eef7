"""Every command follows one command-line convention (fmd/core/cli.py's docstring): --batch-size with
its old aliases, --checkpoint, --out DIR, --workers auto from one owner, --no-progress and --seed
where there is progress or randomness, exit codes 2 (usage) and 3 (partial failure), and a --help
that never imports torch. Each parser is built by its module's build_parser() without running it."""
from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmd.core import cli
from helpers import PROJECT_ROOT, one_line_exit, script_command, script_env, untrained_checkpoints

# command -> the module whose build_parser() builds its parser
COMMANDS = {
    'train_main.py': 'train_main',
    'bonus_main.py': 'bonus_main',
    'numerical_analysis.py': 'numerical_analysis',
    'saliency_map.py': 'saliency_map',
    'grad_cam_analysis.py': 'grad_cam_analysis',
    'plot_accuracy_and_loss.py': 'plot_accuracy_and_loss',
    'plot_samples_of_faces_datasets.py': 'plot_samples_of_faces_datasets',
    'fmd.prepare': 'fmd.prepare.cli',
    'fmd.detect': 'fmd.detect.cli',
    'fmd.evaluate': 'fmd.evaluate.cli',
    'fmd.explain': 'fmd.explain.cli',
    'fmd.demo_data': 'fmd.demo_data.cli',
    'fmd.data.landmarks': 'fmd.data.landmarks',
    'fmd.data.plot_augmentations': 'fmd.data.plot_augmentations',
    'fmd.data.plot_self_blend': 'fmd.data.plot_self_blend',
}
ANALYSIS = ('numerical_analysis.py', 'saliency_map.py', 'grad_cam_analysis.py')
BATCH_SIZE_DEFAULTS = {'train_main.py': 32, 'bonus_main.py': 32, 'numerical_analysis.py': 32,
                       'saliency_map.py': 32, 'fmd.detect': 32, 'fmd.evaluate': 32}
WITH_PROGRESS = {'train_main.py', 'bonus_main.py', *ANALYSIS, 'fmd.prepare', 'fmd.detect', 'fmd.evaluate',
                 'fmd.explain', 'fmd.demo_data', 'fmd.data.landmarks'}
WITH_SEED = {'train_main.py', 'bonus_main.py', *ANALYSIS, 'plot_samples_of_faces_datasets.py',
             'fmd.prepare', 'fmd.evaluate', 'fmd.explain', 'fmd.demo_data', 'fmd.data.plot_augmentations',
             'fmd.data.plot_self_blend'}
WITH_WORKERS = {'train_main.py', 'bonus_main.py', *ANALYSIS, 'plot_samples_of_faces_datasets.py',
                'fmd.prepare', 'fmd.detect', 'fmd.evaluate', 'fmd.demo_data', 'fmd.data.landmarks'}
OUT_DIR_DEFAULTS = {'fmd.prepare': None, 'fmd.detect': os.path.join('out', 'detect'), 'fmd.evaluate': 'out',
                    'fmd.demo_data': 'demo_datasets', 'fmd.data.plot_augmentations': 'docs',
                    'fmd.data.plot_self_blend': 'docs', 'fmd.explain': os.path.join('out', 'explain')}


def parser_of(command: str) -> argparse.ArgumentParser:
    return importlib.import_module(COMMANDS[command]).build_parser()


def action(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    found = [a for a in parser._actions if flag in a.option_strings]
    return found[0] if found else None


def test_every_command_is_listed() -> None:
    """bench/bench_help.py's list of commands, less fmd.reporting (its own worker), fmd.core.runs
    (prints the chain, --quick only) and fmd.data.data_root (a check for the Makefile)."""
    sys.path.insert(0, str(PROJECT_ROOT / 'bench'))
    try:
        import bench_help
    finally:
        sys.path.remove(str(PROJECT_ROOT / 'bench'))
    listed = {s.removeprefix('-m ') for s in bench_help.scripts()}
    assert listed - {'fmd.reporting', 'fmd.core.runs', 'fmd.data.data_root'} == set(COMMANDS)


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_batch_size_flag_and_its_aliases(command: str) -> None:
    parser = parser_of(command)
    batch = action(parser, '--batch-size')
    if command not in BATCH_SIZE_DEFAULTS:
        assert batch is None and not any(a.dest == 'batch_size' for a in parser._actions)
        return
    assert batch.option_strings == ['--batch-size', '--batch_size', '-b']
    assert (batch.dest, batch.default) == ('batch_size', BATCH_SIZE_DEFAULTS[command])
    assert action(parser, '--batch_size') is batch and action(parser, '-b') is batch
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(['--batch-size', '0'])
    assert stop.value.code == cli.EXIT_USAGE


@pytest.mark.parametrize('command', ANALYSIS)
def test_analysis_scripts_take_checkpoint_with_the_old_aliases(command: str) -> None:
    parser = parser_of(command)
    checkpoint = action(parser, '--checkpoint')
    assert checkpoint.option_strings == ['--checkpoint', '-cpp', '--checkpoint_path']
    # Not required: the default is the checkpoint train_main.py writes for -m on -d (test_template_contract)
    assert (checkpoint.dest, checkpoint.required, checkpoint.default) == ('checkpoint_path', False, None)
    batch = [] if command == 'grad_cam_analysis.py' else ['-b', '8']  # Grad-CAM: one image at a time
    for flag in checkpoint.option_strings:
        args = parser.parse_args(['-m', 'SimpleNet', '-d', 'fakes_dataset', flag, 'c.pt', *batch])
        assert (args.checkpoint_path, args.model, args.dataset) == ('c.pt', 'SimpleNet', 'fakes_dataset')
        assert getattr(args, 'batch_size', None) == (None if command == 'grad_cam_analysis.py' else 8)


def test_the_tools_take_checkpoint() -> None:
    detect, evaluate = parser_of('fmd.detect'), parser_of('fmd.evaluate')
    assert action(detect, '--checkpoint').option_strings == ['--checkpoint']
    assert detect.parse_args(['x.png', '--checkpoint', 'a.pt']).checkpoint == 'a.pt'
    assert evaluate.parse_args(['--checkpoint', 'a.pt', 'b.pt', '--data', 'd']).checkpoint == ['a.pt', 'b.pt']
    explain = parser_of('fmd.explain')
    assert explain.parse_args(['x.png', '--checkpoint', 'a.pt']).checkpoint == 'a.pt'
    for command in set(COMMANDS) - {*ANALYSIS, 'fmd.detect', 'fmd.evaluate', 'fmd.explain'}:
        assert action(parser_of(command), '--checkpoint') is None, command


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_no_progress_and_seed_where_there_is_progress_or_randomness(command: str) -> None:
    parser = parser_of(command)
    progress, seed = action(parser, '--no-progress'), action(parser, '--seed')
    assert (progress is not None) == (command in WITH_PROGRESS)
    assert (seed is not None) == (command in WITH_SEED)
    if progress is not None:
        assert (progress.dest, progress.default, progress.nargs) == ('no_progress', False, 0)
    if seed is not None:
        assert (seed.dest, seed.default, seed.type) == ('seed', 0, int)


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_workers_default_is_the_one_owners_auto(command: str) -> None:
    workers = action(parser_of(command), '--workers')
    assert (workers is not None) == (command in WITH_WORKERS)
    if workers is None:
        return
    assert (workers.default, workers.type, workers.metavar) == (None, cli.workers_arg, 'N|auto')
    assert cli.AUTO_WORKERS_RULE in workers.help and f'{cli.default_workers()} here' in workers.help
    parser = parser_of(command)
    required = {'train_main.py': [], 'bonus_main.py': [], 'plot_samples_of_faces_datasets.py': [],
                'fmd.prepare': ['src', '--out', 'o', '--name', 'n'], 'fmd.detect': ['x', '--checkpoint', 'c'],
                'fmd.evaluate': ['--checkpoint', 'c', '--data', 'd'], 'fmd.demo_data': [],
                'fmd.data.landmarks': ['d']}.get(command, ['-m', 'SimpleNet', '-d', 'x', '-cpp', 'c'])
    assert parser.parse_args([*required, '--workers', 'auto']).workers is None
    assert parser.parse_args([*required, '--workers', '3']).workers == 3


def test_the_automatic_workers_rule() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    assert cli.default_workers() == min(4, cores)
    assert cli.resolve_workers(None) == cli.default_workers()
    assert cli.resolve_workers(None, in_memory=True) == 0
    assert cli.resolve_workers(2, in_memory=True) == 2 and cli.resolve_workers(0) == 0
    from fmd.core import devices

    assert devices.default_workers is cli.default_workers  # one owner, still importable from devices
    # the commands that start processes themselves resolve auto when they parse
    from fmd.detect import cli as detect
    from fmd.evaluate import cli as evaluate
    from fmd.prepare import cli as prepare

    assert detect.parse_args(['x', '--checkpoint', 'c']).workers == cli.default_workers()
    assert evaluate.parse_args(['--checkpoint', 'c', '--data', 'd']).workers == cli.default_workers()
    assert prepare.parse_args(['s', '--out', 'o', '--name', 'n']).workers == cli.default_workers()


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_out_is_always_a_folder(command: str) -> None:
    out = action(parser_of(command), '--out')
    assert (out is not None) == (command in OUT_DIR_DEFAULTS)
    if out is None:
        return
    assert (out.dest, out.metavar, out.default) == ('out', 'DIR', OUT_DIR_DEFAULTS[command])
    assert out.help.startswith('output folder') and 'inside it' in out.help


def test_a_file_like_out_is_a_usage_error() -> None:
    from fmd.data import plot_self_blend
    from fmd.evaluate import cli as evaluate

    with pytest.raises(cli.UsageError, match=r'--out out/evaluation.json: --out is a folder'):
        evaluate.parse_args(['--checkpoint', 'c', '--data', 'd', '--out', 'out/evaluation.json'])
    assert evaluate.EVALUATION_NAMES == ('evaluation.json', 'evaluation.md')
    with pytest.raises(cli.UsageError, match=r'writes self_blend_examples.png inside it'):
        plot_self_blend.main(['dataset', '--out', 'docs/self_blend_examples.png'])
    with pytest.raises(SystemExit) as stop:
        cli.run_cli(plot_self_blend.main, ['dataset', '--out', 'figure.png'])
    assert stop.value.code == cli.EXIT_USAGE


def test_prepare_takes_out_or_the_old_positional(capsys: pytest.CaptureFixture) -> None:
    from fmd.prepare import cli as prepare

    assert prepare.parse_args(['src', 'root', '--name', 'n']).out == 'root'
    assert prepare.parse_args(['src', '--out', 'root', '--name', 'n']).out == 'root'
    assert prepare.parse_args(['src', 'root', '--out', 'root', '--name', 'n']).out == 'root'
    for argv, message in ((['src', 'a', '--out', 'b', '--name', 'n'], 'OUT a and --out b differ'),
                          (['src', '--name', 'n'], 'give --out DIR (or SRC OUT)')):
        with pytest.raises(SystemExit) as stop:
            prepare.parse_args(argv)
        assert stop.value.code == cli.EXIT_USAGE and message in capsys.readouterr().err


def test_bonus_main_names_the_bonus_checkpoint_without_importing_it() -> None:
    import bonus_main
    import bonus_model

    assert bonus_main.BONUS_CHECKPOINT_PATH == bonus_model.BONUS_CHECKPOINT


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_help_imports_no_torch(command: str) -> None:
    """--help answers before torch (or torchvision, matplotlib, cv2, sklearn) is imported."""
    run = (f'runpy.run_path({str(PROJECT_ROOT / command)!r}, run_name="__main__")' if command.endswith('.py')
           else f'runpy.run_module({command!r}, run_name="__main__", alter_sys=True)')
    code = (f'import runpy, sys; sys.argv = [{command!r}, "--help"]\n'
            f'try:\n    {run}\nexcept SystemExit as stop:\n    assert stop.code in (0, None), stop.code\n'
            'heavy = {"torch", "torchvision", "matplotlib", "cv2", "sklearn"}\n'
            'print(sorted({m.split(".")[0] for m in sys.modules} & heavy), file=sys.stderr)')
    result = subprocess.run([sys.executable, '-c', code], cwd=PROJECT_ROOT, env=script_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'usage:' in result.stdout
    assert result.stderr.strip().splitlines()[-1] == '[]'


# --- exit codes, through real subprocesses -------------------------------------------------------

@pytest.fixture(scope='module')
def detect_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(an untrained SimpleNet checkpoint, a readable face crop, a .jpg that is not an image)."""
    folder = tmp_path_factory.mktemp('detect_exit_codes')
    checkpoint = untrained_checkpoints(folder, ('SimpleNet',))['SimpleNet']
    face = folder / 'face.png'
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(face)
    broken = folder / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    return checkpoint, face, broken


def run_detect(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*script_command('fmd.detect'), *map(str, args)], cwd=cwd, env=script_env(),
                          capture_output=True, text=True, timeout=300)


def test_detect_exits_3_on_a_partial_failure_and_1_when_nothing_was_read(
        detect_inputs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint, face, broken = detect_inputs
    common = ('--checkpoint', checkpoint, '--detector', 'none', '--workers', '0', '--no-progress')
    partial = run_detect(face, broken, *common, '--out', tmp_path / 'partial', cwd=tmp_path)
    assert partial.returncode == cli.EXIT_PARTIAL == 3, partial.stderr
    assert 'Traceback' not in partial.stderr
    assert partial.stderr.strip().splitlines() == [
        f'error: {broken}: cannot read it: not an image that PIL can decode']
    assert (tmp_path / 'partial' / 'summary.csv').is_file()
    # the other two in this process (run_cli as the console script runs it)
    from fmd.detect import cli as detect_cli

    common = tuple(map(str, common))
    nothing = [str(broken), *common, '--out', str(tmp_path / 'nothing')]
    assert one_line_exit(capsys, detect_cli.main, nothing) == \
        (cli.EXIT_ERROR, f'error: {broken}: cannot read it: not an image that PIL can decode')
    assert cli.EXIT_ERROR == 1
    assert detect_cli.main([str(face), *common, '--out', str(tmp_path / 'all')]) == 0


@pytest.mark.parametrize('args, message', [
    (['--threshold', '0.5'], 'the following arguments are required: --checkpoint'),
    (['--checkpoint', 'c.pt', '--threshold', '2'], 'argument --threshold: must be in [0, 1], got 2'),
    (['--checkpoint', 'c.pt', '--batch_size', '0'], 'argument --batch-size/--batch_size/-b: must be an '
                                                    'integer in 1..65536, got 0'),
    (['--checkpoint', 'c.pt', '--size', '4'], 'argument --size: must be an integer in 8..1024, got 4'),
])
def test_detect_exits_2_on_a_usage_error(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_detect('x.png', *args, cwd=tmp_path)
    assert result.returncode == cli.EXIT_USAGE == 2, result.stderr
    assert 'Traceback' not in result.stderr and message in result.stderr
    assert not (tmp_path / 'out').exists()


def test_run_cli_turns_a_usage_error_into_exit_2_with_one_line(capsys: pytest.CaptureFixture) -> None:
    def main() -> None:
        raise cli.UsageError('--thing must be positive')

    with pytest.raises(SystemExit) as stop:
        cli.run_cli(main)
    assert stop.value.code == 2 and capsys.readouterr().err == 'error: --thing must be positive\n'


@pytest.mark.parametrize('text, value', [('0', 0.0), ('0.25', 0.25), ('1', 1.0), ('1e-1', 0.1)])
def test_unit_interval_accepts_probabilities(text: str, value: float) -> None:
    assert cli.unit_interval(text) == value


@pytest.mark.parametrize('text, message', [('1.5', r'must be in \[0, 1\], got 1.5'),
                                           ('-0.1', r'must be in \[0, 1\]'),
                                           ('nan', 'must be a finite number'),
                                           ('half', "not a number: 'half'")])
def test_unit_interval_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        cli.unit_interval(text)


def test_model_help_lists_exactly_the_registered_models_and_aliases() -> None:
    # MODEL_NAMES is written out so that --help and -m need not import the models; it must not drift.
    from fmd.core.options import MODEL_NAMES
    from fmd.core.registry import MODEL_ALIASES, model_names, registered_models

    assert sorted(MODEL_NAMES) == registered_models()
    assert {alias: name for name, aliases in MODEL_NAMES.items() for alias in aliases} == MODEL_ALIASES
    named = set(re.findall(r'[A-Z][A-Za-z0-9]*(?:-[A-Z][A-Za-z0-9]*)?', cli.MODEL_HELP))
    assert named == set(model_names())
