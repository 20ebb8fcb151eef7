"""saliency_map.py: analytic saliency of a linear model, side effects, mean maps, the script."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import saliency_map as sm
from helpers import run_script

H, W = 4, 4


def linear_model() -> nn.Sequential:
    """Flatten + Linear(3*4*4 -> 2): d score_c / d x = W[c], independent of the input."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * H * W, 2))


def test_linear_model_saliency_is_abs_weight_max_over_channels() -> None:
    model = linear_model()
    samples = torch.randn(3, 3, H, W)
    labels = torch.tensor([1, 0, 1])
    maps = sm.compute_gradient_saliency_maps(samples, labels, model)
    weight = model[1].weight.detach()
    # Flatten is channel-major (C, H, W), so W[c] reshapes to 3xHxW; max |.| over the channels.
    expected = torch.stack([weight[c].view(3, H, W).abs().amax(dim=0) for c in labels.tolist()])
    assert maps.shape == (3, H, W)
    assert torch.allclose(maps, expected, atol=1e-7)
    assert not torch.allclose(expected[0], expected[1])  # the true class matters


class SquareModel(nn.Module):
    """score_c = sum(v_c * x^2): gradient 2 * v_c * x depends on the input (checks per-sample maps)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.v = nn.Parameter(torch.randn(2, 3, H, W))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum('bchw,kchw->bk', x * x, self.v)


def test_per_sample_maps_in_a_batch() -> None:
    model = SquareModel()
    samples = torch.randn(4, 3, H, W)
    labels = torch.tensor([0, 1, 1, 0])
    maps = sm.compute_gradient_saliency_maps(samples, labels, model)
    v = model.v.detach()
    expected = torch.stack([(2 * v[c] * x).abs().amax(dim=0) for x, c in zip(samples, labels.tolist(),
                                                                              strict=True)])
    assert torch.allclose(maps, expected, atol=1e-6)


@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('preset_grad', [False, True])
def test_saliency_leaves_samples_mode_and_grads_unchanged(training: bool, preset_grad: bool) -> None:
    model = linear_model().train(training)
    if preset_grad:
        for parameter in model.parameters():
            parameter.grad = torch.full_like(parameter, 0.5)
    samples = torch.randn(2, 3, H, W)
    before = samples.clone()
    sm.compute_gradient_saliency_maps(samples, torch.tensor([0, 1]), model)
    assert torch.equal(samples, before) and samples.grad is None and not samples.requires_grad
    assert model.training is training
    for parameter in model.parameters():
        if preset_grad:
            assert torch.equal(parameter.grad, torch.full_like(parameter, 0.5))
        else:
            assert parameter.grad is None


def test_mean_maps_average_min_max_normalised_maps_per_class() -> None:
    model = SquareModel()
    images = torch.randn(5, 3, H, W)
    labels = torch.tensor([0, 1, 0, 0, 1])
    means = sm.compute_mean_saliency_maps(TensorDataset(images, labels), model, batch_size=2)

    def normalised(index: int) -> torch.Tensor:  # one image at a time, scaled to [0, 1]
        saliency = sm.compute_gradient_saliency_maps(images[index:index + 1], labels[index:index + 1],
                                                     model)[0]
        return (saliency - saliency.min()) / (saliency.max() - saliency.min())

    assert sorted(means) == [0, 1]
    assert torch.allclose(means[0], (normalised(0) + normalised(2) + normalised(3)) / 3, atol=1e-6)
    assert torch.allclose(means[1], (normalised(1) + normalised(4)) / 2, atol=1e-6)


def test_min_max_normalise_maps_a_constant_map_to_zeros() -> None:
    maps = torch.stack([torch.full((H, W), 3.0), torch.arange(16.0).view(H, W)])
    normalised = sm.min_max_normalise(maps)
    assert torch.equal(normalised[0], torch.zeros(H, W))
    assert torch.allclose(normalised[1], torch.arange(16.0).view(H, W) / 15)


def test_script_writes_both_figures(trained_runs: Path, data_root: Path, workdir: Path) -> None:
    checkpoint = trained_runs / 'checkpoints' / 'synthetic_dataset_SimpleNet_Adam.pt'
    result = run_script('saliency_map.py', '-m', 'SimpleNet', '--checkpoint', str(checkpoint),
                        '-d', 'synthetic_dataset', '--data-root', str(data_root), '--workers', '0',
                        cwd=workdir)
    names = ['synthetic_dataset_SimpleNet_mean_saliency_maps.png',
             'synthetic_dataset_SimpleNet_saliency_maps_and_images_pairs.png']
    assert sorted(p.name for p in (workdir / 'figures').iterdir()) == names
    for name in names:
        assert f'figures/{name}' in result.stdout
        assert (workdir / 'figures' / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_pairs_are_half_real_half_fake_and_reals_first() -> None:
    labels = torch.tensor([0] * 10 + [1] * 5)
    dataset = TensorDataset(torch.zeros(15, 3, 2, 2), labels)
    chosen = sm.choose_pair_indices(dataset, 12, torch.Generator().manual_seed(0))
    assert len(chosen) == 12 == len(set(chosen))
    assert [int(labels[i]) for i in chosen] == [0] * 7 + [1] * 5  # every fake, reals fill the rest
    few = sm.choose_pair_indices(dataset, 4, torch.Generator().manual_seed(0))
    assert [int(labels[i]) for i in few] == [0, 0, 1, 1]


def test_pairs_figure_titles_carry_p_fake_and_share_one_colour_scale() -> None:
    images = torch.zeros(4, 3, H, W)
    maps = torch.stack([torch.full((H, W), float(v)) for v in (1, 2, 3, 4)])
    figure = sm.plot_saliency_pairs(images, maps, torch.tensor([0, 0, 1, 1]), 'title',
                                    torch.tensor([0.1, 0.2, 0.9, 0.8]))
    try:
        titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
        assert titles[0] == 'real, p(fake)=0.10' and 'fake, p(fake)=0.90' in titles
        limits = {ax.images[0].get_clim() for ax in figure.axes if ax.images and
                  ax.get_title() == 'saliency'}
        assert len(limits) == 1  # one colour scale for every map
    finally:
        sm.plt.close(figure)


def test_saliency_statistics_find_the_centre_and_a_grid() -> None:
    size = 64
    centre = torch.zeros(size, size)
    centre[16:48, 16:48] = 1.0
    grid = torch.zeros(size, size)
    grid[::8, ::8] = 1.0  # a pattern repeating every 8 pixels
    stats = sm.saliency_statistics({0: centre, 1: grid})
    assert stats['real']['centre_share'] == pytest.approx(1.0)
    assert stats['fake']['centre_share'] == pytest.approx(0.25)
    assert stats['fake']['lattice']['8']['share'] == pytest.approx(1.0)
    assert stats['fake']['lattice']['4']['share'] < 0.5
    assert stats['real']['lattice']['8']['flat_map_share'] == pytest.approx(63 / (size * size - 1))
