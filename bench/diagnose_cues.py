"""Which image statistics a detector's score follows, beside how real fakes and self-blends differ on them.

    python bench/diagnose_cues.py --data /tmp/data_real/dfdc:test \\
        --checkpoint runs/old_s0/checkpoints/dfdc+self-blend_BonusNet_AdamW.pt \\
                     runs/sbi_s0/checkpoints/dfdc+self-blend_BonusNet_AdamW.pt --labels old new \\
        --train /tmp/data_real/dfdc --blend-code /tmp/old_checkout --out docs

For each statistic of fmd.evaluate.cues it measures, on the real fakes of --data:
1. the cue: the statistic's own AUC for fake against real (0.5: none; below: fakes lower);
2. the shortcut: the statistic's AUC for self-blend against its real, over --pairs train reals of
   --train (the current recipe, and the one in --blend-code, another checkout's fmd/data/self_blend.py);
3. what each detector follows: the Spearman correlation of its P(fake) with the statistic within the
   reals and within the fakes (their mean), beside its AUC.
A detector that follows a statistic on which the real fakes sit on the *real* side ranks them as real.
Writes <out>/self_blend_cues.png and <out>/self_blend_cues.json; prints the table.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fmd.evaluate.cues import STATISTICS, cue_auc, follows, image_statistics

NAMES = {'sharpness': 'sharpness (log Laplacian var.)', 'noise': 'noise sigma',
         'upscale': 'upscaling (99% energy)', 'blockiness': 'JPEG grid (7-11 px)',
         'saturation': 'saturation', 'brightness': 'brightness',
         'face_sharpness_ratio': 'face / frame sharpness'}


def dataset_images(folder: Path) -> tuple[list[Path], np.ndarray]:
    """(every image of folder/{real,fake}, labels 0/1), sorted by class then name."""
    from faces_dataset import list_images

    paths, labels = [], []
    for label, name in enumerate(('real', 'fake')):
        names = list_images(folder / name)
        paths += [folder / name / n for n in names]
        labels += [label] * len(names)
    return paths, np.array(labels)


def landmarks_of(dataset: Path) -> dict[str, np.ndarray]:
    """The dataset's landmarks.npz points by relative path ({} without one)."""
    from fmd.data.landmarks import LANDMARKS_FILE, read_landmarks

    file = dataset / LANDMARKS_FILE
    return read_landmarks(file).points if file.is_file() else {}


def statistics_table(images: list[np.ndarray], points: list[np.ndarray | None]) -> dict[str, np.ndarray]:
    """{statistic: values over the images}."""
    rows = [image_statistics(image, p) for image, p in zip(images, points, strict=True)]
    return {name: np.array([row[name] for row in rows]) for name in STATISTICS}


def detector_scores(checkpoint: str, folder: Path) -> np.ndarray:
    """P(fake) of every image of folder (dataset order: real then fake)."""
    from faces_dataset import FacesDataset
    from fmd.core.devices import pick_device
    from fmd.core.inference import fake_probability, predict
    from fmd.data.presets import IMAGE_SIZE, TRANSFORM_TEST
    from fmd.training.checkpoints import load_trained_model

    device = pick_device()
    model = load_trained_model(checkpoint, device)
    dataset = FacesDataset(str(folder), transform=TRANSFORM_TEST, image_size=IMAGE_SIZE)
    logits, _ = predict(model, dataset, device=device, batch_size=32)
    return fake_probability(logits).numpy()


def blend_function(code: Path | None):
    """self_blend of this checkout, or of another checkout's fmd/data/self_blend.py, as a function
    (face, landmarks, rng) -> (real, fake): an older one returned (fake, mask) with the face as real."""
    if code is None:
        from fmd.data.self_blend import self_blend
    else:
        spec = importlib.util.spec_from_file_location('other_self_blend', code / 'fmd/data/self_blend.py')
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
        self_blend = module.self_blend

    def pair(face, points, rng):
        made = self_blend(face, points, rng)
        return (face, made[0]) if isinstance(made, tuple) else (made.real, made.fake)
    return pair


def shortcut_aucs(train: Path, n_pairs: int, code: Path | None, seed: int) -> dict[str, float]:
    """Each statistic's AUC for self-blend against its real over the first n_pairs train reals."""
    from fmd.data.face_crop import read_image_rgb

    points = landmarks_of(train)
    keys = sorted(k for k in points if k.startswith('train/real/'))[:n_pairs]
    make = blend_function(code)
    reals, fakes, hulls = [], [], []
    for index, key in enumerate(keys):
        real, fake = make(read_image_rgb(train / key), points[key], np.random.default_rng([seed, index]))
        reals.append(real)
        fakes.append(fake)
        hulls.append(points[key])
    table = statistics_table(reals + fakes, hulls + hulls)
    labels = np.array([0] * len(reals) + [1] * len(fakes))
    return {name: cue_auc(table[name], labels) for name in STATISTICS}


def colours(labels: list[str]) -> dict[str, str]:
    """One colour per label, the same across panels: an 'old' one orange, the others blue, green, purple."""
    others = iter(['#1f77b4', '#2ca02c', '#9467bd', '#8c564b'])
    return {label: '#ff7f0e' if 'old' in label.lower() else next(others) for label in labels}


def plot(result: dict, out: Path) -> Path:
    """Three panels of horizontal bars, one row per statistic; legends under the panels."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = list(STATISTICS)[::-1]
    y = np.arange(len(rows))
    figure, axes = plt.subplots(1, 3, figsize=(14, 5.0), sharey=True)
    axes[0].barh(y, [result['cue'][r] - 0.5 for r in rows], left=0.5, color='#555555')
    axes[0].set_title(f'the cue: real fakes vs reals ({result["data"]})', fontsize=10)
    axes[0].set_xlabel('AUC of the statistic alone (< 0.5: the fakes lower)')
    panels = ((axes[1], result['shortcut'], lambda v: [v[r] - 0.5 for r in rows], 0.5,
               'the shortcut: self-blends vs their reals', 'AUC of the statistic alone', lambda k, v: k),
              (axes[2], result['detectors'], lambda v: [v['follows'][r] for r in rows], 0.0,
               'what each detector follows', 'Spearman r of P(fake) with the statistic, within class',
               lambda k, v: f'{k} (AUC {v["auc"]:.3f})'))
    for axis, entries, values, left, title, xlabel, legend in panels:
        palette = colours(list(entries))
        width = 0.8 / max(1, len(entries))
        for i, (label, entry) in enumerate(entries.items()):
            axis.barh(y + ((len(entries) - 1) / 2 - i) * width, values(entry), height=width, left=left,
                      color=palette[label], label=legend(label, entry))
        axis.set_title(title, fontsize=10)
        axis.set_xlabel(xlabel)
        if entries:
            axis.legend(fontsize=8, loc='upper center', bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    for axis, centre in zip(axes, (0.5, 0.5, 0.0), strict=True):
        axis.axvline(centre, color='black', linewidth=0.8)
        axis.grid(axis='x', alpha=0.3)
    axes[0].set_xlim(0.2, 0.8)
    axes[1].set_xlim(0.2, 0.8)
    axes[2].set_xlim(-0.8, 0.8)
    axes[0].set_yticks(y, [NAMES[r] for r in rows])
    figure.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / 'self_blend_cues.png'
    figure.savefig(path, dpi=80, bbox_inches='tight')
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', required=True, help='ROOT/NAME[:SPLIT] with real fakes (split test)')
    parser.add_argument('--checkpoint', nargs='*', default=[], help='detectors to diagnose')
    parser.add_argument('--labels', nargs='*', default=None, help='a label per checkpoint')
    parser.add_argument('--train', type=Path, help='dataset with landmarks.npz whose train reals are blended')
    parser.add_argument('--blend-code', type=Path, help='another checkout whose self-blend to compare')
    parser.add_argument('--blend-label', default='old recipe', help='legend of --blend-code\'s blends')
    parser.add_argument('--pairs', type=int, default=300, help='train reals blended (default: 300)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', type=Path, default=Path('out'), help='folder of the figure and JSON')
    args = parser.parse_args()
    from fmd.data.face_crop import read_image_rgb
    from fmd.evaluate.specs import parse_data_spec

    spec = parse_data_spec(args.data)
    paths, labels = dataset_images(spec.folder)
    dataset_root = spec.folder.parent if spec.split else spec.folder
    points = landmarks_of(dataset_root)
    rel = [p.relative_to(dataset_root).as_posix() for p in paths]
    table = statistics_table([read_image_rgb(p) for p in paths], [points.get(r) for r in rel])
    result = {'data': spec.label, 'n_real': int((labels == 0).sum()), 'n_fake': int((labels == 1).sum()),
              'cue': {name: cue_auc(table[name], labels) for name in STATISTICS},
              'shortcut': {}, 'detectors': {}}
    if args.train is not None:
        result['shortcut']['this recipe'] = shortcut_aucs(args.train, args.pairs, None, args.seed)
        if args.blend_code is not None:
            result['shortcut'][args.blend_label] = shortcut_aucs(args.train, args.pairs, args.blend_code,
                                                                 args.seed)
    labels_given = args.labels or [Path(c).parent.parent.name for c in args.checkpoint]
    for label, checkpoint in zip(labels_given, args.checkpoint, strict=True):
        scores = detector_scores(checkpoint, spec.folder)
        within = {name: float(np.nanmean([follows(scores[labels == c], table[name][labels == c])
                                          for c in (0, 1)])) for name in STATISTICS}
        result['detectors'][label] = {'checkpoint': checkpoint, 'auc': cue_auc(scores, labels),
                                      'follows': within}
    print(f'{"statistic":32} {"cue AUC":>8} ' + ' '.join(f'{k[:14]:>14}' for k in result['shortcut'])
          + ' ' + ' '.join(f'{k[:14]:>14}' for k in result['detectors']))
    for name in STATISTICS:
        print(f'{NAMES[name]:32} {result["cue"][name]:8.3f} '
              + ' '.join(f'{v[name]:14.3f}' for v in result['shortcut'].values()) + ' '
              + ' '.join(f'{d["follows"][name]:+14.3f}' for d in result['detectors'].values()))
    for label, detector in result['detectors'].items():
        print(f'{label}: AUC {detector["auc"]:.3f}')
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'self_blend_cues.json').write_text(json.dumps(result, indent=1) + '\n')
    print(f'wrote {plot(result, args.out)} and {args.out / "self_blend_cues.json"}')


if __name__ == '__main__':
    main()
