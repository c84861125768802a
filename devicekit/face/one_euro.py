"""The 1-euro filter (Casiez, Roussel, Vogel, CHI 2012), the reference implementation for the apps,
plus the jitter and lag measurements that justify its parameters.

Per coordinate, at time t with previous filtered value x̂ and derivative dx̂:

    a(fc, dt) = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)
    dx  = (x - x̂_prev) / dt
    dx̂  = dx̂_prev + a(d_cutoff, dt) (dx - dx̂_prev)
    fc  = min_cutoff + beta |dx̂|
    x̂   = x̂_prev + a(fc, dt) (x - x̂_prev)

The first sample passes through unchanged (dx̂ = 0). Units: min_cutoff and
d_cutoff in Hz; beta in 1/(unit of x); landmarks are filtered in IMAGE pixels,
so beta is per image pixel per second. ``DEFAULT_PARAMS`` go into every
manifest (``postprocess.one_euro``); the mobile templates run the same maths.
"""

from __future__ import annotations

import math

import numpy as np

# min_cutoff 1.0 Hz, beta 0.05 /px, d_cutoff 1.0 Hz: measured in benchmarks/verify_demo.md
DEFAULT_PARAMS = {"min_cutoff": 1.0, "beta": 0.05, "d_cutoff": 1.0}


def _alpha(cutoff, dt: float):
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters arrays of any fixed shape (e.g. [68, 2] landmarks), elementwise."""

    def __init__(self, min_cutoff: float = DEFAULT_PARAMS["min_cutoff"], beta: float = DEFAULT_PARAMS["beta"],
                 d_cutoff: float = DEFAULT_PARAMS["d_cutoff"]):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("1-euro filter needs min_cutoff > 0, d_cutoff > 0, beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self.x_prev = None
        self.dx_prev = None
        self.t_prev = None

    def __call__(self, x, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x_prev is None:
            self.x_prev, self.dx_prev, self.t_prev = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self.t_prev
        if dt <= 0:
            raise ValueError(f"timestamps must increase (got dt = {dt})")
        dx = (x - self.x_prev) / dt
        dx_hat = self.dx_prev + _alpha(self.d_cutoff, dt) * (dx - self.dx_prev)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        x_hat = self.x_prev + _alpha(cutoff, dt) * (x - self.x_prev)
        self.x_prev, self.dx_prev, self.t_prev = x_hat, dx_hat, float(t)
        return x_hat.copy()

    def params(self) -> dict:
        return {"min_cutoff": self.min_cutoff, "beta": self.beta, "d_cutoff": self.d_cutoff}


def filter_sequence(xs: np.ndarray, fps: float, params: dict | None = None) -> np.ndarray:
    """[T, ...] samples at ``fps`` -> filtered [T, ...]."""
    f = OneEuroFilter(**(params or DEFAULT_PARAMS))
    return np.stack([f(x, i / fps) for i, x in enumerate(np.asarray(xs, np.float64))])


def jitter(track: np.ndarray, norm: np.ndarray | float | None = None) -> dict:
    """Frame-to-frame stability of a landmark track [T, L, 2] (image pixels).

    ``step``: mean displacement between consecutive frames; ``accel``: mean
    norm of the second difference (motion that is not smooth: what a viewer
    sees as shaking). Divided by ``norm`` (e.g. the per-frame inter-ocular
    distance) when given.
    """
    tr = np.asarray(track, np.float64)
    if tr.shape[0] < 3:
        raise ValueError("jitter needs at least 3 frames")
    step = np.linalg.norm(np.diff(tr, axis=0), axis=-1)  # [T-1, L]
    acc = np.linalg.norm(np.diff(tr, 2, axis=0), axis=-1)  # [T-2, L]
    out = {"frames": int(tr.shape[0]), "step_px": float(step.mean()), "accel_px": float(acc.mean())}
    if norm is not None:
        n = np.broadcast_to(np.asarray(norm, np.float64), (tr.shape[0],))
        out["step_norm"] = float((step / n[1:, None]).mean())
        out["accel_norm"] = float((acc / n[2:, None]).mean())
    return out


def measure_lag(truth: np.ndarray, filtered: np.ndarray, max_lag: float = 5.0, step: float = 0.01) -> float:
    """The delay in frames d (>= 0) that best aligns ``filtered`` with ``truth`` delayed by d
    (least squares over a fine grid, linear interpolation between frames)."""
    truth = np.asarray(truth, np.float64)
    filtered = np.asarray(filtered, np.float64)
    t = np.arange(len(truth), dtype=np.float64)
    skip = int(math.ceil(max_lag)) + 1
    best, best_d = float("inf"), 0.0
    for d in np.arange(0.0, max_lag + 1e-9, step):
        shifted = np.interp(t[skip:] - d, t, truth)
        e = float(np.mean((filtered[skip:] - shifted) ** 2))
        if e < best:
            best, best_d = e, float(d)
    return best_d


def synthetic_lag(params: dict | None = None, fps: float = 30.0, amplitude: float = 60.0, period_s: float = 2.0,
                  seconds: float = 6.0, noise_px: float = 0.0, seed: int = 0) -> dict:
    """Lag of the filter on a synthetic target moving as a sinusoid (image pixels), in frames,
    and the same for the raw (noisy) signal as a baseline."""
    n = int(fps * seconds)
    t = np.arange(n) / fps
    truth = amplitude * np.sin(2 * math.pi * t / period_s)
    noisy = truth + np.random.default_rng(seed).normal(0, noise_px, n)
    filt = filter_sequence(noisy, fps, params)
    return {
        "fps": fps, "amplitude_px": amplitude, "period_s": period_s, "noise_px": noise_px,
        "peak_speed_px_s": 2 * math.pi * amplitude / period_s,
        "lag_frames": measure_lag(truth, filt), "raw_lag_frames": measure_lag(truth, noisy),
        "params": dict(params or DEFAULT_PARAMS),
    }
