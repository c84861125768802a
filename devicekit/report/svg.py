"""Tiny inline-SVG plots (no matplotlib): histogram, latency over time, CDF, several series each."""

from __future__ import annotations

from html import escape

import numpy as np

W, H = 560, 260
PAD_L, PAD_R, PAD_T, PAD_B = 56, 16, 28, 40
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** np.floor(np.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = np.ceil(lo / step) * step
    return [float(v) for v in np.arange(start, hi + step * 1e-9, step)]


class _Axes:
    def __init__(self, title: str, xlabel: str, ylabel: str, xr: tuple[float, float], yr: tuple[float, float]):
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.x0, self.x1 = xr if xr[1] > xr[0] else (xr[0], xr[0] + 1)
        self.y0, self.y1 = yr if yr[1] > yr[0] else (yr[0], yr[0] + 1)
        self.parts: list[str] = []

    def sx(self, x):
        return PAD_L + (np.asarray(x, float) - self.x0) / (self.x1 - self.x0) * (W - PAD_L - PAD_R)

    def sy(self, y):
        return H - PAD_B - (np.asarray(y, float) - self.y0) / (self.y1 - self.y0) * (H - PAD_T - PAD_B)

    def frame(self) -> None:
        p = self.parts
        p.append(f'<text x="{W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(self.title)}</text>')
        p.append(f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" fill="none" stroke="#999"/>')
        for t in _nice_ticks(self.x0, self.x1):
            x = self.sx(t)
            p.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{H - PAD_B}" y2="{H - PAD_B + 4}" stroke="#666"/>'
                f'<text x="{x:.1f}" y="{H - PAD_B + 16}" text-anchor="middle">{t:g}</text>'
            )
        for t in _nice_ticks(self.y0, self.y1):
            y = self.sy(t)
            p.append(
                f'<line x1="{PAD_L - 4}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>'
            )
        p.append(f'<text x="{(PAD_L + W - PAD_R) / 2}" y="{H - 6}" text-anchor="middle">{escape(self.xlabel)}</text>')
        p.append(f'<text transform="translate(14,{(PAD_T + H - PAD_B) / 2}) rotate(-90)" text-anchor="middle">{escape(self.ylabel)}</text>')

    def polyline(self, xs, ys, color: str) -> None:
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(self.sx(xs), self.sy(ys)))
        self.parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.3"/>')

    def legend(self, labels: list[str], bottom: bool = False) -> None:
        if len(labels) < 2:
            return
        for i, lab in enumerate(labels):
            y = (H - PAD_B - 8 - 14 * (len(labels) - 1 - i)) if bottom else PAD_T + 12 + 14 * i
            self.parts.append(
                f'<rect x="{W - PAD_R - 170}" y="{y - 8}" width="10" height="10" fill="{COLORS[i % len(COLORS)]}"/>'
                f'<text x="{W - PAD_R - 155}" y="{y + 1}">{escape(lab[:26])}</text>'
            )

    def svg(self) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'font-family="sans-serif" font-size="11" role="img" aria-label="{escape(self.title)}">' + "".join(self.parts) + "</svg>"
        )


def histogram(series: list[tuple[str, np.ndarray]], bins: int = 40) -> str:
    allv = np.concatenate([v for _, v in series if len(v)] or [np.zeros(1)])
    lo, hi = float(np.percentile(allv, 0)), float(np.percentile(allv, 99.5))
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    counts = [np.histogram(np.clip(v, lo, edges[-1]), edges)[0] / max(len(v), 1) * 100 for _, v in series]
    ax = _Axes("Latency histogram", "frame time (ms)", "% of frames", (lo, float(edges[-1])), (0, max(float(c.max()) for c in counts) * 1.1 or 1))
    ax.frame()
    for i, c in enumerate(counts):
        xs = np.repeat(edges, 2)[1:-1]
        ys = np.repeat(c, 2)
        ax.polyline(np.r_[edges[0], xs, edges[-1]], np.r_[0, ys, 0], COLORS[i % len(COLORS)])
    ax.legend([n for n, _ in series])
    return ax.svg()


def over_time(series: list[tuple[str, np.ndarray, np.ndarray]]) -> str:
    """series: (label, t_seconds, ms)."""
    tmax = max((float(t[-1]) for _, t, _ in series if len(t)), default=1.0)
    allv = np.concatenate([v for _, _, v in series if len(v)] or [np.zeros(1)])
    ax = _Axes(
        "Latency over time", "time since first frame (s)", "frame time (ms)", (0, tmax or 1.0), (0, float(np.percentile(allv, 99.5)) * 1.15 or 1)
    )
    ax.frame()
    for i, (_, t, v) in enumerate(series):
        if len(v) > 1500:  # keep the SVG small: per-bucket medians
            idx = np.array_split(np.arange(len(v)), 1500)
            t = np.array([t[k].mean() for k in idx])
            v = np.array([np.median(v[k]) for k in idx])
        ax.polyline(t, np.minimum(v, ax.y1), COLORS[i % len(COLORS)])
    ax.legend([n for n, _, _ in series])
    return ax.svg()


def cdf(series: list[tuple[str, np.ndarray]]) -> str:
    allv = np.concatenate([v for _, v in series if len(v)] or [np.zeros(1)])
    ax = _Axes("Latency CDF", "frame time (ms)", "fraction of frames ≤ x", (float(allv.min()), float(allv.max())), (0, 1))
    ax.frame()
    for i, (_, v) in enumerate(series):
        if not len(v):
            continue
        s = np.sort(v)
        y = np.arange(1, len(s) + 1) / len(s)
        if len(s) > 1000:
            k = np.linspace(0, len(s) - 1, 1000).astype(int)
            s, y = s[k], y[k]
        ax.polyline(s, y, COLORS[i % len(COLORS)])
    ax.legend([n for n, _ in series], bottom=True)
    return ax.svg()
