"""Does the mask head draw the blend mask where it is known exactly? Self-blended val faces, side by side
with Grad-CAM.

`python bench/bench_mask_localization.py CHECKPOINT --data-root ROOT -d DATASET` builds the val split's
fixed self-blends (fmd.data.training_fakes, as model selection sees them), then for the mask head and
for Grad-CAM of class fake prints:

- pixel AUC: every 64x64 cell of every blend, changed (blend mask >= 0.5) against unchanged;
- the part table of fmd.evaluate (fmd.evaluate.localization), a part counting as replaced when the
  blend mask covers at least half of its region; whole-face blends replace every part;
- seconds and images/s of each map.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='a checkpoint trained with --mask-loss-weight')
    parser.add_argument('--data-root', required=True, help='folder holding DATASET/ and its landmarks.npz')
    parser.add_argument('--dataset', '-d', required=True, help='dataset name under --data-root')
    parser.add_argument('--seed', type=int, default=0, help='seed of the val blends (default: 0)')
    parser.add_argument('--batch-size', type=int, default=32, help='images per batch (default: 32)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from fmd.data.landmarks import LANDMARKS_FILE, read_landmarks
    from fmd.data.training_fakes import RealFacesDataset, SelfBlendDataset
    from fmd.evaluate.localization import PARTS, localization_summary, map_function, part_regions, part_scores
    from fmd.training.checkpoints import load_trained_model, read_checkpoint
    from fmd.training.performance import normalize_uint8

    args = parse_args(argv)
    folder = Path(args.data_root) / args.dataset
    points = read_landmarks(folder / LANDMARKS_FILE).points
    val = SelfBlendDataset(RealFacesDataset(str(folder / 'val'), 256), points, 'val', args.seed,
                           with_masks=True)
    blends = range(val.n_real, val.n_real + len(val.blended))
    items = [val[i] for i in blends]
    images = torch.stack([image for image, _, _ in items])
    targets = torch.stack([mask for _, _, mask in items])[:, 0].numpy()  # Nx64x64
    landmarks = [val.points[k] for k in range(len(val.blended))]
    device = torch.device('cpu')
    model = load_trained_model(args.checkpoint, device)
    checkpoint = read_checkpoint(args.checkpoint)
    print(f'{args.checkpoint} on {len(items)} self-blended val faces of {args.dataset} (seed {args.seed})')
    codes = []
    for target, face_points in zip(targets, landmarks, strict=True):
        cover = part_scores(target, part_regions(face_points))
        codes.append({part: cover[part] >= 0.5 for part in PARTS})
    for method in ('mask', 'grad_cam'):
        started = time.perf_counter()
        maps = []
        with map_function(method, model, checkpoint) as draw:
            for start in range(0, len(images), args.batch_size):
                batch = normalize_uint8(images[start:start + args.batch_size].contiguous())
                maps.extend(np.asarray(m, dtype=np.float32) for m in draw(batch))
        seconds = time.perf_counter() - started
        cells = np.stack([torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(m)[None], 64)[0].numpy()
                          for m in maps])
        pixel_auc = roc_auc_score((targets >= 0.5).ravel(), cells.ravel())
        scores = [part_scores(m, part_regions(p)) for m, p in zip(maps, landmarks, strict=True)]
        summary = localization_summary(scores, codes)
        aucs = ', '.join(f'{part} {summary["parts"][part]["auc"]:.3f}' for part in PARTS
                         if summary['parts'][part]['auc'] is not None)
        hit, chance = 100 * summary['top_part_hit'], 100 * summary['top_part_chance']
        print(f'{method:9s} pixel AUC {pixel_auc:.3f} | part AUC {aucs} '
              f'| mean {summary["mean_part_auc"]:.3f} | top-part hit {hit:.1f}% (chance {chance:.1f}%) '
              f'| {seconds:.1f} s, {len(items) / seconds:.1f} images/s')


if __name__ == '__main__':
    main()
