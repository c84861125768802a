"""Each MIL op of the reference interpreter against PyTorch / numpy on random inputs, edge cases included."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from devicekit.milref.nn import conv, pool, upsample_nearest  # noqa: E402
from devicekit.milref.ops import OPS, Args  # noqa: E402
from devicekit.milref.program import decode_bytes, unpack_bits  # noqa: E402

rng = np.random.default_rng(0)


def op(name, **inputs):
    return OPS[name](Args({k: [v] if not isinstance(v, list) else v for k, v in inputs.items()}, {}), {})


def t(x):
    return torch.from_numpy(np.ascontiguousarray(x))


@pytest.mark.parametrize(
    "h,w,k,stride,pad,dil,groups",
    [
        (9, 11, 3, 2, 1, 1, 1),  # odd sizes, stride 2
        (8, 8, 3, 1, 1, 1, 4),  # grouped
        (7, 10, 3, 1, 1, 1, 8),  # depthwise
        (13, 9, 2, 1, 0, 1, 1),  # even kernel, valid
        (12, 12, 3, 1, 2, 2, 1),  # dilation
        (5, 6, 1, 1, 0, 1, 2),  # 1x1 grouped
    ],
)
def test_conv_custom_pad(h, w, k, stride, pad, dil, groups):
    cin, cout = 8, 8
    x = rng.standard_normal((2, cin, h, w), dtype=np.float32)
    wt = rng.standard_normal((cout, cin // groups, k, k), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    got = conv(x, wt, b, [stride, stride], "custom", [pad, pad, pad, pad], [dil, dil], groups)
    ref = F.conv2d(t(x), t(wt), t(b), stride=stride, padding=pad, dilation=dil, groups=groups).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pad_type,size,k,s", [("same", 9, 3, 2), ("same", 10, 4, 2), ("same_lower", 10, 4, 2), ("same", 7, 3, 1)])
def test_conv_same_padding(pad_type, size, k, s):
    x = rng.standard_normal((1, 3, size, size), dtype=np.float32)
    wt = rng.standard_normal((4, 3, k, k), dtype=np.float32)
    total = max((-(-size // s) - 1) * s + k - size, 0)
    lo, hi = (total // 2, total - total // 2) if pad_type == "same" else (total - total // 2, total // 2)
    ref = F.conv2d(F.pad(t(x), (lo, hi, lo, hi)), t(wt), stride=s).numpy()
    got = conv(x, wt, None, [s, s], pad_type, None, [1, 1], 1)
    assert got.shape == (1, 4, -(-size // s), -(-size // s))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_conv1d():
    x = rng.standard_normal((1, 4, 15), dtype=np.float32)
    wt = rng.standard_normal((6, 2, 3), dtype=np.float32)
    got = conv(x, wt, None, [2], "custom", [1, 1], [1], 2)
    np.testing.assert_allclose(got, F.conv1d(t(x), t(wt), stride=2, padding=1, groups=2).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "size,k,s,p,ceil",
    [(9, 3, 2, 1, False), (9, 3, 2, 1, True), (10, 3, 2, 0, True), (7, 2, 2, 0, True), (8, 2, 2, 0, False), (11, 3, 3, 1, True), (5, 3, 1, 1, False)],
)
def test_max_pool(size, k, s, p, ceil):
    x = rng.standard_normal((1, 3, size, size + 1), dtype=np.float32)
    got = pool(x, "max", [k, k], [s, s], "custom", [p, p, p, p], ceil, False)
    ref = F.max_pool2d(t(x), k, s, p, ceil_mode=ceil).numpy()
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize(
    "size,k,s,p,ceil,exclude",
    [
        (9, 3, 2, 1, False, True),
        (9, 3, 2, 1, False, False),
        (10, 3, 2, 1, True, False),
        (10, 3, 2, 1, True, True),
        (7, 2, 2, 0, True, True),
        (8, 3, 1, 1, False, False),
    ],
)
def test_avg_pool(size, k, s, p, ceil, exclude):
    x = rng.standard_normal((2, 2, size, size), dtype=np.float32)
    got = pool(x, "avg", [k, k], [s, s], "custom", [p, p, p, p], ceil, exclude)
    ref = F.avg_pool2d(t(x), k, s, p, ceil_mode=ceil, count_include_pad=not exclude).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("h,w,sh,sw", [(4, 5, 2, 2), (3, 3, 3, 2), (7, 1, 1, 4)])
def test_upsample_nearest(h, w, sh, sw):
    x = rng.standard_normal((1, 2, h, w), dtype=np.float32)
    ref = F.interpolate(t(x), scale_factor=(sh, sw), mode="nearest").numpy()
    np.testing.assert_array_equal(upsample_nearest(x, sh, sw), ref)
    np.testing.assert_array_equal(op("upsample_nearest_neighbor", x=x, scale_factor_height=np.float32(sh), scale_factor_width=np.float32(sw)), ref)


@pytest.mark.parametrize("mode,torch_mode", [("constant", "constant"), ("reflect", "reflect"), ("replicate", "replicate")])
def test_pad_modes(mode, torch_mode):
    x = rng.standard_normal((1, 2, 5, 6), dtype=np.float32)
    pads = [1, 2, 3, 0]  # H begin/end, W begin/end (MIL order: first of the padded dims first)
    got = op("pad", x=x, pad=np.array(pads, np.int32), mode=mode, constant_val=np.float32(0.5))
    kw = {"value": 0.5} if mode == "constant" else {}
    ref = F.pad(t(x), (3, 0, 1, 2), mode=torch_mode, **kw).numpy()
    np.testing.assert_allclose(got, ref)


@pytest.mark.parametrize("name,fn", [("reduce_sum", torch.sum), ("reduce_mean", torch.mean), ("reduce_max", torch.amax), ("reduce_min", torch.amin)])
@pytest.mark.parametrize("keep", [True, False])
def test_reductions_keep_dims(name, fn, keep):
    x = rng.standard_normal((2, 3, 5, 7), dtype=np.float32)
    got = op(name, x=x, axes=np.array([2, -1], np.int32), keep_dims=np.bool_(keep))
    ref = fn(t(x), dim=(2, 3), keepdim=keep).numpy()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert op(name, x=x, keep_dims=np.bool_(False)).shape == ()  # no axes: all of them


def test_prelu_leaky_clip_relu():
    x = rng.standard_normal((1, 4, 3, 3), dtype=np.float32)
    alpha = rng.random(4, dtype=np.float32)
    np.testing.assert_allclose(op("prelu", x=x, alpha=alpha), F.prelu(t(x), t(alpha)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(op("leaky_relu", x=x, alpha=np.float32(0.2)), F.leaky_relu(t(x), 0.2).numpy(), rtol=1e-6)
    np.testing.assert_allclose(op("clip", x=x * 10, alpha=np.float32(0), beta=np.float32(6)), F.relu6(t(x * 10)).numpy())
    np.testing.assert_allclose(op("relu", x=x), F.relu(t(x)).numpy())
    np.testing.assert_allclose(op("sigmoid", x=x), torch.sigmoid(t(x)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(op("softmax", x=x, axis=np.int32(1)), torch.softmax(t(x), 1).numpy(), rtol=1e-5)
    # coremltools' torch hardswish: x * sigmoid_hard(x) after thresholded_relu(x, -3) (x kept where x >= alpha)
    edge = np.array([-3.5, -3.0, -2.9, 0.0, 3.0], np.float32)
    np.testing.assert_array_equal(op("thresholded_relu", x=edge, alpha=np.float32(-3.0)), np.array([0, -3.0, -2.9, 0, 3.0], np.float32))


def test_elementwise_broadcast():
    a = rng.standard_normal((1, 3, 4, 5), dtype=np.float32)
    b = rng.standard_normal((1, 3, 1, 1), dtype=np.float32).astype(np.float16)
    for name, fn in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("real_div", np.divide), ("maximum", np.maximum)]:
        np.testing.assert_allclose(op(name, x=a, y=b), fn(a, b.astype(np.float32)), rtol=1e-6)
    np.testing.assert_allclose(op("inverse", x=a, epsilon=np.float32(0)), 1 / a, rtol=1e-6)
    np.testing.assert_allclose(op("abs", x=a), np.abs(a))


def test_shape_ops():
    x = rng.standard_normal((1, 6, 4, 4), dtype=np.float32)
    parts = op("split", x=x, axis=np.int32(1), num_splits=np.int32(2))
    assert [p.shape for p in parts] == [(1, 3, 4, 4)] * 2
    parts = op("split", x=x, axis=np.int32(1), split_sizes=np.array([1, 5], np.int32))
    np.testing.assert_array_equal(parts[1], x[:, 1:])
    np.testing.assert_array_equal(op("concat", values=[x, x], axis=np.int32(1), interleave=np.bool_(False)), np.concatenate([x, x], 1))
    inter = op("concat", values=[x[:, :3], x[:, 3:]], axis=np.int32(1), interleave=np.bool_(True))
    np.testing.assert_array_equal(inter, t(x).view(1, 2, 3, 4, 4).transpose(1, 2).reshape(1, 6, 4, 4).numpy())
    np.testing.assert_array_equal(op("reshape", x=x, shape=np.array([1, -1, 16], np.int32)), x.reshape(1, 6, 16))
    np.testing.assert_array_equal(op("transpose", x=x, perm=np.array([0, 2, 3, 1], np.int32)), x.transpose(0, 2, 3, 1))
    sl = op(
        "slice_by_index",
        x=x,
        begin=np.array([0, 1, 0, 1], np.int32),
        end=np.array([1, 5, 4, 4], np.int32),
        stride=np.array([1, 2, 1, 1], np.int32),
        begin_mask=np.array([1, 0, 1, 0], bool),
        end_mask=np.array([1, 0, 1, 1], bool),
        squeeze_mask=np.array([0, 0, 0, 0], bool),
    )
    np.testing.assert_array_equal(sl, x[:, 1:5:2, :, 1:])
    np.testing.assert_array_equal(op("squeeze", x=x[:, :1], axes=np.array([1], np.int32)), x[:, 0])
    np.testing.assert_array_equal(op("expand_dims", x=x, axes=np.array([-1], np.int32)), x[..., None])


def test_linear_matmul():
    x = rng.standard_normal((2, 7), dtype=np.float32)
    w = rng.standard_normal((5, 7), dtype=np.float32)
    b = rng.standard_normal(5, dtype=np.float32)
    np.testing.assert_allclose(op("linear", x=x, weight=w, bias=b), F.linear(t(x), t(w), t(b)).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(op("matmul", x=x, y=w, transpose_y=np.bool_(True)), x @ w.T, rtol=1e-5)


def test_quantize_dequantize_match_torch():
    x = rng.standard_normal((1, 4, 3, 3), dtype=np.float32) * 3
    q = op("quantize", input=x, scale=np.float32(0.05), zero_point=np.uint8(128), output_dtype="uint8")
    ref = torch.quantize_per_tensor(t(x), 0.05, 128, torch.quint8)
    np.testing.assert_array_equal(q, ref.int_repr().numpy())
    np.testing.assert_allclose(op("dequantize", input=q, scale=np.float32(0.05), zero_point=np.uint8(128)), ref.dequantize().numpy(), rtol=1e-6)


def test_affine_dequantize_per_channel():
    q = rng.integers(-128, 127, (4, 3, 2, 2)).astype(np.int8)
    scale = rng.random(4, dtype=np.float32)
    zp = np.zeros(4, np.int8)
    got = OPS["constexpr_affine_dequantize"](Args({}, {}), {"quantized_data": q, "scale": scale, "zero_point": zp, "axis": np.int32(0)})
    np.testing.assert_allclose(got, q.astype(np.float32) * scale[:, None, None, None])


def test_lut_to_dense_packing():
    # 2-bit palette, LSB first: indices [1, 2, 3, 0, 1] pack into bytes 0b00111001, 0b00000001
    lut = np.array([10, 20, 30, 40], np.float16)
    packed = np.array([0b00111001, 0b00000001], np.uint8)
    got = OPS["constexpr_lut_to_dense"](Args({}, {}), {"lut": lut, "indices": packed, "shape": np.array([5], np.uint32)})
    np.testing.assert_array_equal(got, [20, 30, 40, 10, 20])
    np.testing.assert_array_equal(unpack_bits(bytes([0xAB]), 4, 2), [0xB, 0xA])
    np.testing.assert_array_equal(unpack_bits(bytes([0xF7]), 4, 2, signed=True), [7, -1])


def test_decode_bytes_fp16():
    x = rng.standard_normal((2, 3)).astype(np.float16)
    np.testing.assert_array_equal(decode_bytes(x.tobytes(), "FLOAT16", (2, 3)), x)


@pytest.mark.parametrize("k,s,p,op_,g,d", [(3, 2, 1, 1, 2, 1), (4, 2, 1, 0, 1, 1), (3, 1, 0, 0, 1, 2), (2, 3, 0, 2, 4, 1)])
def test_conv_transpose(k, s, p, op_, g, d):
    from devicekit.milref.nn import conv_transpose

    x = rng.standard_normal((1, 8, 5, 7), dtype=np.float32)
    w = rng.standard_normal((8, 12 // g, k, k), dtype=np.float32)
    b = rng.standard_normal(12, dtype=np.float32)
    ref = F.conv_transpose2d(t(x), t(w), t(b), stride=s, padding=p, output_padding=op_, groups=g, dilation=d).numpy()
    got = conv_transpose(x, w, b, [s, s], "custom", [p, p, p, p], [d, d], g, ref.shape)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("h,w,scale,align", [(5, 6, 2, False), (5, 6, 2, True), (4, 3, 3, False), (7, 7, 1.5, True)])
def test_upsample_bilinear(h, w, scale, align):
    from devicekit.milref.nn import upsample_bilinear

    x = rng.standard_normal((1, 2, h, w), dtype=np.float32)
    oh, ow = int(h * scale), int(w * scale)
    ref = F.interpolate(t(x), size=(oh, ow), mode="bilinear", align_corners=align).numpy()
    np.testing.assert_allclose(upsample_bilinear(x, scale, scale, align), ref, rtol=1e-5, atol=1e-5)


def test_crop():
    x = rng.standard_normal((1, 2, 6, 7), dtype=np.float32)
    got = op("crop", x=x, crop_height=np.array([1, 2], np.int32), crop_width=np.array([0, 3], np.int32))
    np.testing.assert_array_equal(got, x[..., 1:4, 0:4])
