"""devicekit.zoo.layers: the export-friendly RoI crop against grid_sample, the form training uses."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from devicekit.zoo.layers import roi_crop, roi_crop_grid  # noqa: E402


def _maps_and_points(seed: int):
    g = torch.Generator().manual_seed(seed)
    maps = torch.randn(3, 7, 16, 16, generator=g)
    # points across the map and past its edges (the window then samples zeros)
    x = torch.rand(3, 7, 1, 1, generator=g) * 20 - 2
    y = torch.rand(3, 7, 1, 1, generator=g) * 20 - 2
    return maps, x, y


@pytest.mark.parametrize("size", [3, 5])
def test_roi_crop_is_bilinear_grid_sample_and_the_training_form_matches_it(size):
    maps, x, y = _maps_and_points(size)
    a = roi_crop(maps, x, y, size)
    b = roi_crop_grid(maps, x, y, size)
    assert a.shape == b.shape == (3, 7, size, size)
    assert torch.allclose(a, b, atol=1e-5)
    # one cell by hand: the window's centre cell of landmark (0, 0) is the bilinear value at (x, y)
    px, py = float(x[0, 0]), float(y[0, 0])
    x0, y0 = int(torch.floor(x[0, 0])), int(torch.floor(y[0, 0]))
    m = maps[0, 0]

    def at(i, j):
        return float(m[i, j]) if 0 <= i < 16 and 0 <= j < 16 else 0.0

    fx, fy = px - x0, py - y0
    want = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))
    c = (size - 1) // 2
    assert abs(float(a[0, 0, c, c]) - want) < 1e-5


def test_the_training_form_has_the_export_forms_gradients():
    maps, x, y = _maps_and_points(0)
    grads = []
    for fn in (roi_crop, roi_crop_grid):
        m, px, py = (t.clone().requires_grad_(True) for t in (maps, x, y))
        w = torch.linspace(-1, 1, 25).view(1, 1, 5, 5)
        (fn(m, px, py, 5) * w).sum().backward()
        grads.append((m.grad, px.grad, py.grad))
    for ga, gb in zip(*grads):
        assert torch.allclose(ga, gb, atol=1e-4)
    assert grads[0][1].abs().sum() > 0  # the points do get a gradient
