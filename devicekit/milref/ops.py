"""MIL ops in numpy, one small registered function each.

Every op computes in float32 (or the integer type it is given) and the
interpreter then rounds the result to the dtype the program declares for the
op's output, so an fp16 program is emulated with fp16 storage between ops,
as the device keeps it. Semantics follow the MIL op reference
(coremltools.converters.mil.mil.ops.defs); ``tests/test_milref_ops.py``
checks each against PyTorch or numpy.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .nn import conv, conv_transpose, pool, upsample_bilinear, upsample_nearest

OPS: dict[str, Callable] = {}


def register(*names: str):
    def deco(fn):
        for n in names:
            if n in OPS:
                raise RuntimeError(f"MIL op {n} registered twice")
            OPS[n] = fn
        return fn

    return deco


class Args:
    """An op's resolved inputs and attributes."""

    def __init__(self, values: dict, attrs: dict):
        self.values, self.attrs = values, attrs

    def __contains__(self, key):
        return key in self.values

    def get(self, key, default=None):
        v = self.values.get(key)
        return default if v is None else v[0]

    def list(self, key) -> list:
        return list(self.values.get(key, []))

    def f(self, key, default=None):
        v = self.get(key, default)
        return None if v is None else np.asarray(v, np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v)

    def scalar(self, key, default=None):
        v = self.get(key, default)
        return None if v is None else np.asarray(v).item()

    def ints(self, key, default=None) -> list[int] | None:
        v = self.get(key, default)
        return None if v is None else [int(i) for i in np.asarray(v).ravel()]


def _f32(x):
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype == np.float16 else x


# --- constants ---------------------------------------------------------------


@register("const")
def _const(a: Args, attrs):
    return attrs["val"]


def _per_axis(v, axis, ndim):
    v = np.asarray(v, np.float32)
    if v.ndim == 1 and v.size > 1:
        shape = [1] * ndim
        shape[axis % ndim] = v.size
        return v.reshape(shape)
    return v


@register("constexpr_affine_dequantize")
def _affine_deq(a: Args, attrs):
    q = np.asarray(attrs["quantized_data"]).astype(np.float32)
    axis = int(attrs.get("axis", 0))
    return (q - _per_axis(attrs["zero_point"], axis, q.ndim)) * _per_axis(attrs["scale"], axis, q.ndim)


def _expand_blocks(v, shape):
    """Repeat a per-block tensor (each dim 1 or a divisor) to ``shape``."""
    v = np.asarray(v)
    for ax, (have, want) in enumerate(zip(v.shape, shape)):
        if have != want:
            v = np.repeat(v, want // have, axis=ax)
    return v


@register("constexpr_blockwise_shift_scale")
def _blockwise(a: Args, attrs):
    data = np.asarray(a.get("data", attrs.get("data"))).astype(np.float32)
    scale = _expand_blocks(np.asarray(a.get("scale", attrs.get("scale")), np.float32), data.shape)
    offset = a.get("offset", attrs.get("offset"))
    if offset is not None:
        data = data - _expand_blocks(np.asarray(offset, np.float32), data.shape)
    return data * scale


@register("constexpr_lut_to_dense")
def _lut(a: Args, attrs):
    from .program import unpack_bits

    lut = np.asarray(a.get("lut", attrs.get("lut")))
    indices = np.asarray(a.get("indices", attrs.get("indices")))
    shape = a.get("shape", attrs.get("shape"))
    if shape is not None:  # iOS16: 1-D lut, indices packed LSB first into uint8 bytes
        shape = [int(s) for s in np.asarray(shape).ravel()]
        nbits = int(round(math.log2(lut.shape[0])))
        idx = unpack_bits(indices.astype(np.uint8).tobytes(), nbits, int(np.prod(shape))).reshape(shape)
        return lut[idx.astype(np.int64)]
    # iOS18: indices already one per element; lut [*blocks, K, vector]; scalar palettes only
    if lut.shape[-1] != 1:
        raise NotImplementedError("vector palettization")
    table = lut[..., 0]  # [*blocks, K]
    k = table.shape[-1]
    full = _expand_blocks(table, tuple(indices.shape) + (k,)) if table.shape[:-1] != indices.shape else table
    return np.take_along_axis(full, indices.astype(np.int64)[..., None], axis=-1)[..., 0]


@register("constexpr_sparse_to_dense")
def _sparse(a: Args, attrs):
    from .program import unpack_bits

    shape = [int(s) for s in np.asarray(attrs["shape"]).ravel()]
    mask = unpack_bits(np.asarray(attrs["mask"]).astype(np.uint8).tobytes(), 1, int(np.prod(shape))).astype(bool)
    out = np.zeros(int(np.prod(shape)), np.asarray(attrs["nonzero_data"]).dtype)
    out[mask] = attrs["nonzero_data"]
    return out.reshape(shape)


# --- quantisation of activations ---------------------------------------------

_INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535)}


@register("quantize")
def _quantize(a: Args, attrs):
    x = _f32(a.get("input"))
    axis = a.scalar("axis", None)
    dtype = str(a.get("output_dtype"))
    lo, hi = _INT_RANGES[dtype]
    scale = _per_axis(a.get("scale"), axis or 0, x.ndim)
    zp = _per_axis(a.get("zero_point", 0), axis or 0, x.ndim)
    return np.clip(np.round(x / scale + zp), lo, hi).astype(np.dtype(dtype))


@register("dequantize")
def _dequantize(a: Args, attrs):
    q = np.asarray(a.get("input")).astype(np.float32)
    axis = a.scalar("axis", None)
    return (q - _per_axis(a.get("zero_point", 0), axis or 0, q.ndim)) * _per_axis(a.get("scale"), axis or 0, q.ndim)


# --- elementwise -------------------------------------------------------------

_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "real_div": np.divide,
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "floor_div": np.floor_divide,
    "mod": np.mod,
    "equal": np.equal,
    "not_equal": np.not_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}
for _name, _fn in _BINARY.items():
    register(_name)(lambda a, attrs, _fn=_fn: _fn(_f32(a.get("x")), _f32(a.get("y"))))

_erf = np.vectorize(math.erf, otypes=[np.float32])
_UNARY = {
    "abs": np.abs,
    "exp": np.exp,
    "exp2": np.exp2,
    "sqrt": np.sqrt,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "tanh": np.tanh,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
    "sign": np.sign,
    "square": np.square,
    "erf": _erf,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.logaddexp(0, x),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "identity": lambda x: x,
    "logical_not": np.logical_not,
    "atan": np.arctan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "sinh": np.sinh,
    "cosh": np.cosh,
}
for _name, _fn in _UNARY.items():
    register(_name)(lambda a, attrs, _fn=_fn: _fn(_f32(a.get("x"))))


@register("log")
def _log(a, attrs):
    return np.log(_f32(a.get("x")) + a.scalar("epsilon", 0.0))


@register("inverse")
def _inverse(a, attrs):
    return 1.0 / (_f32(a.get("x")) + a.scalar("epsilon", 1e-4))


@register("rsqrt")
def _rsqrt(a, attrs):
    return 1.0 / np.sqrt(_f32(a.get("x")) + a.scalar("epsilon", 1e-12))


@register("clip")
def _clip(a, attrs):
    return np.clip(_f32(a.get("x")), a.scalar("alpha"), a.scalar("beta"))


@register("leaky_relu")
def _leaky(a, attrs):
    x = _f32(a.get("x"))
    return np.where(x >= 0, x, x * a.scalar("alpha", 0.01))


@register("prelu")
def _prelu(a, attrs):
    x = _f32(a.get("x"))
    alpha = np.asarray(a.get("alpha"), np.float32).reshape([-1] + [1] * (x.ndim - 2))  # per channel, axis -3 (C of NCHW)
    return np.where(x >= 0, x, x * alpha)


@register("elu")
def _elu(a, attrs):
    x = _f32(a.get("x"))
    return np.where(x > 0, x, a.scalar("alpha", 1.0) * (np.exp(x) - 1))


@register("gelu")
def _gelu(a, attrs):
    x = _f32(a.get("x"))
    if str(a.get("mode", "EXACT")) == "EXACT":
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if str(a.get("mode")) == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-1.702 * x))
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


@register("sigmoid_hard")
def _hsig(a, attrs):
    return np.clip(a.scalar("alpha", 0.2) * _f32(a.get("x")) + a.scalar("beta", 0.5), 0, 1)


@register("thresholded_relu")
def _thresholded_relu(a, attrs):
    x = _f32(a.get("x"))
    return np.where(x >= a.scalar("alpha", 1.0), x, 0).astype(np.float32)


@register("softmax")
def _softmax(a, attrs):
    x = _f32(a.get("x"))
    axis = a.scalar("axis", -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_CASTS = {
    "fp16": np.float16,
    "fp32": np.float32,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
    "fp64": np.float64,
    "int64": np.int64,
}


@register("cast")
def _cast(a, attrs):
    return np.asarray(a.get("x")).astype(_CASTS[str(a.get("dtype"))])


@register("select")
def _select(a, attrs):
    return np.where(np.asarray(a.get("cond")).astype(bool), _f32(a.get("a")), _f32(a.get("b")))


# --- reductions --------------------------------------------------------------

_REDUCE = {
    "reduce_sum": np.sum,
    "reduce_mean": np.mean,
    "reduce_max": np.max,
    "reduce_min": np.min,
    "reduce_prod": np.prod,
    "reduce_sum_square": lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims),
    "reduce_l2_norm": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
    "reduce_l1_norm": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "reduce_log_sum_exp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
}


def _reducer(fn):
    def run(a, attrs):
        x = _f32(a.get("x"))
        axes = a.ints("axes")
        axis = None if axes is None else tuple(int(i) % x.ndim for i in axes)
        return np.asarray(fn(x, axis=axis, keepdims=bool(a.scalar("keep_dims", False))))

    return run


for _name, _fn in _REDUCE.items():
    register(_name)(_reducer(_fn))


def _argfn(fn):
    def run(a, attrs):
        x = _f32(a.get("x"))
        axis = a.scalar("axis", -1)
        out = fn(x, axis=axis)
        return np.expand_dims(out, axis) if a.scalar("keep_dims", False) else out

    return run


register("reduce_argmax")(_argfn(np.argmax))
register("reduce_argmin")(_argfn(np.argmin))


# --- shapes ------------------------------------------------------------------


@register("reshape")
def _reshape(a, attrs):
    x = np.asarray(a.get("x"))
    shape = [int(x.shape[i]) if s == 0 else int(s) for i, s in enumerate(a.ints("shape"))]
    return x.reshape(shape)


@register("transpose")
def _transpose(a, attrs):
    return np.transpose(a.get("x"), a.ints("perm"))


@register("squeeze")
def _squeeze(a, attrs):
    x = np.asarray(a.get("x"))
    axes = a.ints("axes")
    return np.squeeze(x, axis=None if axes is None else tuple(i % x.ndim for i in axes))


@register("expand_dims")
def _expand(a, attrs):
    x = np.asarray(a.get("x"))
    for ax in sorted(i % (x.ndim + len(a.ints("axes"))) for i in a.ints("axes")):
        x = np.expand_dims(x, ax)
    return x


@register("concat")
def _concat(a, attrs):
    vals = [_f32(v) if np.asarray(v).dtype == np.float16 else np.asarray(v) for v in a.list("values")]
    axis = a.scalar("axis")
    if a.scalar("interleave", False):
        ax = axis % vals[0].ndim
        st = np.stack(vals, axis=ax + 1)
        shape = list(vals[0].shape)
        shape[ax] *= len(vals)
        return st.reshape(shape)
    return np.concatenate(vals, axis=axis)


@register("stack")
def _stack(a, attrs):
    return np.stack([np.asarray(v) for v in a.list("values")], axis=a.scalar("axis"))


@register("split")
def _split(a, attrs):
    x = np.asarray(a.get("x"))
    axis = a.scalar("axis") % x.ndim
    sizes = a.ints("split_sizes")
    if sizes is None:
        n = a.scalar("num_splits")
        sizes = [int(math.ceil(x.shape[axis] / n))] * n
        sizes[-1] = x.shape[axis] - sum(sizes[:-1])
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@register("slice_by_index")
def _slice_index(a, attrs):
    x = np.asarray(a.get("x"))
    n = x.ndim
    begin, end = a.ints("begin"), a.ints("end")
    stride = a.ints("stride") or [1] * n
    bm = [bool(v) for v in np.asarray(a.get("begin_mask", [False] * n)).ravel()]
    em = [bool(v) for v in np.asarray(a.get("end_mask", [False] * n)).ravel()]
    sq = [bool(v) for v in np.asarray(a.get("squeeze_mask", [False] * n)).ravel()]
    idx = []
    for i in range(n):
        if sq[i]:
            idx.append(begin[i])
            continue
        idx.append(slice(None if bm[i] else begin[i], None if em[i] else end[i], stride[i]))
    return x[tuple(idx)]


@register("slice_by_size")
def _slice_size(a, attrs):
    x = np.asarray(a.get("x"))
    begin, size = a.ints("begin"), a.ints("size")
    return x[tuple(slice(b, x.shape[i] if s == -1 else b + s) for i, (b, s) in enumerate(zip(begin, size)))]


@register("gather")
def _gather(a, attrs):
    return np.take(a.get("x"), np.asarray(a.get("indices")).astype(np.int64), axis=a.scalar("axis", 0))


@register("tile")
def _tile(a, attrs):
    return np.tile(a.get("x"), a.ints("reps"))


@register("shape")
def _shape(a, attrs):
    return np.array(np.asarray(a.get("x")).shape, np.int32)


@register("fill")
def _fill(a, attrs):
    return np.full(a.ints("shape"), a.scalar("value", 0.0), np.float32)


@register("pad")
def _pad(a, attrs):
    x = _f32(a.get("x"))
    p = a.ints("pad")
    k = len(p) // 2
    width = [(0, 0)] * (x.ndim - k) + [(p[2 * i], p[2 * i + 1]) for i in range(k)]
    mode = str(a.get("mode", "constant"))
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=a.scalar("constant_val", 0.0))
    return np.pad(x, width, mode={"reflect": "reflect", "replicate": "edge"}[mode])


# --- neural network ----------------------------------------------------------


def _conv_args(a) -> tuple:
    """conv's and conv_transpose's shared inputs: x, weight, bias, strides, pad type, pad, dilations, groups."""
    bias = a.get("bias")
    return (
        _f32(a.get("x")),
        _f32(a.get("weight")),
        None if bias is None else _f32(bias),
        a.ints("strides"),
        str(a.get("pad_type", "valid")),
        a.ints("pad"),
        a.ints("dilations"),
        a.scalar("groups", 1),
    )


@register("conv")
def _conv(a, attrs):
    return conv(*_conv_args(a))


@register("conv_transpose")
def _conv_t(a, attrs):
    return conv_transpose(*_conv_args(a), a.ints("output_shape"))


@register("crop")
def _crop(a, attrs):
    x = np.asarray(a.get("x"))
    (t, b), (l, r) = a.ints("crop_height"), a.ints("crop_width")
    return x[..., t : x.shape[-2] - b, l : x.shape[-1] - r]


@register("upsample_bilinear")
def _upsample_bilinear(a, attrs):
    hpc = a.get("half_pixel_centers")
    return upsample_bilinear(
        _f32(a.get("x")),
        a.scalar("scale_factor_height", 1),
        a.scalar("scale_factor_width", 1),
        bool(a.scalar("align_corners", False)),
        None if hpc is None else bool(np.asarray(hpc).item()),
    )


@register("linear")
def _linear(a, attrs):
    y = _f32(a.get("x")) @ _f32(a.get("weight")).T
    return y if a.get("bias") is None else y + _f32(a.get("bias"))


@register("matmul")
def _matmul(a, attrs):
    x, y = _f32(a.get("x")), _f32(a.get("y"))
    if a.scalar("transpose_x", False):
        x = np.swapaxes(x, -1, -2)
    if a.scalar("transpose_y", False):
        y = np.swapaxes(y, -1, -2)
    return x @ y


def _pooler(kind):
    def run(a, attrs):
        return pool(
            _f32(a.get("x")),
            kind,
            a.ints("kernel_sizes"),
            a.ints("strides"),
            str(a.get("pad_type", "valid")),
            a.ints("pad"),
            bool(a.scalar("ceil_mode", False)),
            bool(a.scalar("exclude_padding_from_average", False)),
        )

    return run


register("max_pool")(_pooler("max"))
register("avg_pool")(_pooler("avg"))


@register("upsample_nearest_neighbor")
def _upsample(a, attrs):
    return upsample_nearest(_f32(a.get("x")), a.scalar("scale_factor_height", 1), a.scalar("scale_factor_width", 1))


@register("batch_norm")
def _bn(a, attrs):
    x = _f32(a.get("x"))
    shape = [1, -1] + [1] * (x.ndim - 2)
    mean, var = _f32(a.get("mean")).reshape(shape), _f32(a.get("variance")).reshape(shape)
    y = (x - mean) / np.sqrt(var + a.scalar("epsilon", 1e-5))
    if a.get("gamma") is not None:
        y = y * _f32(a.get("gamma")).reshape(shape)
    if a.get("beta") is not None:
        y = y + _f32(a.get("beta")).reshape(shape)
    return y


@register("layer_norm")
def _ln(a, attrs):
    x = _f32(a.get("x"))
    axes = tuple(a.ints("axes") or [-1])
    m = x.mean(axis=axes, keepdims=True)
    v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
    y = (x - m) / np.sqrt(v + a.scalar("epsilon", 1e-5))
    if a.get("gamma") is not None:
        y = y * _f32(a.get("gamma"))
    if a.get("beta") is not None:
        y = y + _f32(a.get("beta"))
    return y
