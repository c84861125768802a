"""The training script's quantization-aware phase (scripts/fake_quant.py, train_heatmap2s.py --qat-steps)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


def _model():
    from devicekit.zoo import get

    torch.manual_seed(0)
    m = get("heatmap2s").build()
    m.train()
    for _ in range(2):  # non-trivial batch-norm statistics
        m(torch.randn(4, 3, 128, 128))
    return m.eval()


def test_attach_rounds_every_conv_weight_per_channel_and_detach_restores_the_float_model():
    import fake_quant

    m = _model()
    x = torch.randn(2, 3, 128, 128)
    ref = m(x).detach()
    keys = list(m.state_dict())
    params = {id(p) for p in m.parameters()}
    att = fake_quant.attach(m)
    assert {id(p) for p in m.parameters()} == params  # the optimizer keeps training the same tensors
    assert len(att.convs) == sum(isinstance(c, torch.nn.Conv2d) for c in m.modules())
    for c in att.convs:
        w, orig = c.weight.detach(), c.parametrizations.weight.original.detach()
        step = orig.abs().flatten(1).amax(1) / 127.0
        q = w.flatten(1) / step[:, None]
        assert torch.allclose(q, q.round(), atol=1e-3)  # on the int8 grid of its own channel
        assert ((w - orig).abs().flatten(1) <= step[:, None] / 2 + 1e-7).all()
    y = m(x).detach()
    assert not torch.equal(y, ref) and (y - ref).abs().mean() < 2.0  # rounded, not broken (pixels of a 128 crop)
    fake_quant.detach(att)
    assert sorted(m.state_dict()) == sorted(keys)  # loads into an unmodified Heatmap2S
    assert torch.equal(m(x).detach(), ref)


def test_stored_activations_take_at_most_256_levels_and_gradients_pass_straight_through():
    import fake_quant

    m = _model()
    att = fake_quant.attach(m)
    seen = []
    h = m.head1.register_forward_hook(lambda mod, i, o: seen.append(o.detach()))  # runs after the fake-quant hook
    m.train()
    x = torch.randn(4, 3, 128, 128)
    m(x).sum().backward()
    h.remove()
    head = seen[-1]
    assert len(torch.unique(head)) > 1
    # the fake-quant hook replaced the output: every value on one 256-level grid
    lo, hi = att.ranges()[-2]
    step = (hi - lo) / 255.0
    assert len(torch.unique(head)) <= 256 and head.min() >= lo - step and head.max() <= hi + step
    grads = [c.parametrizations.weight.original.grad for c in att.convs]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    fake_quant.detach(att)


@pytest.mark.parametrize(
    "steps, more, error",
    [
        ("100", ["--qat-steps", "120"], "--qat-steps must be between 0 and --steps (100), got 120"),
        ("100", ["--qat-steps", "-1"], "--qat-steps must be between 0 and --steps (100), got -1"),
        ("10", [], "--steps must be at least 40, got 10"),
    ],
)
def test_bad_step_counts_are_one_line_errors(steps, more, error, tmp_path):
    import subprocess

    script = Path(__file__).resolve().parent.parent / "scripts" / "train_heatmap2s.py"
    r = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "a.pt"), "--steps", steps, *more], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith(f"error: {error}")
    assert not (tmp_path / "a.pt").exists()
