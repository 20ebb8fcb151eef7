"""Learning-rate range test: originals untouched, a sensible suggestion, train_main --lr-find / --lr auto."""
from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import train_main
from fmd.training.lr_finder import find_edge, lr_range_test, smooth


def small_net() -> nn.Module:
    """Convolution, BatchNorm (buffers) and dropout (random numbers): everything a copy must keep."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def batches(n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 3, 8, 8, generator=generator), torch.randint(0, 2, (8,), generator=generator))
            for _ in range(n)]


def test_the_range_test_leaves_weights_optimizer_and_random_states_untouched() -> None:
    torch.manual_seed(0)
    model = small_net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    inputs, targets = batches(1)[0]
    nn.functional.cross_entropy(model(inputs), targets).backward()
    optimizer.step()  # a state (exp_avg, exp_avg_sq, step) to keep
    weights = {key: value.clone() for key, value in model.state_dict().items()}
    state = optimizer.state_dict()
    moments = {index: {key: value.clone() for key, value in entry.items()}
               for index, entry in state['state'].items()}
    groups = json.dumps(state['param_groups'])
    model.eval()
    random_states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())

    result = lr_range_test(model, optimizer, batches(), nn.CrossEntropyLoss(), torch.device('cpu'),
                           steps=20)

    assert 3 <= len(result.lrs) <= 20 and result.lrs[0] == pytest.approx(1e-7)
    for key, value in model.state_dict().items():  # bit for bit, buffers included
        assert torch.equal(value, weights[key]), key
    after = optimizer.state_dict()
    assert json.dumps(after['param_groups']) == groups
    for index, entry in moments.items():
        for key, value in entry.items():
            assert torch.equal(after['state'][index][key], value), (index, key)
    assert not model.training  # its mode, too
    assert all(p is q for p, q in zip(optimizer.param_groups[0]['params'], model.parameters(), strict=True))
    assert torch.equal(torch.get_rng_state(), random_states[0])
    assert np.array_equal(np.random.get_state()[1], random_states[1])
    assert random.getstate() == random_states[2]


def noisy_least_squares(a: float, seed: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches of x -> x . w* + noise with E[x x^T] = a/2 I: the MSE's Hessian is a I."""
    generator = torch.Generator().manual_seed(seed)
    w_star = torch.randn(16, 1, generator=generator)
    while True:
        x = torch.randn(64, 16, generator=generator) * (a / 2) ** 0.5
        yield x, x @ w_star + 0.3 * torch.randn(64, 1, generator=generator)


@pytest.mark.parametrize('a', [30.0, 300.0, 3000.0])
def test_the_suggestion_lands_near_the_best_lr_of_a_convex_problem(a: float) -> None:
    """Gradient descent on a quadratic with Hessian a I converges fastest at lr 1/a (in one step)."""
    model = nn.Linear(16, 1, bias=False)
    nn.init.zeros_(model.weight)
    result = lr_range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), noisy_least_squares(a),
                           nn.MSELoss(), torch.device('cpu'))
    assert 1 / (3 * a) <= result.suggestion <= 3 / a, result.suggestion * a


def test_the_edge_is_the_lowest_loss_or_on_a_flat_curve_its_first_rise() -> None:
    lrs = [10 ** (-6 + i / 10) for i in range(50)]
    noise = np.random.default_rng(0).normal(0, 0.01, 50)
    falling = [0.7 - 0.3 * max(0, i - 20) / 20 + 0.5 * max(0, i - 40) + n for i, n in enumerate(noise)]
    assert find_edge(lrs, falling, smooth(falling)) == lrs[int(np.argmin(smooth(falling)))]
    flat_then_rising = [0.69 + 0.3 * (i >= 30) + n for i, n in enumerate(noise)]  # nothing learned
    assert find_edge(lrs, flat_then_rising, smooth(flat_then_rising)) == lrs[30]
    flat = [0.69 + n for n in noise]
    assert find_edge(lrs, flat, smooth(flat)) == lrs[-1]


def test_lr_find_writes_its_figure_and_nothing_of_the_run(data_root: Path, workdir: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    args = ['-d', 'fakes_dataset', '--batch-size', '4', '--workers', '0', '--no-progress', '--data-root',
            str(data_root), '--lr-find-steps', '4']
    result = train_main.main([*args, '--lr-find'])
    assert set(result) == {'lr_find'} and result['lr_find']['steps'] == 4
    assert 'suggested lr' in capsys.readouterr().out
    assert (workdir / 'figures' / 'fakes_dataset_SimpleNet_Adam_lr_find.png').stat().st_size > 10_000
    assert not (workdir / 'checkpoints').exists() and not (workdir / 'out').exists()

    record = train_main.main([*args, '--lr', 'auto', '-e', '1'])
    assert record['lr_find'] == result['lr_find']  # same seed, same test
    assert record['optimizer']['params']['lr'] == result['lr_find']['suggestion']
    assert record['collapsed'] in ([True], [False])


def test_lr_find_is_refused_under_torchrun(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv('WORLD_SIZE', '2')
    monkeypatch.setenv('RANK', '0')
    with pytest.raises(SystemExit):
        train_main.parse_args(['--lr', 'auto'])
    assert '--lr-find and --lr auto run on one process' in capsys.readouterr().err
