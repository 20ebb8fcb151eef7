"""Write report/report.md and report/report.pdf: the assignment's answers, Q1-Q35 and the bonus.

Every number comes from the files a run left in out/ (training logs, metrics, bonus results,
saliency statistics, step timings) or from the model definitions (parameter counts, layer sizes),
and every signature from the code itself; an input that is missing is listed, never guessed. The
question table lives in fmd.reporting.questions, the Markdown/PDF rendering in fmd.reporting.document.
"""
from __future__ import annotations

import argparse
import functools
import inspect
import json
import math
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmd.core import runs
from fmd.core.atomic_io import atomic_write_json
from fmd.data.data_root import DATASET_NAMES, DATASET_PARTS, is_demo_root
from fmd.reporting.document import Document, to_markdown, to_pdf
from fmd.reporting.questions import BONUS_TITLE, CHAPTERS, QUESTION_RUNS, QUESTIONS, Question
from fmd.training.collapse import collapse_note, run_collapsed

TITLE = 'Facial Manipulation Detection'
SUBTITLE = 'Answers to the assignment, Q1-Q35 and the bonus, from one run'
COURSE = 'Computer Vision 0510-6251, Tel Aviv University'
INPUT_SIZE = 256


# --- formatting ------------------------------------------------------------------------------------

def pct(value: float | None) -> str:
    """Accuracy in percent, two decimals: '86.33%'."""
    return 'n/a' if value is None else f'{value:.2f}%'


def auc(value: float | None) -> str:
    """AUC, AP and other [0, 1] scores, three decimals."""
    return 'n/a' if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f'{value:.3f}'


def count(value: int | None) -> str:
    return 'n/a' if value is None else f'{value:,}'


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f'{hours} h {minutes} min {rest} s'
    return f'{minutes} min {rest} s' if minutes else f'{rest} s'


# --- what the run left behind ---------------------------------------------------------------------

@dataclass
class RunFacts:
    """One training run of the chain: the last record of its log and its metrics file."""

    run: runs.Run
    record: dict | None
    metrics: dict | None

    @property
    def epochs(self) -> int:
        return len(self.record['val_acc']) if self.record else 0

    @property
    def best_epoch(self) -> int | None:
        """1-based epoch of the best-validation checkpoint (the first maximum, as Trainer saves)."""
        if not self.record or not self.record.get('val_acc'):
            return None
        logged = self.record.get('best_epoch')
        if isinstance(logged, int) and 1 <= logged <= self.epochs:
            return logged
        values = self.record['val_acc']
        return values.index(max(values)) + 1

    def at_best(self, key: str) -> float | None:
        epoch = self.best_epoch
        return None if epoch is None else self.record[key][epoch - 1]

    @property
    def pretrained(self) -> bool | None:
        value = (self.record or {}).get('pretrained')
        return value if isinstance(value, bool) else None

    @property
    def seconds_per_epoch(self) -> float | None:
        seconds = (self.record or {}).get('epoch_seconds') or []
        return sum(seconds) / len(seconds) if seconds else None

    def fake_auc(self) -> float | None:
        return self.metrics['second_score']['roc_auc'] if self.metrics else None

    @property
    def label(self) -> str:
        return f'{self.run.model} on {self.run.dataset}'


@dataclass
class ModelFacts:
    """Read from the model definitions (no checkpoint, no ImageNet weights needed)."""

    simplenet_params: int
    simplenet_layers: list[str]
    simplenet_fc1_params: int
    simplenet_conv3_map: tuple[int, ...]
    backbone_params: int
    backbone_fc: tuple[int, int]
    backbone_fc_params: int
    n_separable: int
    n_plain_convs: int
    n_shortcut_convs: int
    n_blocks: int
    n_middle_blocks: int
    stem_channels: tuple[int, int]
    block_channels: list[int]  # output channels of residual blocks 1..12
    feature_map: tuple[int, ...]  # backbone features for a 3 x 256 x 256 input
    xception_conv3_map: tuple[int, ...]
    conv4: tuple[int, int]
    separable_example: dict[str, int]
    based_params: int
    head_layers: list[tuple[int, int]]
    head_params: int
    bonus_params: int


@dataclass
class Facts:
    runs: dict[tuple[str, str], RunFacts]
    models: ModelFacts
    data: dict
    split_counts: dict[str, dict[str, tuple[int, int]]]
    timings: list[dict]
    bonus: dict | None
    saliency: dict[tuple[str, str], dict]
    missing: list[str] = field(default_factory=list)

    def run(self, dataset: str, model: str) -> RunFacts:
        return self.runs[(dataset, model)]

    @property
    def demo(self) -> bool | None:
        sources = {info['source'] for info in self.data.get('roots', {}).values()}
        return None if not sources else sources == {'demo'}

    @property
    def xception(self) -> RunFacts:
        return self.run('synthetic_dataset', 'XceptionBased')

    @property
    def xception_random(self) -> bool:
        return self.xception.pretrained is False


def read_json(path: Path, missing: list[str]) -> Any:
    """Parsed JSON, or None with the file listed as missing or unreadable."""
    if not path.is_file():
        missing.append(f'{path} (not found)')
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        missing.append(f'{path} (unreadable: {error})')
        return None


def gather_runs(missing: list[str]) -> dict[tuple[str, str], RunFacts]:
    gathered = {}
    for run in runs.ASSIGNMENT_RUNS:
        records = read_json(run.log, missing)
        record = records[-1] if isinstance(records, list) and records else None
        if records is not None and record is None:
            missing.append(f'{run.log} (no training record)')
        metrics = read_json(run.metrics, missing) if 'numerical' in run.analyses else None
        if metrics is not None and 'second_score' not in metrics:
            missing.append(f'{run.metrics} (no second_score)')
            metrics = None
        gathered[(run.dataset, run.model)] = RunFacts(run, record, metrics)
    return gathered


def gather_data(gathered: dict[tuple[str, str], RunFacts]) -> dict:
    """Where the data came from: course data, or demo data with its manifest digest."""
    roots = sorted({f.record['data_root'] for f in gathered.values()
                    if f.record and f.record.get('data_root')})
    info: dict = {'roots': {}}
    for root in roots:
        path = Path(root)
        if path.is_dir() and is_demo_root(path):
            from fmd.demo_data.manifest import manifest_digest, read_manifest

            manifest = read_manifest(path) or {}
            info['roots'][root] = {'source': 'demo', 'scale': manifest.get('scale'),
                                   'seed': manifest.get('seed'),
                                   'manifest_sha256': manifest_digest(path)}
        elif path.is_dir():
            info['roots'][root] = {'source': 'course'}
        else:
            info['roots'][root] = {'source': 'demo' if 'demo' in path.name else 'unknown',
                                   'note': 'folder not found when the report was written'}
    return info


def gather_split_counts(data: dict) -> dict[str, dict[str, tuple[int, int]]]:
    """(real, fake) image counts of every split under the first data root that exists."""
    from faces_dataset import list_images

    for root in data['roots']:
        counts: dict[str, dict[str, tuple[int, int]]] = {}
        for name in DATASET_NAMES:
            for part in DATASET_PARTS:
                folder = Path(root, name, part)
                if (folder / 'real').is_dir() and (folder / 'fake').is_dir():
                    counts.setdefault(name, {})[part] = (len(list_images(folder / 'real')),
                                                         len(list_images(folder / 'fake')))
        if counts:
            return counts
    return {}


def gather_timings(missing: list[str]) -> list[dict]:
    if not runs.TIMINGS.is_file():
        missing.append(f'{runs.TIMINGS} (not found)')
        return []
    steps = []
    for line in runs.TIMINGS.read_text().splitlines()[1:]:
        parts = line.split('\t')
        if len(parts) >= 3 and parts[0]:
            try:
                steps.append({'step': parts[0], 'seconds': float(parts[1]), 'peak_rss_mib': parts[2]})
            except ValueError:
                continue
    return steps


@functools.cache
def gather_models() -> ModelFacts:
    """Parameter counts and layer shapes, read from freshly built (untrained) models."""
    import torch
    from torch import nn

    from bonus_model import BonusNet
    from models import SimpleNet, get_xception_based_model
    from utils import get_nof_params
    from xception import Block, SeparableConv2d, build_xception_backbone

    def shapes_of(layers: list[nn.Module], run: Any) -> list[tuple[int, ...]]:
        """Output shapes (without the batch) of `layers` in one forward pass of a 256x256 image."""
        seen: dict[int, tuple[int, ...]] = {}

        def record(module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:  # None: output kept
            seen.setdefault(id(module), tuple(out.shape[1:]))

        handles = [layer.register_forward_hook(record) for layer in layers]
        with torch.no_grad():
            run(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
        for handle in handles:
            handle.remove()
        return [seen[id(layer)] for layer in layers]

    simple = SimpleNet().eval()
    layers = []
    for name, module in simple.named_children():
        if isinstance(module, nn.Conv2d):
            layers.append(f'{name} {module.in_channels}→{module.out_channels} '
                          f'({module.kernel_size[0]}×{module.kernel_size[1]})')
        elif isinstance(module, nn.Linear):
            layers.append(f'{name} {module.in_features:,}→{module.out_features:,}')
    backbone = build_xception_backbone(pretrained=False).eval()
    separables = [m for m in backbone.modules() if isinstance(m, SeparableConv2d)]
    inside = {id(m.conv1) for m in separables} | {id(m.pointwise) for m in separables}
    shortcuts = [m for n, m in backbone.named_modules() if n.endswith('.skip') and m is not None]
    plain = [m for m in backbone.modules() if isinstance(m, nn.Conv2d) and id(m) not in inside
             and not any(m is s for s in shortcuts)]
    blocks = [m for m in backbone.modules() if isinstance(m, Block)]
    example = next(m for m in separables if m.conv1.in_channels == m.pointwise.out_channels == 728)
    k = example.conv1.kernel_size[0]
    feature_map, conv3_map = shapes_of([backbone.conv4, backbone.conv3], backbone.features)
    based = get_xception_based_model(pretrained=False)
    head = [(m.in_features, m.out_features) for m in based.fc.modules() if isinstance(m, nn.Linear)]
    return ModelFacts(
        simplenet_params=get_nof_params(simple), simplenet_layers=layers,
        simplenet_fc1_params=get_nof_params(simple.fc1),
        simplenet_conv3_map=shapes_of([simple.conv3], simple)[0],
        backbone_params=get_nof_params(backbone),
        backbone_fc=(backbone.fc.in_features, backbone.fc.out_features),
        backbone_fc_params=get_nof_params(backbone.fc), n_separable=len(separables),
        n_plain_convs=len(plain), n_shortcut_convs=len(shortcuts), n_blocks=len(blocks),
        n_middle_blocks=sum(1 for b in blocks if b.skip is None), feature_map=feature_map,
        stem_channels=(backbone.conv1.out_channels, backbone.conv2.out_channels),
        block_channels=[[m for m in b.rep if isinstance(m, nn.BatchNorm2d)][-1].num_features
                        for b in blocks],
        xception_conv3_map=conv3_map,
        conv4=(backbone.conv4.conv1.in_channels, backbone.conv4.pointwise.out_channels),
        separable_example={'channels': 728, 'kernel': k,
                           'separable': get_nof_params(example),
                           'regular': 728 * 728 * k * k},
        based_params=get_nof_params(based), head_layers=head, head_params=get_nof_params(based.fc),
        bonus_params=get_nof_params(BonusNet()))


def gather(missing: list[str] | None = None) -> Facts:
    missing = [] if missing is None else missing
    gathered = gather_runs(missing)
    data = gather_data(gathered)
    bonus = read_json(runs.BONUS_RESULTS, missing)
    if not runs.BONUS_CHECKPOINT.is_file():
        missing.append(f'{runs.BONUS_CHECKPOINT} (not found)')
    saliency = {}
    for run in runs.ASSIGNMENT_RUNS:
        if 'saliency' in run.analyses:
            stats = read_json(runs.saliency_stats_path(run.dataset, run.model), missing)
            if isinstance(stats, dict):
                saliency[(run.dataset, run.model)] = stats
    return Facts(runs=gathered, models=gather_models(), data=data,
                 split_counts=gather_split_counts(data), timings=gather_timings(missing),
                 bonus=bonus if isinstance(bonus, dict) else None, saliency=saliency,
                 missing=missing)


# --- pieces used by many answers -------------------------------------------------------------------

def signature_text(function: Any, width: int = 82) -> str:
    """`name(params) -> return`, annotations as written in the source (from inspect.signature).

    Longer than `width` characters, the parameters are packed onto indented continuation lines.
    """
    signature = inspect.signature(function)
    empty = inspect.Parameter.empty

    def annotation(value: Any) -> str:
        return value if isinstance(value, str) else inspect.formatannotation(value)

    parts, star_done = [], False
    for parameter in signature.parameters.values():
        text = parameter.name
        if parameter.kind is parameter.VAR_POSITIONAL:
            text, star_done = '*' + text, True
        elif parameter.kind is parameter.VAR_KEYWORD:
            text = '**' + text
        elif parameter.kind is parameter.KEYWORD_ONLY and not star_done:
            parts.append('*')
            star_done = True
        if parameter.annotation is not empty:
            text += ': ' + annotation(parameter.annotation)
        if parameter.default is not empty:
            text += (' = ' if parameter.annotation is not empty else '=') + repr(parameter.default)
        parts.append(text)
    returns = '' if signature.return_annotation is empty else \
        ' -> ' + annotation(signature.return_annotation)
    one_line = f'{function.__name__}({", ".join(parts)}){returns}'
    if len(one_line) <= width:
        return one_line
    lines, current = [f'{function.__name__}('], ' ' * 8
    for index, part in enumerate(parts):
        piece = part + (', ' if index < len(parts) - 1 else '')
        if len(current) + len(piece.rstrip()) > width and current.strip():
            lines.append(current.rstrip())
            current = ' ' * 8
        current += piece
    closing = ')' + returns
    if len(current) + len(closing) <= width:
        return '\n'.join([*lines, current + closing])
    return '\n'.join([*lines, current.rstrip(), closing])


def own_docstring(function: Any) -> str:
    """The function's own docstring (not one inherited from a base class); for __init__, the class's."""
    text = function.__doc__
    if not text and function.__name__ == '__init__':
        owner = inspect.getmodule(function)
        cls = getattr(owner, function.__qualname__.split('.')[0], None)
        text = getattr(cls, '__doc__', None)
    return inspect.cleandoc(text) if text else ''


def code_reference(doc: Document, *functions: Any) -> None:
    """Where each function lives, with its signature and the first paragraph of its docstring."""
    where, blocks = [], []
    for function in functions:
        source = Path(inspect.getsourcefile(function)).name
        line = inspect.getsourcelines(function)[1]
        where.append(f'`{function.__qualname__}` in `{source}` (line {line})')
        summary = ' '.join(own_docstring(function).split('\n\n')[0].split())
        block = f'# {source}, line {line}\ndef {signature_text(function)}:'
        if summary:
            block += '\n' + textwrap.fill(summary, width=84, initial_indent='    """',
                                          subsequent_indent='    ') + '"""'
        blocks.append(block)
    doc.para('Implemented by ' + ', '.join(where) + '.')
    doc.code('\n\n'.join(blocks))


def add_figure(doc: Document, facts: Facts, paths: list[Path], caption: str, question: str,
               width: float = 1.0) -> bool:
    """A numbered figure when every file exists; otherwise a note, and the files listed as missing."""
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        facts.missing.extend(f'{p} (not found)' for p in absent)
        doc.para(f'*No figure: {", ".join(f"`{p}`" for p in absent)} not found.*', small=True)
        return False
    doc.figure(list(paths), caption, question, width=width)
    return True


def run_for(question: Question, facts: Facts) -> RunFacts:
    return facts.run(*QUESTION_RUNS[question.number])


def missing_run(doc: Document, run: RunFacts) -> bool:
    if run.record is None:
        doc.para(f'*No training log `{run.run.log}`: train {run.label} (run_me.sh) to answer this.*')
        return True
    return False


def training_command(run: RunFacts) -> str:
    record = run.record or {}
    optimizer = record.get('optimizer', {})
    lr = optimizer.get('params', {}).get('lr', 'n/a')
    return (f'python train_main.py -d {run.run.dataset} -m {run.run.model} --lr {lr} '
            f'-b {record.get("batch_size", "n/a")} -e {run.epochs} -o {optimizer.get("name", "n/a")}')


def data_caveat(facts: Facts) -> str:
    if facts.demo:
        return ('The data of this run is the generated demo stand-in, not the course data, so the '
                'numbers show that the pipeline works, not how it does on real faces.')
    return ''


def random_init_caveat(facts: Facts) -> str:
    if not facts.xception_random:
        return ''
    run = facts.xception
    return (f'**Caveat:** Xception had no ImageNet weights in this run (the training log records '
            f'`"pretrained": false`): these numbers and maps come from a randomly initialised network '
            f'trained for {run.epochs} epoch(s). The assignment expects an ImageNet-pretrained '
            'backbone fine-tuned for 2 epochs; place the weights file (docs/training.md, "Xception and '
            'its ImageNet weights") and re-run to get the numbers the assignment asks about.')


def random_init_reminder(facts: Facts) -> str:
    return ('*Xception was randomly initialised in this run (no ImageNet weights; see Q17).*'
            if facts.xception_random else '')


def n_train(facts: Facts, dataset: str) -> int | None:
    counts = facts.split_counts.get(dataset, {}).get('train')
    return sum(counts) if counts else None


def near_chance(run: RunFacts) -> bool | None:
    """True when the run's test AUC lies inside the 95% band of a label-blind score."""
    figures = chance_figures(run)
    if figures is None or figures['auc'] is None:
        return None
    low, high = figures['auc_band']
    return low <= figures['auc'] <= high


def split_sizes(facts: Facts, dataset: str) -> str:
    counts = facts.split_counts.get(dataset, {})
    parts = [f'{part} {sum(counts[part]):,}' for part in DATASET_PARTS if part in counts]
    return ', '.join(parts)


def chance_figures(run: RunFacts) -> dict | None:
    """Majority baseline, binomial p-value of the test accuracy and the AUC chance band."""
    if not run.metrics or run.best_epoch is None:
        return None
    from scipy.stats import binomtest

    n_real, n_fake = run.metrics['n_real'], run.metrics['n_fake']
    n = n_real + n_fake
    baseline = max(n_real, n_fake) / n
    accuracy = run.at_best('test_acc')
    correct = round(accuracy / 100 * n)
    p_value = binomtest(correct, n, baseline, alternative='greater').pvalue
    sd = math.sqrt((n_real + n_fake + 1) / (12 * n_real * n_fake)) if n_real and n_fake else math.nan
    return {'n': n, 'baseline': 100 * baseline, 'accuracy': accuracy, 'correct': correct,
            'p_value': float(p_value), 'auc': run.fake_auc(),
            'auc_band': (0.5 - 1.96 * sd, 0.5 + 1.96 * sd)}


# --- Chapter 1 -------------------------------------------------------------------------------------

def answer_getitem(doc: Document, facts: Facts, question: Question) -> None:
    from faces_dataset import FacesDataset

    code_reference(doc, FacesDataset.__getitem__)
    doc.para('`dataset[index]` returns `(image, label)`. Indices `0 … n_real−1` are the real images '
             '(label 0) and the rest the fake ones (label 1); each class folder is listed in file-name '
             'order once, in the constructor, so an index always names the same file. The file is '
             'opened with PIL and converted to RGB (grayscale, RGBA, palette and CMYK files too), '
             'then the split\'s transform turns it into a normalised 3×256×256 tensor: '
             '`TRANSFORM_TRAIN` (random 256-pixel crop of the 4-pixel-padded image and a random '
             'horizontal flip) for training, `TRANSFORM_TEST` (normalisation only) for validation '
             'and test. An unreadable file raises an error that names it.')


def answer_len(doc: Document, facts: Facts, question: Question) -> None:
    from faces_dataset import FacesDataset

    code_reference(doc, FacesDataset.__len__)
    doc.para('The length is the number of real images plus the number of fake images, counted once '
             'when the dataset is built (only image files: png, jpg, jpeg, bmp, webp).')
    if not facts.split_counts:
        doc.para('*The data folder of this run was not found when the report was written, so the split '
                 'sizes cannot be listed here.*')
        return
    rows = []
    for name, parts in facts.split_counts.items():
        for part, (n_real, n_fake) in parts.items():
            rows.append([name, part, count(n_real), count(n_fake), count(n_real + n_fake)])
    root = next(iter(facts.data['roots']))
    doc.table(['dataset', 'split', 'real', 'fake', 'len(dataset)'], rows,
              f'Size of every split, counted in `{root}` when the report was written',
              question.label, align='llrrr')


def answer_samples(doc: Document, facts: Facts, question: Question) -> None:
    import plot_samples_of_faces_datasets as samples

    code_reference(doc, samples.main)
    add_figure(doc, facts, [runs.SAMPLES_FIGURE],
               'a real (left) and a fake (right) training image of each dataset '
               '(top: fakes_dataset, bottom: synthetic_dataset), shown without augmentation',
               question.label, width=0.62)
    if facts.demo:
        doc.para('These are **demo** images: drawn faces generated by `fmd.demo_data`, not the '
                 'course data. Their fakes imitate the two manipulations: in `fakes_dataset` another '
                 'identity\'s inner face, rendered at low resolution, is blended in with a soft seam; '
                 'in `synthetic_dataset` the whole image is upsampled by fixed transposed convolutions '
                 'that leave a faint periodic pattern. Neither difference is obvious by eye.')
    else:
        doc.para('`fakes_dataset` holds face swaps: a face from one person blended into a photo of '
                 'another, so the manipulation is local to the face and its boundary. '
                 '`synthetic_dataset` holds faces generated whole by a GAN, with no swapped region. At '
                 'this size neither kind of fake is easy to tell from a real face by eye, which is '
                 'why a detector is trained.')


def answer_train_one_epoch(doc: Document, facts: Facts, question: Question) -> None:
    from trainer import Trainer

    code_reference(doc, Trainer.train_one_epoch)
    devices = sorted({f.record.get('device') for f in facts.runs.values()
                      if f.record and f.record.get('device')})
    doc.para('The model goes to training mode (dropout and batch-norm statistics active) and the '
             'shuffled training loader is read once. For every batch: zero the gradients, forward '
             'pass, cross-entropy loss, backward pass, optimizer step. The loss is accumulated as '
             '*loss × batch size* and the correct arg-max predictions are counted, so the epoch\'s '
             'result, `(mean loss per sample, accuracy in %)`, weighs every sample equally even when '
             'the last batch is smaller. On CUDA the forward pass runs in mixed precision with a '
             'gradient scaler; on the CPU in float32.',
             f'This run trained on: {", ".join(f"`{d}`" for d in devices)}.' if devices else '')


def answer_evaluate(doc: Document, facts: Facts, question: Question) -> None:
    from trainer import Trainer

    code_reference(doc, Trainer.evaluate_model_on_dataloader, Trainer.validate, Trainer.test)
    doc.para('Evaluation puts the model in eval mode (dropout off, batch-norm uses its running '
             'statistics), disables gradients (`torch.no_grad`) and computes the same two numbers as '
             'training, mean loss per sample and accuracy, without changing the weights; the previous '
             'mode is restored afterwards. `validate` and `test` call it on the validation and test '
             'sets. `Trainer.run` trains, validates and tests every epoch, logs all six curves to '
             '`out/<dataset>_<model>_<optimizer>.json` and saves a checkpoint whenever the validation '
             'accuracy improves.')


def answer_train_simplenet(doc: Document, facts: Facts, question: Question) -> None:
    run = run_for(question, facts)
    models = facts.models
    fc1_share = 100 * models.simplenet_fc1_params / models.simplenet_params
    doc.para('**Set-up.** SimpleNet is three convolutions, each followed by ReLU and 2×2 max-pooling, '
             'then three fully connected layers: ' + ', '.join(models.simplenet_layers) + f'. It has '
             f'{count(models.simplenet_params)} parameters, {fc1_share:.1f}% of them in `fc1`.')
    if missing_run(doc, run):
        return
    doc.code(training_command(run))
    doc.para(f'This run: {run.epochs} epoch(s) on `{run.record.get("device", "n/a")}`, '
             f'{run.seconds_per_epoch:.1f} s per epoch (training plus the validation and test passes); '
             f'split sizes {split_sizes(facts, run.run.dataset) or "n/a"}.' if run.seconds_per_epoch
             else '')
    doc.para('**Why this set-up.** The loss is the cross-entropy of the two logits, i.e. the negative '
             'log-likelihood of a softmax classifier: a differentiable stand-in for the error rate '
             'that also rewards confident correct answers. Adam adapts the step size of every '
             'parameter from running moments of its gradient, so its default learning rate of 0.001 '
             'usually works without much tuning. The random crop and flip are label-preserving '
             'changes that make memorising the training images harder. The validation set chooses '
             'the epoch (the checkpoint is rewritten only when validation accuracy improves) and the '
             'test set is reported only at that epoch, so no choice is tuned on the test set and its '
             'accuracy stays an unbiased estimate.')


def answer_curves(doc: Document, facts: Facts, question: Question) -> None:
    run = run_for(question, facts)
    if question.number == 13 and run.record:
        doc.para(f'SimpleNet is trained on `synthetic_dataset` exactly as in Q6 '
                 f'({run.epochs} epoch(s); split sizes {split_sizes(facts, run.run.dataset) or "n/a"}):')
        doc.code(training_command(run))
    if question.number == 26:
        doc.para(random_init_reminder(facts))
    add_figure(doc, facts, [run.run.figure('losses_plot'), run.run.figure('accuracies_plot')],
               f'mean loss per sample (left) and accuracy (right) of {run.label}, by epoch, on the '
               'training, validation and test sets', question.label)
    if missing_run(doc, run):
        return
    record = run.record
    train_loss, val_loss = record['train_loss'], record['val_loss']
    train_acc, val_acc = record['train_acc'], record['val_acc']
    if run.epochs == 1:
        doc.para('This run trained for a single epoch, so every curve is one point and the plots show '
                 f'no trend: training loss {train_loss[0]:.3f}, validation loss {val_loss[0]:.3f}, '
                 f'validation accuracy {pct(val_acc[0])}.')
        return
    sentences = [f'Over {run.epochs} epochs the training loss went from {train_loss[0]:.3f} to '
                 f'{train_loss[-1]:.3f} and the training accuracy from {pct(train_acc[0])} to '
                 f'{pct(train_acc[-1])}; validation accuracy ranged from {pct(min(val_acc))} to '
                 f'{pct(max(val_acc))}, highest at epoch {run.best_epoch}.']
    lowest = val_loss.index(min(val_loss)) + 1
    if lowest < run.epochs and train_loss[-1] < train_loss[lowest - 1]:
        sentences.append(f'The validation loss was lowest at epoch {lowest} and then rose while the '
                         'training loss kept falling: the start of over-fitting, which the '
                         'best-validation checkpoint guards against.')
    elif lowest == run.epochs:
        sentences.append('The validation loss was still falling at the last epoch, so more epochs '
                         'might still help.')
    if max(val_acc) - min(val_acc) < 1e-9:
        sentences.append(f'The validation accuracy never moved from {pct(val_acc[0])}: the model '
                         'predicts the same way for every validation image.')
    sentences.append('The training figures are measured during the epoch, on augmented images and '
                     'while the weights change, so they are not strictly comparable with the '
                     'validation and test figures measured after it.')
    doc.para(*sentences)


def answer_best_epoch(doc: Document, facts: Facts, question: Question) -> None:
    run = run_for(question, facts)
    if missing_run(doc, run):
        return
    record, best = run.record, run.best_epoch
    rows = [[f'{e + 1}' + (' (best)' if e + 1 == best else ''), pct(record['train_acc'][e]),
             pct(record['val_acc'][e]), pct(record['test_acc'][e])] for e in range(run.epochs)]
    doc.table(['epoch', 'train accuracy', 'validation accuracy', 'test accuracy'], rows,
              f'accuracy of {run.label} per epoch, from `{run.run.log}`', question.label, align='lrrr')
    doc.para(f'**Best validation accuracy: {pct(run.at_best("val_acc"))}, at epoch {best}. Test '
             f'accuracy at that epoch: {pct(run.at_best("test_acc"))}.** That epoch\'s weights are the '
             f'checkpoint `{run.run.checkpoint}` that every later analysis loads.')
    if question.number == 27:
        simple = facts.run('synthetic_dataset', 'SimpleNet')
        if simple.record:
            doc.para(f'For comparison, SimpleNet on the same data: {pct(simple.at_best("val_acc"))} '
                     f'validation and {pct(simple.at_best("test_acc"))} test accuracy (Q14).')
        if run.metrics:
            doc.para(f'On the test set the fake output of {run.label} has ROC AUC '
                     f'{auc(run.fake_auc())}' + (f' (SimpleNet: {auc(simple.fake_auc())})'
                                                  if simple.metrics else '') + '.')
        add_figure(doc, facts, [run.run.figure('roc_curve'), run.run.figure('det_curve')],
                   f'ROC (left) and DET (right) curves of both outputs of {run.label} on the test '
                   'set, positive label = fake', question.label)
        doc.para(random_init_reminder(facts))
    doc.para(data_caveat(facts), small=True)


def answer_proportion(doc: Document, facts: Facts, question: Question) -> None:
    run = run_for(question, facts)
    if not run.metrics:
        doc.para(f'*No metrics file `{run.run.metrics}` (run numerical_analysis.py).*')
        return
    n_real, n_fake = run.metrics['n_real'], run.metrics['n_fake']
    n = n_real + n_fake
    ratio = n_fake / n_real if n_real else math.inf
    doc.table(['test set', 'real', 'fake', 'fake : real', 'fake share'],
              [[run.run.dataset, count(n_real), count(n_fake), f'{ratio:.3f}', pct(100 * n_fake / n)]],
              f'class counts of the test set, from `{run.run.metrics}`', question.label, align='lrrrr')
    majority = 'real' if n_real >= n_fake else 'fake'
    baseline = 100 * max(n_real, n_fake) / n
    if abs(n_real - n_fake) <= 0.02 * n:
        doc.para(f'The test set is balanced ({n_fake:,} fake, {n_real:,} real), so a guess scores 50% '
                 'and accuracy is a fair summary.')
    else:
        doc.para(f'There are {n_fake:,} fake and {n_real:,} real test images, fake:real = {ratio:.3f} '
                 f'(about 1:{n_real / n_fake:.1f}). A classifier that always answers "{majority}" '
                 f'already reaches {pct(baseline)} accuracy, so accuracy flatters a detector on this set: '
                 'the ROC and DET curves (Q10-Q12) do not depend on the class ratio and are the '
                 'fairer measure.')
    if run.best_epoch is not None:
        doc.para(f'{run.label} reached {pct(run.at_best("test_acc"))} test accuracy at its best '
                 f'epoch, against the {pct(baseline)} of always answering "{majority}".')


def answer_roc_det(doc: Document, facts: Facts, question: Question) -> None:
    import numerical_analysis as na

    code_reference(doc, na.get_soft_scores_and_true_labels, na.plot_roc_curve, na.plot_det_curve)
    doc.para('`get_soft_scores_and_true_labels` runs the checkpoint over the test set in eval mode '
             'without gradients and returns, for every image in order, its first output (the "real" '
             'logit), its second output (the "fake" logit) and its label. Both curves use positive '
             'label 1 (fake), as the assignment asks.')
    run = run_for(question, facts)
    add_figure(doc, facts, [run.run.figure('roc_curve'), run.run.figure('det_curve')],
               f'ROC (left) and DET (right) curves of both outputs of {run.label} on the test set, '
               'positive label = fake', question.label)


def answer_auc(doc: Document, facts: Facts, question: Question) -> None:
    run = run_for(question, facts)
    if not run.metrics:
        doc.para(f'*No metrics file `{run.run.metrics}` (run numerical_analysis.py).*')
        return
    first = run.metrics['first_score']['roc_auc']
    second = run.metrics['second_score']['roc_auc']
    softmax = run.metrics['softmax_fake_probability']['roc_auc']
    doc.table(['score (positive label = fake)', 'ROC AUC'],
              [['first output (real logit)', auc(first)], ['second output (fake logit)', auc(second)],
               ['softmax P(fake)', auc(softmax)]],
              f'ROC AUC of each score of {run.label} on the test set, from `{run.run.metrics}`',
              question.label, align='lr')
    doc.para('The AUC is the probability that a randomly drawn fake image scores higher than a randomly '
             'drawn real one: 1 is a perfect ranking, 0.5 a random one.')
    if second > 0.5 > first:
        doc.para(f'The second output is trained to be high for fakes, so ranking by it puts fakes first '
                 f'and its curve lies above the diagonal (AUC {auc(second)}). The first output is '
                 'trained to be high for *real* images; used as a score for the positive class "fake" '
                 f'it ranks the images the wrong way round, so its curve lies **under** the diagonal '
                 f'(AUC {auc(first)} < 0.5). That is not a bug: negating a score turns its AUC into '
                 f'1 − AUC, so the first output as a "real" detector has AUC {auc(1 - first)}. The two '
                 f'AUCs need not add up to exactly 1 (here {first + second:.3f}) because the two logits '
                 'are separate outputs and only their difference, the softmax, is fixed by the '
                 f'training loss; softmax P(fake) has AUC {auc(softmax)}.')
    else:
        doc.para(f'Here the first output has AUC {auc(first)} and the second {auc(second)}. A trained '
                 'detector puts the second (fake) output\'s curve above the diagonal and the first '
                 '(real) output\'s curve under it, since the first output is high for real images and '
                 'the positive class is "fake"; this run does not show that split, so the model ranks '
                 'the test images little better than chance.')


def answer_det(doc: Document, facts: Facts, question: Question) -> None:
    run = run_for(question, facts)
    doc.para('A DET curve plots the miss rate (fakes accepted as real, the false-negative rate) against '
             'the false-alarm rate (reals flagged as fake) as the threshold moves, on normal-deviate '
             '(probit) axes. Those axes stretch the low-error corners and turn the curve of two '
             'Gaussian score distributions into a straight line, so good detectors are easier to '
             'compare than on a ROC plot; lower-left is better. The equal error rate (EER) is where the '
             'two error rates meet.')
    if not run.metrics:
        doc.para(f'*No metrics file `{run.run.metrics}` (run numerical_analysis.py).*')
        return
    second = run.metrics['second_score']
    doc.para(f'For the fake output of {run.label}: EER {pct(100 * second["eer"])}, average precision '
             f'{auc(second["average_precision"])}, arg-max accuracy '
             f'{pct(run.metrics["accuracy_at_argmax_percent"])} (from `{run.run.metrics}`). The first '
             'output, high for real images, is roughly the negative of the second, so its DET curve '
             'is roughly the second\'s reflected through the centre (both error rates replaced by '
             'their complements), far from the lower-left corner.')


# --- Chapter 2 -------------------------------------------------------------------------------------

def answer_chance(doc: Document, facts: Facts, question: Question) -> None:
    run = run_for(question, facts)
    figures = chance_figures(run)
    if figures is None:
        doc.para('*The training log or the metrics file of SimpleNet on synthetic_dataset is missing.*')
        return
    low, high = figures['auc_band']
    better = figures['p_value'] < 0.05 and figures['auc'] is not None and figures['auc'] > high
    doc.table(['measure', 'SimpleNet', 'chance'],
              [['test accuracy at the best epoch', pct(figures['accuracy']),
                f'{pct(figures["baseline"])} (majority class)'],
               ['test ROC AUC (fake score)', auc(figures['auc']), f'0.5 (95% band {low:.3f}-{high:.3f})']],
              f'SimpleNet on synthetic_dataset against chance, {figures["n"]:,} test images',
              question.label, align='lrr')
    add_figure(doc, facts, [run.run.figure('roc_curve'), run.run.figure('det_curve')],
               f'ROC (left) and DET (right) curves of both outputs of {run.label} on the test set, '
               'positive label = fake', question.label)
    doc.para(f'{figures["correct"]:,} of {figures["n"]:,} test images were classified correctly. If the '
             f'model did no better than the majority rate of {pct(figures["baseline"])}, a score at '
             f'least this high would occur with probability p = {figures["p_value"]:.3g} (one-sided '
             f'binomial test). The AUC of a score unrelated to the labels falls between {low:.3f} and '
             f'{high:.3f} 95% of the time for this test set (normal approximation of the '
             'Mann-Whitney statistic).')
    fc_share = 100 * facts.models.simplenet_fc1_params / facts.models.simplenet_params
    if better:
        doc.para('**So SimpleNet does better than chance here**, though far from the face-swap '
                 'result of Chapter 1: a GAN face has no swapped region to find; its traces are faint, '
                 'image-wide, high-frequency patterns that SimpleNet\'s max-pooled 7×7 convolutions '
                 'pick up only partly.')
    else:
        record = run.record
        train_acc, val_acc = record['train_acc'][-1], record['val_acc'][-1]
        size = n_train(facts, run.run.dataset)
        images = f'{size:,} training images' if size else 'its training images'
        if train_acc > val_acc + 10:
            fit = (f'With {images} it fits the training set (last-epoch training accuracy '
                   f'{pct(train_acc)} against {pct(val_acc)} validation) instead of learning a '
                   'position-independent fingerprint.')
        else:
            fit = (f'It does not even fit its {images} in this budget (last-epoch training accuracy '
                   f'{pct(train_acc)}): the signal is too weak for it to pick up from scratch.')
        doc.para('**So SimpleNet is not distinguishable from chance on synthetic faces.** A GAN face '
                 'has no swapped region and no seam: it differs from a real photo in faint, image-wide '
                 'statistics, such as the periodic high-frequency traces of the generator\'s '
                 'upsampling layers. SimpleNet looks through only three 7×7 convolutions, each followed '
                 f'by 2×2 max-pooling, and {fc_share:.0f}% of its weights sit in one fully connected '
                 'layer that ties each decision to fixed image positions.', fit,
                 'A deeper network pretrained on natural images (Chapter 3) is the assignment\'s '
                 'answer.')
    doc.para(data_caveat(facts), small=True)


# --- Chapter 3 -------------------------------------------------------------------------------------

def answer_transfer(doc: Document, facts: Facts, question: Question) -> None:
    size = n_train(facts, 'synthetic_dataset')
    faces = f'{size:,}' if size else 'a few thousand'
    doc.para('A network trained on ImageNet\'s 1.2 million images has learnt general visual features '
             '(edges, textures, parts) in its early and middle layers. Fine-tuning starts from those '
             'instead of from random weights: the new task needs far fewer labelled images and '
             f'epochs, and a {facts.models.based_params / 1e6:.0f}-million-parameter network can be '
             f'trained on {faces} training faces '
             'without simply memorising them. Only the new head starts from scratch; here every '
             'layer stays trainable, so the features can adapt to manipulation traces, which differ '
             'from ImageNet\'s object categories.')
    run = facts.xception
    if run.record is None:
        doc.para('*No training log of XceptionBased on synthetic_dataset.*')
    elif run.pretrained:
        source = run.record.get('pretrained_source')
        doc.para(f'In this run Xception started from ImageNet weights (`{source}`).')
    elif run.pretrained is False:
        doc.para(random_init_caveat(facts))


def answer_separable(doc: Document, facts: Facts, question: Question) -> None:
    from xception import SeparableConv2d

    example = facts.models.separable_example
    k, c = example['kernel'], example['channels']
    code_reference(doc, SeparableConv2d.__init__, SeparableConv2d.forward)
    doc.para('Xception ("extreme Inception", Chollet 2017) replaces ordinary convolutions by '
             '*depthwise separable* ones: a k×k convolution applied to each channel on its own '
             '(spatial correlations), then a 1×1 "pointwise" convolution that mixes the channels '
             '(cross-channel correlations). The hypothesis is that the two kinds of correlation can be '
             'mapped separately, which costs far fewer parameters and multiplications.',
             f'The model has {facts.models.n_separable} separable convolutions. For one of its '
             f'{c}→{c}-channel {k}×{k} layers that is {example["separable"]:,} weights '
             f'({c}·{k}·{k} + {c}·{c}) instead of {example["regular"]:,} for a full convolution, '
             f'{example["regular"] / example["separable"]:.1f} times fewer.')


def answer_structure(doc: Document, facts: Facts, question: Question) -> None:
    models = facts.models
    doc.para(f'The backbone has {models.n_plain_convs} ordinary convolutions, '
             f'{models.n_separable} separable convolutions and {models.n_shortcut_convs} 1×1 shortcut '
             f'convolutions, grouped as follows (counted in the model):')
    channels = models.block_channels
    entry = channels[:3]
    middle = channels[3:3 + models.n_middle_blocks]
    doc.bullets([
        f'**Entry flow:** two 3×3 convolutions ({models.stem_channels[0]} and '
        f'{models.stem_channels[1]} channels, the first with stride 2), then three residual blocks of '
        f'two separable convolutions each ({", ".join(str(c) for c in entry)} channels), each ending '
        'in a stride-2 max-pool, with a strided 1×1 convolution on the shortcut.',
        f'**Middle flow:** {models.n_middle_blocks} identical residual blocks of three '
        f'(ReLU, 3×3 separable convolution, batch norm) at {middle[0] if middle else "n/a"} channels, '
        'with identity shortcuts.',
        f'**Exit flow:** one more strided residual block ({channels[-2]}→{channels[-1]}), two '
        f'separable convolutions ({channels[-1]}→{models.conv4[0]}→{models.conv4[1]}), global '
        'average pooling and the fully connected classifier.',
    ])
    doc.para(f'That is {models.n_blocks} residual blocks in all. Every convolution is followed by batch '
             'normalisation; the residual connections (as in ResNet) let the '
             f'{models.n_plain_convs + models.n_separable}-layer feature extractor train without '
             'vanishing gradients. The total stride is '
             f'{INPUT_SIZE // models.feature_map[-1]}: a {INPUT_SIZE}×{INPUT_SIZE} input gives a '
             f'feature map of {models.feature_map[1]}×{models.feature_map[2]} positions.')


def answer_input_and_fc(doc: Document, facts: Facts, question: Question) -> None:
    n_in, n_out = facts.models.backbone_fc
    doc.para('Xception was trained on ImageNet at 299×299 pixels (a 10×10 final feature map). Because '
             'the feature map is reduced by global average pooling before the classifier, any input of '
             f'at least 32×32 works; the course images are {INPUT_SIZE}×{INPUT_SIZE} and give a map '
             f'of {facts.models.feature_map[1]}×{facts.models.feature_map[2]}. The original classifier '
             f'read from the model is `fc = Linear({n_in}, {n_out})`: one logit for each of the '
             f'{n_out} ImageNet classes, {facts.models.backbone_fc_params:,} parameters.')


def answer_features(doc: Document, facts: Facts, question: Question) -> None:
    n_in, _ = facts.models.backbone_fc
    channels, height, width = facts.models.feature_map
    doc.para(f'**{n_in} features** (`model.fc.in_features` = {n_in}). The last separable convolution, '
             f'`conv4`, maps {facts.models.conv4[0]} to {facts.models.conv4[1]} channels; for a '
             f'{INPUT_SIZE}×{INPUT_SIZE} image its output is {channels}×{height}×{width} (measured with '
             'a forward hook), and global average pooling turns each of the '
             f'{channels} channels into one number: a {n_in}-dimensional vector is what the classifier '
             'sees, whatever the image size.')


def answer_backbone_params(doc: Document, facts: Facts, question: Question) -> None:
    from utils import get_nof_params

    models = facts.models
    doc.para(f'The Xception backbone has **{models.backbone_params:,}** trainable parameters, '
             f'{models.backbone_fc_params:,} of them in its {models.backbone_fc[1]}-class classifier '
             '(counted on the model built by `xception.build_xception_backbone`).')
    doc.table(['network', 'trainable parameters'],
              [['Xception backbone with its ImageNet classifier', count(models.backbone_params)],
               [f'of which fc ({models.backbone_fc[0]}→{models.backbone_fc[1]})',
                count(models.backbone_fc_params)],
               ['feature extractor alone', count(models.backbone_params - models.backbone_fc_params)]],
              'parameters of the Xception backbone, counted with `utils.get_nof_params`',
              question.label, align='lr')
    code_reference(doc, get_nof_params)


def answer_head(doc: Document, facts: Facts, question: Question) -> None:
    from models import get_xception_based_model

    code_reference(doc, get_xception_based_model)
    sizes = [facts.models.head_layers[0][0]] + [out for _, out in facts.models.head_layers]
    doc.para(f'The backbone\'s `fc` is replaced by an MLP {"→".join(str(s) for s in sizes)}: '
             f'{len(facts.models.head_layers)} linear layers with ReLU between them (read from the '
             'model). The last layer gives the two logits (real, fake) that the rest of the code '
             'expects. Every parameter, backbone included, is left trainable.')


def answer_based_params(doc: Document, facts: Facts, question: Question) -> None:
    models = facts.models
    rows = [['Xception backbone (1000-class fc)', count(models.backbone_params)],
            ['Xception-based model (MLP head)', count(models.based_params)],
            ['difference', f'{models.based_params - models.backbone_params:+,}'],
            ['MLP head alone', count(models.head_params)]]
    doc.table(['network', 'trainable parameters'], rows,
              'parameters of the Xception-based model against the backbone', question.label,
              align='lr', bold_last_row=False)
    doc.para(f'The model has **{models.based_params:,}** parameters, '
             f'{models.based_params - models.backbone_params:,} more than the backbone: the MLP head '
             f'({models.head_params:,}) replaces the original classifier ({models.backbone_fc_params:,}).')
    run = facts.xception
    if run.record and run.record.get('nof_params') is not None:
        doc.para(f'The training log agrees: `nof_params` = {run.record["nof_params"]:,}.')


def answer_train_xception(doc: Document, facts: Facts, question: Question) -> None:
    run = facts.xception
    if missing_run(doc, run):
        return
    doc.code(training_command(run))
    seconds = run.seconds_per_epoch
    doc.para(f'{run.epochs} epoch(s) on `{run.record.get("device", "n/a")}`'
             + (f', {seconds:.1f} s per epoch' if seconds else '') + ', with the loss, optimizer, '
             'augmentation and checkpointing of Q6. Initial weights: '
             + ('ImageNet (`' + str(run.record.get('pretrained_source')) + '`).' if run.pretrained
                else 'random (no ImageNet weights could be loaded).' if run.pretrained is False
                else 'not recorded.'))
    if facts.xception_random:
        doc.para('See Q17 for what that means for Chapters 3-5.')


# --- Chapter 4 -------------------------------------------------------------------------------------

def answer_saliency_code(doc: Document, facts: Facts, question: Question) -> None:
    import saliency_map

    code_reference(doc, saliency_map.compute_gradient_saliency_maps,
                   saliency_map.compute_mean_saliency_maps)
    doc.para('For a batch of normalised images and their true labels, the function takes the '
             'gradient of each image\'s true-class logit with respect to its pixels '
             '(`torch.autograd.grad` on a detached copy, so the caller\'s tensor, the parameters\' '
             'gradients and the model\'s mode are untouched), and returns its absolute value, maximised '
             'over the three colour channels: a B×H×W map. `compute_mean_saliency_maps` min-max '
             'normalises every map to [0, 1] and averages them over all test images of each class.')


def answer_saliency_theory(doc: Document, facts: Facts, question: Question) -> None:
    doc.para('Simonyan, Vedaldi and Zisserman (2014) linearise the network around an image x: for the '
             'class score S_c, S_c(x + δ) ≈ S_c(x) + w·δ with w = ∂S_c/∂x. The magnitude |w| at a pixel '
             'says how much a small change of that pixel would change the score, so bright pixels are '
             'those the decision is most sensitive to; one value per pixel is the maximum over the '
             'colour channels. The score is the logit, before the softmax, because a probability can '
             'also rise by lowering the other class\'s logit, which would mix in evidence about the '
             'other class.')
    doc.para('A saliency map is a local sensitivity, not an account of the whole decision: it is '
             'computed in one forward and one backward pass, but it is noisy, and in saturated regions '
             'the gradient can be small even where the evidence is. Normalising each map before '
             'averaging stops a few images with large gradients from dominating the mean maps.')


def saliency_numbers(facts: Facts, dataset: str, model: str) -> str:
    """One sentence on where the mean maps put their mass, from out/*_saliency_stats.json."""
    stats = facts.saliency.get((dataset, model))
    if not stats:
        return ''
    parts = []
    for name in ('real', 'fake'):
        if name in stats:
            parts.append(f'{name} {stats[name]["centre_share"]:.2f}')
    area = next(iter(v['centre_area_share'] for k, v in stats.items() if k in ('real', 'fake')), 0.25)
    sentence = (f'The central box covering {100 * area:.0f}% of the image holds this share of the mean '
                f'map\'s mass: {", ".join(parts)} (a flat map: {area:.2f}).')
    lattice = strongest_lattice(stats)
    if lattice:
        period, share, flat = lattice
        sentence += (f' {100 * share:.0f}% of the mean fake map\'s variance repeats on a {period}-pixel '
                     f'grid (a map without such a pattern: about {100 * flat:.1f}%).')
    return sentence


def strongest_lattice(stats: dict) -> tuple[int, float, float] | None:
    """(period, share, flat share) of the grid pattern that dominates the fake mean map, if any.

    A period-p grid's frequencies include those of every divisor of p, so shares grow with p: the
    answer is the shortest period holding at least 80% of the largest share, among periods far
    above what a pattern-free map would hold.
    """
    lattice = (stats.get('fake') or stats.get('real') or {}).get('lattice', {})
    strong = {int(p): v for p, v in lattice.items()
              if v['share'] >= 0.05 and v['share'] >= 5 * v['flat_map_share']}
    if not strong:
        return None
    top = max(v['share'] for v in strong.values())
    period = min(p for p, v in strong.items() if v['share'] >= 0.8 * top)
    return period, strong[period]['share'], strong[period]['flat_map_share']


def answer_saliency_figures(doc: Document, facts: Facts, question: Question) -> None:
    run = run_for(question, facts)
    if run.run.model == 'XceptionBased':
        doc.para(random_init_reminder(facts))
    add_figure(doc, facts, [run.run.figure('saliency_maps_and_images_pairs')],
               f'test images of {run.label} beside their saliency maps (true class and the model\'s '
               'P(fake) above each image; one colour scale for the whole figure)', question.label)
    add_figure(doc, facts, [run.run.figure('mean_saliency_maps')],
               f'mean of the min-max normalised saliency maps of all real and all fake test images, '
               f'{run.label}', question.label, width=0.8)
    context = []
    if run.best_epoch is not None:
        chance = near_chance(run)
        context.append(f'The model behind these maps reached {pct(run.at_best("test_acc"))} test '
                       f'accuracy' + (f' and ROC AUC {auc(run.fake_auc())}' if run.metrics else '')
                       + '.')
        if chance:
            context.append('That AUC is inside the range a label-blind score reaches on this test '
                           'set, so the maps show what the network is sensitive to, not evidence of '
                           'manipulation it has learnt.')
        elif chance is False:
            context.append('The model separates the classes better than chance, so its maps show '
                           'which pixels that decision is most sensitive to.')
    doc.para(saliency_numbers(facts, run.run.dataset, run.run.model), *context)


def answer_saliency_compare(doc: Document, facts: Facts, question: Question) -> None:
    simple = facts.saliency.get(('fakes_dataset', 'SimpleNet'))
    xception = facts.saliency.get(('synthetic_dataset', 'XceptionBased'))
    doc.para('**What to expect.** A face swap changes the inner face and leaves a blending boundary, '
             'so a detector that has found the manipulation should be most sensitive inside the face '
             'and along its edge, more on fakes than on reals. A GAN-generated image is fake '
             'everywhere: its traces are spread over the whole frame, so a good synthetic-face '
             'detector need not look at the face at all, and its maps can be diffuse or textured.')
    sentences = []
    if simple:
        real, fake = simple.get('real', {}), simple.get('fake', {})
        if real and fake:
            area = real['centre_area_share']
            difference = fake['centre_share'] - real['centre_share']
            if abs(difference) < 0.02:
                relation = 'both classes concentrate about equally on the face region'
            else:
                relation = ('the fake maps concentrate more on the face region than the real ones'
                            if difference > 0 else
                            'the fake maps concentrate less on the face region than the real ones')
            focus = max(real['centre_share'], fake['centre_share']) > area + 0.05
            sentences.append(f'**SimpleNet on fakes_dataset:** the central box ({100 * area:.0f}% of '
                             f'the image) holds {real["centre_share"]:.2f} of the mean real map and '
                             f'{fake["centre_share"]:.2f} of the mean fake map (flat: {area:.2f}); '
                             + relation + '.')
            if focus:
                sentences.append('Part of the lean to the centre is the architecture\'s own: '
                                 'SimpleNet\'s unpadded 7×7 convolutions see the outermost pixels '
                                 'through fewer windows, which darkens the border of every map.')
    if xception:
        lattice = strongest_lattice(xception)
        real, fake = xception.get('real', {}), xception.get('fake', {})
        if real and fake:
            sentences.append(f'**XceptionBased on synthetic_dataset:** central share '
                             f'{real["centre_share"]:.2f} (real) and {fake["centre_share"]:.2f} (fake).')
        if lattice:
            period, share, flat = lattice
            real_share = real.get('lattice', {}).get(str(period), {}).get('share')
            same = real_share is not None and abs(real_share - share) < 0.25 * max(share, 1e-9)
            sentences.append(f'Its mean maps repeat on a {period}-pixel grid ({100 * share:.0f}% of the '
                             f'fake map\'s variance; a pattern-free map: {100 * flat:.1f}%)'
                             + (f', and just as strongly on real images ({100 * real_share:.0f}%)'
                                if same else '') + '. A grid with the period of the network\'s strided '
                             'down-sampling' + (' that appears on both classes' if same else '')
                             + ' is a trace of the architecture, not of the images.')
    if sentences:
        doc.para(*sentences)
    else:
        doc.para('*No saliency statistics (out/*_saliency_stats.json): run saliency_map.py.*')
    if facts.xception_random:
        doc.para('Because Xception was randomly initialised in this run, its maps show what an '
                 'untrained architecture is sensitive to; the assignment\'s comparison (a fine-tuned '
                 'ImageNet network against SimpleNet) needs the pretrained weights.')
    doc.para(data_caveat(facts), small=True)


# --- Chapter 5 -------------------------------------------------------------------------------------

def answer_grad_cam_code(doc: Document, facts: Facts, question: Question) -> None:
    import grad_cam_analysis

    code_reference(doc, grad_cam_analysis.get_grad_cam_visualization)
    doc.para('Grad-CAM (Selvaraju et al. 2017) explains a class score y^c through the feature maps '
             'A^k of one convolutional layer, here `conv3`. Each channel gets the weight '
             'α_k = mean over positions of ∂y^c/∂A^k (its global-average-pooled gradient); the map is '
             'ReLU(Σ_k α_k A^k), up-sampled to the image and laid over it. The ReLU keeps only the '
             'regions that raise the score. Compared with a pixel-gradient saliency map it is smoother '
             'and more class-discriminative, but coarse: its resolution is that of the layer.')
    models = facts.models
    doc.para('`get_grad_cam_visualization` draws one random test image, runs pytorch-grad-cam\'s '
             '`GradCAM` on `model.conv3` with the predicted class as target, overlays the map on the '
             'un-normalised image and returns the 256×256×3 overlay with the image\'s label (shape '
             f'[1]). `conv3` is {models.simplenet_conv3_map[1]}×{models.simplenet_conv3_map[2]} in '
             f'SimpleNet and {models.xception_conv3_map[1]}×{models.xception_conv3_map[2]} in Xception '
             f'(for a {INPUT_SIZE}×{INPUT_SIZE} image, measured with forward hooks).')


def answer_grad_cam_figures(doc: Document, facts: Facts, question: Question) -> None:
    for run in runs.ASSIGNMENT_RUNS:
        if 'grad_cam' not in run.analyses:
            continue
        label = f'{run.model} on {run.dataset}'
        note = ' (randomly initialised Xception)' if run.model == 'XceptionBased' and \
            facts.xception_random else ''
        add_figure(doc, facts, [run.figure('Real_Image_grad_cam'), run.figure('Fake_Image_grad_cam')],
                   f'Grad-CAM of {label}{note} on conv3 for a real (left) and a fake (right) test '
                   'image; the title gives the true label and the predicted class with its '
                   'probability', question.label, width=0.86)


def answer_grad_cam_compare(doc: Document, facts: Facts, question: Question) -> None:
    models = facts.models
    doc.para(f'**Resolution.** SimpleNet\'s `conv3` map is {models.simplenet_conv3_map[1]}×'
             f'{models.simplenet_conv3_map[2]}, so its Grad-CAM can outline parts of a face; '
             f'Xception\'s `conv3` is {models.xception_conv3_map[1]}×{models.xception_conv3_map[2]}, so '
             f'each cell covers {INPUT_SIZE // models.xception_conv3_map[1]}×'
             f'{INPUT_SIZE // models.xception_conv3_map[2]} pixels and its maps are a few coarse blobs.')
    doc.para('**Compared with the saliency maps.** A saliency map answers "which pixels would change '
             'the true-class score fastest": a sharp, noisy, pixel-level sensitivity. Grad-CAM answers '
             '"which regions of the last feature maps carry the evidence for the predicted class": '
             'smooth, region-level and class-specific. Agreement between the two (the same face region '
             'bright in both) is more convincing than either alone.')
    sentences = []
    for (dataset, model), run in facts.runs.items():
        if 'grad_cam' in run.run.analyses and run.best_epoch is not None and run.metrics:
            sentences.append(f'{model} on {dataset}, test AUC {auc(run.fake_auc())}')
    doc.para('**What the maps can support.** Each figure shows one image per class: an anecdote, not '
             'a measurement. A map explains the model\'s prediction, right or wrong, so it is '
             'informative only where the model works (' + '; '.join(sentences) + ').'
             + (' Xception was randomly initialised in this run, so its Grad-CAM shows an untrained '
                'network\'s response.' if facts.xception_random else ''))
    doc.para(data_caveat(facts), small=True)


# --- Bonus -----------------------------------------------------------------------------------------

def answer_bonus(doc: Document, facts: Facts) -> None:
    import bonus_main
    import bonus_model

    models = facts.models
    limit = models.simplenet_params // 100
    bonus = facts.bonus or {}
    params = bonus.get('nof_parameters', models.bonus_params)
    doc.para(f'**The constraint:** at most 1% of SimpleNet\'s {models.simplenet_params:,} parameters, '
             f'i.e. {limit:,}. BonusNet has **{params:,}** ({100 * params / models.simplenet_params:.2f}%'
             f' of SimpleNet): {"within" if params <= limit else "OVER"} the limit.')
    code_reference(doc, bonus_model.my_bonus_model, bonus_main.main)
    doc.para('**Design.** A manipulated region is rendered or pasted from another source, so its '
             'noise and resampling traces differ from the rest of the photo. BonusNet therefore does '
             'not learn from raw pixels: three fixed SRM high-pass filters per colour channel and two '
             'learned *constrained* 5×5 filters (Bayar and Stamm: centre −1, the other weights sum to '
             '1, so they see residuals, not content) extract noise residuals, whose magnitude and the '
             'colour are averaged over 4×4 cells into an 18×64×64 map; coarser 8×8 and 16×16 averages '
             'are added to the deeper features. A 3×3 stem and six depthwise-separable blocks with '
             'batch norm and shortcuts (the Xception idea at a small scale) reduce it to 256×8×8. '
             'Instead of global average pooling, a *global depthwise convolution* learns one weight per '
             'position and channel: faces are roughly centred, so the network can compare the face '
             'with its surroundings. Dropout and a linear 256→2 layer give the logits. The design was '
             'chosen on validation sets only, real Photoshop composites included (docs/analysis.md).')
    simple = facts.run('fakes_dataset', 'SimpleNet')
    rows = []
    if facts.bonus:
        rows.append(['BonusNet (`checkpoints/bonus_model.pt`)', pct(bonus.get('test_accuracy')),
                     auc(bonus.get('roc_auc')), count(params)])
    else:
        doc.para(f'*No `{runs.BONUS_RESULTS}`: run `python bonus_main.py`.*')
    if simple.metrics:
        rows.append(['SimpleNet (Q8)', pct(simple.at_best('test_acc')), auc(simple.fake_auc()),
                     count(simple.metrics['n_params'])])
    if rows:
        doc.table(['model on the fakes_dataset test set', 'test accuracy', 'ROC AUC (fake score)',
                   'parameters'], rows, f'the bonus model against SimpleNet, from `{runs.BONUS_RESULTS}` '
                   'and the SimpleNet run files', 'Bonus', align='lrrr')
    bonus_run = facts.run('fakes_dataset', 'BonusNet')
    add_figure(doc, facts, [bonus_run.run.figure('roc_curve'), bonus_run.run.figure('det_curve')],
               'ROC (left) and DET (right) curves of BonusNet on the fakes_dataset test set', 'Bonus')
    bonus_auc = bonus.get('roc_auc')
    if facts.demo and bonus_auc is not None and simple.metrics and bonus_auc > simple.fake_auc():
        doc.para('On the demo data the fakes carry exactly the noise trace BonusNet was built to '
                 'find, so its margin over SimpleNet here overstates what to expect on the course '
                 'data.', small=True)
    elif facts.demo:
        doc.para(data_caveat(facts), small=True)


# --- front matter and appendix --------------------------------------------------------------------

def headline_rows(facts: Facts) -> list[list[str]]:
    """Every trained model: dataset, epochs, best validation accuracy, test accuracy, AUC, parameters."""
    rows = []
    for (dataset, model), run in facts.runs.items():
        name = model + (' (random init)' if run.pretrained is False else '') + collapse_note(run.record)
        if run.record is None:
            rows.append([name, dataset] + ['missing'] * 5)
            continue
        params = run.record.get('nof_params')
        rows.append([name, dataset, str(run.epochs),
                     f'{pct(run.at_best("val_acc"))} (ep. {run.best_epoch})',
                     pct(run.at_best('test_acc')), auc(run.fake_auc()) if run.metrics else 'n/a',
                     count(params)])
    return rows


HEADLINE_HEADER = ['model', 'dataset', 'epochs', 'best val acc (epoch)', 'test acc there',
                   'test ROC AUC', 'parameters']


def front_page(doc: Document, facts: Facts) -> None:
    doc.heading(1, TITLE)
    doc.para(f'**{SUBTITLE}.** {COURSE}. Written by `fmd.reporting` on {time.strftime("%Y-%m-%d %H:%M")} '
             'from the files of one run of `run_me.sh`.')
    rows = []
    for root, info in facts.data['roots'].items():
        if info['source'] == 'demo':
            rows.append(['data', f'DEMO data in `{root}` (a generated stand-in, not the course data), '
                                 f'scale {info.get("scale")}, seed {info.get("seed")}'])
            if info.get('manifest_sha256'):
                rows.append(['demo manifest SHA-256', info['manifest_sha256']])
        elif info['source'] == 'course':
            rows.append(['data', f'course data in `{root}`'])
        else:
            rows.append(['data', f'`{root}` ({info.get("note", "unknown")})'])
    if not rows:
        rows.append(['data', 'not recorded (no training log)'])
    devices = sorted({r.record.get('device') for r in facts.runs.values()
                      if r.record and r.record.get('device')})
    rows.append(['device', ', '.join(devices) or 'not recorded'])
    if facts.timings:
        total = sum(step['seconds'] for step in facts.timings)
        rows.append(['total run time', f'{duration(total)}: the {len(facts.timings)} steps of '
                                       '`run_me.sh` before this report (Appendix A)'])
    seeds = sorted({str(r.record.get('seed')) for r in facts.runs.values() if r.record})
    if seeds:
        rows.append(['seed', ', '.join(seeds)])
    xception = facts.xception
    if xception.record is not None:
        rows.append(['Xception initialisation',
                     'ImageNet weights' if xception.pretrained else
                     'RANDOM (no ImageNet weights: see Q17)' if xception.pretrained is False
                     else 'not recorded'])
    doc.table(['', 'this run'], rows)
    doc.table(HEADLINE_HEADER, headline_rows(facts),
              'every trained model: best validation accuracy, test accuracy at that epoch (training '
              'log), test ROC AUC of the fake score (metrics file), trainable parameters; COLLAPSED: '
              'the best or last epoch gave (almost) every validation image one class or did not move '
              'the training loss (collapse guard)',
              align='llrrrrr')
    notes = [data_caveat(facts), random_init_caveat(facts)]
    doc.para(*notes)
    doc.para('How to read this report: each chapter follows the assignment; every question has one '
             'entry with its answer, the code that implements it (signature taken from the code), and '
             'numbered figures and tables. Numbers are read from `out/`, figures from `figures/`; '
             'what a run did not produce is listed in Appendix B, never filled in.', small=True)


def appendix(doc: Document, facts: Facts) -> None:
    doc.heading(2, 'Appendix')
    doc.heading(3, 'A. Steps of run_me.sh', anchor='appendix-a')
    if facts.timings:
        rows = [[s['step'], f'{s["seconds"]:.1f}', s['peak_rss_mib']] for s in facts.timings]
        rows.append(['total', f'{sum(s["seconds"] for s in facts.timings):.1f}', ''])
        doc.table(['step', 'seconds', 'peak RSS [MiB]'], rows,
                  f'wall time and peak memory of each step, from `{runs.TIMINGS}`', align='lrr',
                  bold_last_row=True)
    else:
        doc.para(f'*No `{runs.TIMINGS}`.*')
    doc.heading(3, 'B. Missing inputs', anchor='appendix-b')
    unique = list(dict.fromkeys(facts.missing))
    doc.bullets([f'`{item}`' for item in unique]) if unique else doc.para('None: every input was found.')


def build_document(facts: Facts) -> Document:
    """Front page, the five chapters with one entry per question in order, the bonus, the appendix."""
    doc = Document()
    front_page(doc, facts)
    chapter = None
    for question in QUESTIONS:
        if question.chapter != chapter:
            chapter = question.chapter
            doc.heading(2, CHAPTERS[chapter])
        doc.heading(3, f'{question.label} {question.title}', anchor=question.label)
        globals()[question.answer](doc, facts, question)
    doc.heading(2, 'Bonus', anchor='Bonus')
    doc.heading(3, BONUS_TITLE)
    answer_bonus(doc, facts)
    appendix(doc, facts)
    return doc


def summary_of(facts: Facts) -> dict:
    """report/summary.json: the numbers the report quotes, for scripts."""
    training = []
    for (dataset, model), run in facts.runs.items():
        if run.record is None:
            continue
        training.append({'question': run.run.question, 'model': model, 'dataset': dataset,
                         'epochs': run.epochs, 'best_epoch': run.best_epoch,
                         'best_val_acc': run.at_best('val_acc'),
                         'test_acc_at_best': run.at_best('test_acc'),
                         'nof_params': run.record.get('nof_params'), 'pretrained': run.pretrained,
                         'collapsed': run_collapsed(run.record),
                         'seconds_per_epoch': run.seconds_per_epoch})
    models = facts.models
    return {'data': facts.data, 'training': training,
            'metrics': [r.metrics for r in facts.runs.values() if r.metrics],
            'headline': {'header': HEADLINE_HEADER, 'rows': headline_rows(facts)},
            'xception_parameters': {'backbone': models.backbone_params,
                                    'xception_based': models.based_params,
                                    'difference': models.based_params - models.backbone_params},
            'bonus': facts.bonus, 'timings': facts.timings, 'saliency': {
                f'{d}_{m}': s for (d, m), s in facts.saliency.items()}}


def main(argv: list[str] | None = None) -> Path:
    """Gather the run's files into report/report.md, report/report.pdf and report/summary.json."""
    parser = argparse.ArgumentParser(prog='faces-report', description=__doc__)
    parser.add_argument('--out-dir', default='report', help='where to write (default: report)')
    args = parser.parse_args(argv)
    facts = gather()
    document = build_document(facts)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown_path, pdf_path = out_dir / 'report.md', out_dir / 'report.pdf'
    markdown_path.write_text(to_markdown(document, out_dir))
    layout = to_pdf(document, pdf_path, f'{TITLE}: {SUBTITLE}')
    summary = summary_of(facts)
    summary['missing'] = list(dict.fromkeys(facts.missing))
    summary['pdf'] = {'pages': layout.pop('pages'), 'anchors': layout}
    summary['questions'] = [q.label for q in QUESTIONS] + ['Bonus']
    atomic_write_json(summary, out_dir / 'summary.json')
    print(f'Wrote {markdown_path}, {pdf_path} ({summary["pdf"]["pages"]} pages) and '
          f'{out_dir / "summary.json"}: {len(QUESTIONS)} questions and the bonus, '
          f'{document.n_figures} figures, {document.n_tables} tables, '
          f'{len(summary["missing"])} missing inputs')
    return markdown_path


def entry() -> None:
    """The console script and `python -m fmd.reporting`."""
    main()


if __name__ == '__main__':
    entry()
