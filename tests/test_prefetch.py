"""fmd.data.prefetch: images decoded in forked processes before torch is imported reach the run's
cache with the pixels of the run's own decoder; what they cannot decode is left to the cache fill."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from faces_dataset import FacesDataset, read_rgb_tensor
from fmd.data import prefetch
from helpers import PROJECT_ROOT, script_env, write_image

# Forks the decoders before torch is imported (as train_main.py's __main__ block does), then gives a
# FacesDataset its cache the way train_main.py does, and saves what each step holds.
CHILD = r'''
import sys
from pathlib import Path
from fmd.data import prefetch
hostile, good, out = (Path(p) for p in sys.argv[1:4])
started = prefetch.start([hostile, good], 256)
import numpy as np, torch
from faces_dataset import FacesDataset
from fmd.data.decode_cache import prepare_datasets
started.wait()
hostile_done = started.done[:started.splits[1].first].copy()
dataset = FacesDataset(str(good), image_size=256, decoder='tensor')
workers, line = prepare_datasets([dataset], torch.device('cpu'), 0, fill_workers=1)
np.savez(out, hostile_done=hostile_done, cached=dataset.decoded_cache.images.numpy(),
         filled=dataset.decoded_cache.filled.numpy())
print(line)
print('mapping closed:', started.mapping.closed)
'''


def test_forked_decoders_fill_the_cache_with_the_runs_own_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    hostile, good = tmp_path / 'hostile', tmp_path / 'good'
    for folder in (hostile, good):
        for label in ('real', 'fake'):
            (folder / label).mkdir(parents=True)
    write_image(hostile / 'real' / 'a.png', rng)
    write_image(hostile / 'real' / 'b.png', rng, size=64)  # another size: the fill resizes it
    (hostile / 'fake' / 'c.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')  # the fill reports it
    for name, mode in (('a.png', 'RGB'), ('b.png', 'L'), ('c.png', 'RGBA')):
        write_image(good / 'real' / name, rng, mode=mode)
    write_image(good / 'fake' / 'd.png', rng)
    write_image(good / 'fake' / 'e.png', rng, size=100)

    result = subprocess.run([sys.executable, '-c', CHILD, str(hostile), str(good), str(tmp_path / 'o.npz')],
                            cwd=PROJECT_ROOT, env=script_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '4 decoded during start-up' in result.stdout  # e.png is another size
    assert '1 decoded up front' in result.stdout
    assert 'mapping closed: True' in result.stdout  # the images are not held twice
    saved = np.load(tmp_path / 'o.npz')
    assert saved['hostile_done'].tolist() == [1, 0, 0]
    assert saved['filled'].tolist() == [True] * 5
    dataset = FacesDataset(str(good), image_size=256, decoder='tensor')
    for index in range(len(dataset)):  # the second method: the run's decoder, torchvision's libpng
        expected = read_rgb_tensor(dataset.image_path(index)[0], 256).permute(1, 2, 0)
        assert torch.equal(torch.from_numpy(saved['cached'][index]), expected), index


def test_no_fork_once_torch_is_imported(tmp_path: Path) -> None:
    (tmp_path / 'real').mkdir()
    (tmp_path / 'fake').mkdir()
    write_image(tmp_path / 'real' / 'a.png', np.random.default_rng(0))
    assert 'torch' in sys.modules
    assert prefetch.start([tmp_path], 256) is None and prefetch.current() is None


def test_a_run_started_as_a_script_uses_the_prefetch(data_root: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / 'train_main.py'), '-d', 'synthetic_dataset',
                             '-e', '1', '-b', '4', '--data-root', str(data_root), '--no-progress'],
                            cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    total = sum(len(FacesDataset(str(data_root / 'synthetic_dataset' / part)))
                for part in ('train', 'val', 'test'))
    assert f'{total} decoded during start-up' in result.stdout
    assert 'decoded up front' not in result.stdout


def test_ctrl_c_while_torch_is_imported_exits_130_with_one_line(data_root: Path, tmp_path: Path) -> None:
    # -X importtime reports each module as its import ends: a line naming torch.* means the script is
    # inside torch's import, after its decoders were forked
    process = subprocess.Popen([sys.executable, '-X', 'importtime', str(PROJECT_ROOT / 'train_main.py'),
                                '-d', 'fakes_dataset', '-e', '1', '--data-root', str(data_root)],
                               cwd=tmp_path, env=script_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in process.stderr:
        if 'torch.' in line.rsplit('|', 1)[-1]:
            break
    os.killpg(process.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole process group
    rest = process.stderr.read()
    assert process.wait(timeout=60) == 130
    messages = [line for line in rest.splitlines() if not line.startswith('import time:')]
    assert messages == ['interrupted while starting; nothing was written']
    assert list(tmp_path.iterdir()) == []
