"""Convolution, pooling and resampling in numpy (NCHW), as MIL defines them.

Padding: ``valid`` (none), ``custom`` (``pad`` = [top, bottom, left, right]),
``same`` (total = max((ceil(in/s)-1)*s + (k-1)*d + 1 - in, 0), the extra
pixel at the end) and ``same_lower`` (the extra pixel at the start).
"""

from __future__ import annotations

import math

import numpy as np


def _pads(pad_type: str, pad: list[int] | None, size: tuple, kernel: list[int], strides: list[int], dil: list[int]) -> list[tuple[int, int]]:
    out = []
    for i, n in enumerate(size):
        k_eff = (kernel[i] - 1) * dil[i] + 1
        if pad_type == "valid":
            out.append((0, 0))
        elif pad_type == "custom":
            out.append((int(pad[2 * i]), int(pad[2 * i + 1])) if pad else (0, 0))
        elif pad_type in ("same", "same_lower"):
            total = max((math.ceil(n / strides[i]) - 1) * strides[i] + k_eff - n, 0)
            small, big = total // 2, total - total // 2
            out.append((small, big) if pad_type == "same" else (big, small))
        else:
            raise NotImplementedError(f"pad_type {pad_type}")
    return out


def conv(x, w, bias, strides, pad_type, pad, dilations, groups):
    """x [N, Cin, H, W], w [Cout, Cin/groups, kh, kw] -> [N, Cout, Ho, Wo]. 1-D convs too (rank 3)."""
    if x.ndim == 3:
        y = conv(x[:, :, None], w[:, :, None], bias, [1] + list(strides or [1]), pad_type,
                 None if pad is None else [0, 0] + list(pad), [1] + list(dilations or [1]), groups)
        return y[:, :, 0]
    if x.ndim != 4:
        raise NotImplementedError(f"conv of rank {x.ndim}")
    kh, kw = w.shape[2:]
    strides = list(strides or [1, 1])
    dil = list(dilations or [1, 1])
    (pt, pb), (pl, pr) = _pads(pad_type, pad, x.shape[2:], [kh, kw], strides, dil)
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, cin, h, wd = x.shape
    g = int(groups or 1)
    cout = w.shape[0]
    ho = (h - (kh - 1) * dil[0] - 1) // strides[0] + 1
    wo = (wd - (kw - 1) * dil[1] - 1) // strides[1] + 1
    xg = x.reshape(n, g, cin // g, h, wd)
    wg = w.reshape(g, cout // g, cin // g, kh, kw)
    out = np.zeros((n, g, cout // g, ho * wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            ys, xs = i * dil[0], j * dil[1]
            patch = xg[:, :, :, ys:ys + strides[0] * (ho - 1) + 1:strides[0], xs:xs + strides[1] * (wo - 1) + 1:strides[1]]
            out += np.matmul(wg[:, :, :, i, j], patch.reshape(n, g, cin // g, ho * wo))
    out = out.reshape(n, cout, ho, wo)
    if bias is not None:
        out = out + np.asarray(bias, np.float32).reshape(1, -1, 1, 1)
    return out


def pool(x, kind, kernel, strides, pad_type, pad, ceil_mode, exclude_padding):
    """max/avg pooling over the last two axes, PyTorch's ceil_mode rule (no window starting in the right padding)."""
    if x.ndim != 4:
        raise NotImplementedError(f"pooling of rank {x.ndim}")
    kh, kw = kernel
    strides = list(strides or kernel)
    h, w = x.shape[2:]
    pads = _pads(pad_type, pad, (h, w), [kh, kw], strides, [1, 1])
    sizes = []
    for (pb, pe), n, k, s in zip(pads, (h, w), (kh, kw), strides):
        span = n + pb + pe - k
        o = (math.ceil(span / s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= n + pb:
            o -= 1
        sizes.append(o)
    ho, wo = sizes
    (pt, _), (pl, _) = pads
    # pad far enough for every window; track which cells are real input and which are inside the declared padding
    need_h = max((ho - 1) * strides[0] + kh - (h + pt), 0)
    need_w = max((wo - 1) * strides[1] + kw - (w + pl), 0)
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (pt, need_h), (pl, need_w)), constant_values=fill)
    real = np.pad(np.ones((h, w), np.float32), ((pt, need_h), (pl, need_w)))
    declared = np.zeros_like(real)
    declared[: pt + h + pads[0][1], : pl + w + pads[1][1]] = 1.0
    acc = np.full((x.shape[0], x.shape[1], ho, wo), fill, np.float32)
    count = np.zeros((ho, wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            sl = (slice(i, i + strides[0] * (ho - 1) + 1, strides[0]), slice(j, j + strides[1] * (wo - 1) + 1, strides[1]))
            patch = xp[:, :, sl[0], sl[1]]
            if kind == "max":
                acc = np.maximum(acc, patch)
            else:
                acc = acc + patch
                count += (real if exclude_padding else declared)[sl[0], sl[1]]
    if kind == "max":
        return acc
    return acc / np.maximum(count, 1.0)


def upsample_nearest(x, scale_h, scale_w):
    h, w = x.shape[-2:]
    oh, ow = int(math.floor(h * scale_h)), int(math.floor(w * scale_w))
    iy = np.minimum(np.floor(np.arange(oh) / scale_h).astype(np.int64), h - 1)
    ix = np.minimum(np.floor(np.arange(ow) / scale_w).astype(np.int64), w - 1)
    return x[..., iy, :][..., ix]
