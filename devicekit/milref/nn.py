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
        y = conv(
            x[:, :, None],
            w[:, :, None],
            bias,
            [1] + list(strides or [1]),
            pad_type,
            None if pad is None else [0, 0] + list(pad),
            [1] + list(dilations or [1]),
            groups,
        )
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
            patch = xg[:, :, :, ys : ys + strides[0] * (ho - 1) + 1 : strides[0], xs : xs + strides[1] * (wo - 1) + 1 : strides[1]]
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


def conv_transpose(x, w, bias, strides, pad_type, pad, dilations, groups, output_shape=None):
    """x [N, Cin, H, W], w [Cin, Cout/groups, kh, kw] (PyTorch's layout) -> [N, Cout, Ho, Wo].

    The full transposed convolution is (H-1)*s + (k-1)*d + 1 tall; ``pad``
    (custom) removes rows/cols at each end; ``output_shape`` (when given)
    fixes the size, zero-filled past the full result (PyTorch's output_padding).
    """
    if x.ndim != 4:
        raise NotImplementedError(f"conv_transpose of rank {x.ndim}")
    n, cin, h, wd = x.shape
    kh, kw = w.shape[2:]
    g = int(groups or 1)
    cout = w.shape[1] * g
    s = list(strides or [1, 1])
    d = list(dilations or [1, 1])
    fh, fw = (h - 1) * s[0] + (kh - 1) * d[0] + 1, (wd - 1) * s[1] + (kw - 1) * d[1] + 1
    full = np.zeros((n, g, cout // g, fh, fw), np.float32)
    xg = x.reshape(n, g, cin // g, h * wd)
    wg = w.reshape(g, cin // g, cout // g, kh, kw)
    for i in range(kh):
        for j in range(kw):
            contrib = np.matmul(np.swapaxes(wg[:, :, :, i, j], 1, 2), xg).reshape(n, g, cout // g, h, wd)
            full[:, :, :, i * d[0] : i * d[0] + s[0] * (h - 1) + 1 : s[0], j * d[1] : j * d[1] + s[1] * (wd - 1) + 1 : s[1]] += contrib
    full = full.reshape(n, cout, fh, fw)
    if pad_type == "same":
        out_hw = [h * s[0], wd * s[1]]
        pads = [(0, 0), (0, 0)]
        for ax, (f, o) in enumerate(zip((fh, fw), out_hw)):
            total = max(f - o, 0)
            pads[ax] = (total // 2, total - total // 2)
    elif pad_type == "custom" and pad:
        pads = [(int(pad[0]), int(pad[1])), (int(pad[2]), int(pad[3]))]
    else:
        pads = [(0, 0), (0, 0)]
    if output_shape is not None:
        oh, ow = [int(v) for v in list(output_shape)[-2:]]
    else:
        oh, ow = fh - sum(pads[0]), fw - sum(pads[1])
    out = np.zeros((n, cout, oh, ow), np.float32)
    src = full[:, :, pads[0][0] : pads[0][0] + oh, pads[1][0] : pads[1][0] + ow]
    out[:, :, : src.shape[2], : src.shape[3]] = src
    if bias is not None:
        out = out + np.asarray(bias, np.float32).reshape(1, -1, 1, 1)
    return out


def upsample_bilinear(x, scale_h, scale_w, align_corners=False, half_pixel_centers=None):
    """MIL upsample_bilinear: output floor(in * scale); align_corners, half-pixel centres, or legacy (dst / scale)."""
    if half_pixel_centers is None:
        half_pixel_centers = not align_corners
    h, w = x.shape[-2:]
    oh, ow = int(math.floor(h * scale_h)), int(math.floor(w * scale_w))

    def coords(n_in, n_out, scale):
        dst = np.arange(n_out, dtype=np.float64)
        if align_corners:
            src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros_like(dst)
        elif half_pixel_centers:
            src = np.maximum((dst + 0.5) / scale - 0.5, 0.0)
        else:
            src = dst / scale
        src = np.minimum(src, n_in - 1)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (src - i0).astype(np.float32)

    y0, y1, fy = coords(h, oh, scale_h)
    x0, x1, fx = coords(w, ow, scale_w)
    top = x[..., y0, :] * (1 - fy)[:, None] + x[..., y1, :] * fy[:, None]
    return top[..., x0] * (1 - fx) + top[..., x1] * fx
