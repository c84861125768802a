"""ONNX graph rewrites that make the TFLite path quantise and delegate well, run before onnx2tf.

Each pass is a function ``(onnx.ModelProto) -> list[str]`` that edits the
model in place and returns one note per rewrite (they go into the manifest).
``PASSES`` is the order they run in. Every pass is exact in float: the
rewritten graph computes the same numbers as the original.
"""

from __future__ import annotations

import math
from typing import Callable


def _attr(node, name: str, default):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _static_shapes(model) -> dict[str, list[int]]:
    """Tensor name -> static shape, from ONNX shape inference (dims that are not known are left out)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        if dims and None not in dims:
            out[vi.name] = dims
    return out


def maxpool_edge_padding(model) -> list[str]:
    """Max-pooling with padding or ``ceil_mode`` -> edge-replicated padding (slices + concat) and a VALID pool.

    onnx2tf pads such a pool with the float minimum (-3.4e38). Under int8 that
    constant lands in the calibrated range of the pad and, through the shared
    scale of PAD and its input, of the layer before it: a scale near 1e36 that
    zeroes every activation (facenet-pytorch's ONet said face probability 0.001
    where PyTorch says 0.9998). XNNPACK does not take PADV2 either.

    Replicating the edge row/column is exact for max-pooling: every window
    that reaches into the padding also covers the edge element it repeats
    (PyTorch and ONNX allow at most half a kernel of padding, and a ceil-mode
    window starts inside the input). Slices and a concatenation quantise with
    the input's scale and XNNPACK takes both in int8.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    shapes = _static_shapes(model)
    graph = model.graph
    notes: list[str] = []
    new_nodes = []
    counter = 0

    def const(name: str, values) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    for node in graph.node:
        if node.op_type != "MaxPool" or len(node.output) != 1:
            new_nodes.append(node)
            continue
        kernel = list(_attr(node, "kernel_shape", []))
        n = len(kernel)
        pads = list(_attr(node, "pads", [0] * 2 * n))
        ceil = bool(_attr(node, "ceil_mode", 0))
        auto_pad = _attr(node, "auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        strides = list(_attr(node, "strides", [1] * n))
        dil = list(_attr(node, "dilations", [1] * n))
        shape = shapes.get(node.input[0])
        if auto_pad != "NOTSET" or shape is None or len(shape) != n + 2 or (not ceil and not any(pads)):
            new_nodes.append(node)
            continue
        begin, end = pads[:n], pads[n:]
        extra = []
        for i in range(n):
            L, k, s, d = shape[2 + i], kernel[i], strides[i], dil[i]
            span = L + begin[i] + end[i] - d * (k - 1) - 1
            out = (math.ceil(span / s) if ceil else span // s) + 1
            if ceil and (out - 1) * s >= L + begin[i]:  # PyTorch/ONNX: the last window must start inside
                out -= 1
            need = (out - 1) * s + d * (k - 1) + 1
            extra.append(need - (L + begin[i] + end[i]))
        end = [e + max(x, 0) for e, x in zip(end, extra)]
        if not any(begin) and not any(end):
            # ceil_mode changed nothing here: the same pool without it
            node.ClearField("attribute")
            node.attribute.extend(helper.make_attribute(k, v) for k, v in
                                  (("kernel_shape", kernel), ("strides", strides), ("dilations", dil)))
            new_nodes.append(node)
            continue
        x = node.input[0]
        for i in range(n):
            axis, L = 2 + i, shape[2 + i]
            if not begin[i] and not end[i]:
                continue
            counter += 1
            tag = f"devicekit_edgepad{counter}"
            ax = const(f"{tag}_axes", [axis])
            parts = []
            if begin[i]:
                first = f"{tag}_first"
                new_nodes.append(helper.make_node("Slice", [x, const(f"{tag}_s0", [0]), const(f"{tag}_e0", [1]), ax], [first]))
                parts += [first] * begin[i]
            parts.append(x)
            if end[i]:
                last = f"{tag}_last"
                new_nodes.append(helper.make_node("Slice", [x, const(f"{tag}_s1", [L - 1]), const(f"{tag}_e1", [L]), ax], [last]))
                parts += [last] * end[i]
            padded = f"{tag}_out"
            new_nodes.append(helper.make_node("Concat", parts, [padded], axis=axis))
            x = padded
        new_nodes.append(helper.make_node("MaxPool", [x], list(node.output), name=node.name,
                                          kernel_shape=kernel, strides=strides, dilations=dil))
        notes.append(f"{node.name or 'MaxPool'}: {'ceil_mode ' if ceil else ''}padding {begin}+{end} as edge "
                     "replication (exact for max-pooling; int8- and XNNPACK-friendly)")
    if notes:
        graph.ClearField("node")
        graph.node.extend(new_nodes)
    return notes


def _slope_values(model, name: str, depth: int = 0):
    """The constant value of tensor ``name``: an initializer, a Constant, or either behind Identity nodes
    (the exporter shares equal weights, such as untrained PReLU slopes, through Identity)."""
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.output and node.output[0] == name:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value":
                        return numpy_helper.to_array(a.t)
            if node.op_type == "Identity" and depth < 16:
                return _slope_values(model, node.input[0], depth + 1)
    return None


def _full_rank(c, shape):
    """A constant broadcast against a tensor of ``shape``, with leading 1s up to its rank ([C,1,1] -> [1,C,1,1]):
    onnx2tf moves a constant of the tensor's rank to NHWC with the graph."""
    if shape is None or c.ndim == 0 or c.ndim >= len(shape):
        return c
    return c.reshape((1,) * (len(shape) - c.ndim) + c.shape)


def prelu_as_mul_add(model) -> list[str]:
    """PReLU(x) = a*x + relu((1-a)*x) (every slope a <= 1), else a*x + sign(1-a)*relu(|1-a|*x).

    XNNPACK has no int8 PRELU (measured: benchmarks/xnnpack_ops.md), so an
    int8 PReLU splits the graph into delegate partitions around builtin
    kernels (MTCNN ONet int8 ran 3.5x slower than fp32, mesh3d 9x). The
    multiplies (the ReLU fuses into the one before it) and the add are int8
    XNNPACK ops. The two-op form x + relu((a-1)*x) is one pass shorter but
    subtracts two int8 numbers of the input's size to get a small one for
    every negative input: measured on ONet, its face probability moved by
    0.12 on a held-out face where this form moves it by 0.05. The slope is
    a constant of the input's rank (see ``_full_rank``), so the rewrite is
    exact at any rank. int8 only: XNNPACK takes a float PRELU as one op.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    notes, new_nodes, count = [], [], 0
    shapes = _static_shapes(model)

    def mul(x, c, out):
        model.graph.initializer.append(numpy_helper.from_array(_full_rank(np.asarray(c, np.float32), shapes.get(x)), f"{out}_k"))
        new_nodes.append(helper.make_node("Mul", [x, f"{out}_k"], [out]))

    for node in model.graph.node:
        slope = _slope_values(model, node.input[1]) if node.op_type == "PRelu" else None
        if slope is None:
            new_nodes.append(node)
            continue
        count += 1
        tag = f"devicekit_prelu{count}"
        x, y = node.input[0], node.output[0]
        slope = slope.astype(np.float32)
        rest = 1.0 - slope
        mul(x, slope, f"{tag}_ax")
        if np.all(rest >= 0):  # a x + relu((1-a) x): no term cancels another (x + relu((a-1) x) lost int8 precision)
            mul(x, rest, f"{tag}_b")
            new_nodes.append(helper.make_node("Relu", [f"{tag}_b"], [f"{tag}_r"]))
            new_nodes.append(helper.make_node("Add", [f"{tag}_ax", f"{tag}_r"], [y], name=node.name))
            continue
        mul(x, np.abs(rest), f"{tag}_b")  # some slope > 1: a x + sign(1-a) relu(|1-a| x)
        new_nodes.append(helper.make_node("Relu", [f"{tag}_b"], [f"{tag}_r"]))
        mul(f"{tag}_r", np.where(rest >= 0, 1.0, -1.0), f"{tag}_rs")
        new_nodes.append(helper.make_node("Add", [f"{tag}_ax", f"{tag}_rs"], [y], name=node.name))
    if count:
        model.graph.ClearField("node")
        model.graph.node.extend(new_nodes)
        notes.append(f"{count} PReLU as multiply + ReLU + add (XNNPACK has no int8 PRELU; exact in float)")
    return notes


def hardsigmoid_as_add_mul(model) -> list[str]:
    """HardSigmoid(x) = relu6(x + 3) / 6 (alpha 1/6, beta 1/2, as PyTorch's) as an add with ReLU6 and a multiply.

    TFLite would make it RELU_0_TO_1, which XNNPACK takes in neither float nor
    int8 (measured): every squeeze-excite block of a MobileNetV3 left the
    delegate twice. The add with its fused ReLU6 and the multiply by 1/6 stay
    in the delegate. HardSwish is not rewritten: XNNPACK runs it in float
    inside an int8 graph faster than any int8 form (tflite_int8.FLOAT_FASTER).
    """
    import numpy as np
    from onnx import helper, numpy_helper

    new_nodes, count = [], 0

    def scalar(name, v):
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(v, np.float32), name))
        return name

    for node in model.graph.node:
        if node.op_type != "HardSigmoid" or abs(_attr(node, "alpha", 0.2) - 1 / 6) > 1e-6 or abs(_attr(node, "beta", 0.5) - 0.5) > 1e-6:
            new_nodes.append(node)
            continue
        count += 1
        tag = f"devicekit_hsig{count}"
        new_nodes.append(helper.make_node("Add", [node.input[0], scalar(f"{tag}_3", 3.0)], [f"{tag}_x3"]))
        new_nodes.append(helper.make_node("Clip", [f"{tag}_x3", scalar(f"{tag}_lo", 0.0), scalar(f"{tag}_hi", 6.0)], [f"{tag}_r6"]))
        new_nodes.append(helper.make_node("Mul", [f"{tag}_r6", scalar(f"{tag}_s", 1 / 6)], [node.output[0]], name=node.name))
    if count:
        model.graph.ClearField("node")
        model.graph.node.extend(new_nodes)
        return [f"{count} HardSigmoid as add + ReLU6 + multiply (XNNPACK has no RELU_0_TO_1; exact in float)"]
    return []


def _opset_20(model) -> None:
    """Move the default domain to opset 20 (where Gelu is an ONNX op) without changing what any node computes.

    From 18 to 20 the only change in meaning is GridSample's mode names
    (``bilinear`` -> ``linear``, ``bicubic`` -> ``cubic``); the rest only
    added types or attributes whose defaults keep the old behaviour.
    """
    import onnx

    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version < 20:
            o.version = 20
    for n in model.graph.node:
        if n.op_type == "GridSample":
            for a in n.attribute:
                if a.name == "mode" and a.s in (b"bilinear", b"bicubic"):
                    a.s = {b"bilinear": b"linear", b"bicubic": b"cubic"}[a.s]
    onnx.checker.check_model(model)


def gelu_as_one_op(model) -> list[str]:
    """Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)), as one ONNX ``Gelu`` node (opset 20).

    TFLite has no ERF op: an erf that onnx2tf does not see as part of a GELU
    stops the conversion ("'tf.Erf' op is neither a custom op nor a flex
    op"), and onnx2tf's own GELU matcher never fires on what PyTorch exports
    (it compares a float32 constant with a float64 literal). One Gelu node
    becomes one TFLite GELU. It has to be the opset-20 op: with onnxruntime's
    com.microsoft Gelu, shape inference loses the shapes after it and
    onnx2tf dropped a TRANSPOSE of square [1, 64, 64] tokens (measured).
    """
    from onnx import helper, numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
    producer = {o: n for n in model.graph.node for o in n.output}
    users: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)

    def scalar(name):
        v = consts.get(name)
        return float(v.reshape(-1)[0]) if v is not None and v.size == 1 else None

    def other(n, name):
        return n.input[1] if n.input[0] == name else n.input[0]

    def only_user(name, op):
        u = users.get(name, [])
        return u[0] if len(u) == 1 and u[0].op_type == op else None

    replace, drop = {}, set()
    for erf in [n for n in model.graph.node if n.op_type == "Erf"]:
        pre = producer.get(erf.input[0])
        c = scalar(pre.input[1]) if pre is not None and pre.op_type in ("Div", "Mul") else None
        if c is None or abs((c if pre.op_type == "Div" else 1 / c) - math.sqrt(2)) > 1e-4 or len(users.get(pre.output[0], [])) != 1:
            continue
        x = pre.input[0]
        plus = only_user(erf.output[0], "Add")
        m1 = only_user(plus.output[0], "Mul") if plus is not None and scalar(other(plus, erf.output[0])) == 1.0 else None
        m2 = only_user(m1.output[0], "Mul") if m1 is not None else None
        if m2 is None:
            continue
        factors = [other(m1, plus.output[0]), other(m2, m1.output[0])]
        if sorted(f == x for f in factors) != [False, True] or scalar(next(f for f in factors if f != x)) != 0.5:
            continue
        replace[id(pre)] = helper.make_node("Gelu", [x], list(m2.output), name=f"devicekit_gelu{len(replace) + 1}")
        drop.update(id(n) for n in (pre, erf, plus, m1, m2))
    if not replace:
        return []
    nodes = [replace.get(id(n), n) for n in model.graph.node if id(n) in replace or id(n) not in drop]
    model.graph.ClearField("node")
    model.graph.node.extend(nodes)
    _opset_20(model)
    return [f"{len(replace)} exact GELU as one Gelu op (TFLite has no ERF)"]


GROUPED_MAX_OUT_PER_GROUP = 2  # XNNPACK's grouped convolution is a GEMM per group: N = outputs per group
GROUPED_MAX_EXTRA = 16  # the 1x1 sum may cost at most this many times the grouped convolution's MACs


def grouped_conv_as_depthwise_sum(model) -> list[str]:
    """A grouped convolution with one or two outputs per group -> a depthwise convolution and a 1x1 sum.

    XNNPACK runs a grouped convolution as one GEMM per group whose width is
    the group's output count: with one output per group it is a matrix-vector
    loop. Measured on heatmap2s's second stage (3x3, 68 groups of 4 inputs,
    one output each, 2.5 M MACs at 32x32): 1.01 ms in fp32 and 2.52 ms in
    int8 on one thread, a third of the fp32 model and 55 % of the int8 one;
    rewritten, 0.48 and 0.17 ms (benchmarks/cut_latency.md).
    The same numbers come from a depthwise convolution (every input channel
    with its own kernel per output, ``multiplier`` outputs each) followed by a
    1x1 convolution whose weights are 0 and 1 (the sum over each group's
    inputs, with the bias); both run on XNNPACK's fast kernels, and 0 and 1
    quantise exactly. Exact in float up to the order of the sum. Only where
    the 1x1 costs at most GROUPED_MAX_EXTRA times the original's MACs.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    new_nodes, count = [], 0
    for node in model.graph.node:
        w = inits.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        groups = _attr(node, "group", 1)
        if w is None or groups <= 1 or len(w.dims) != 4 or w.dims[1] <= 1 or w.dims[0] % groups:
            new_nodes.append(node)
            continue
        weights = numpy_helper.to_array(w).astype(np.float32)
        cout, per_in, kh, kw = weights.shape
        mult = cout // groups
        if mult > GROUPED_MAX_OUT_PER_GROUP or cout > GROUPED_MAX_EXTRA * kh * kw:
            new_nodes.append(node)
            continue
        count += 1
        tag = f"devicekit_gconv{count}"
        cin = groups * per_in
        dw = np.zeros((cin * mult, 1, kh, kw), np.float32)
        total = np.zeros((cout, cin * mult, 1, 1), np.float32)
        for g in range(groups):
            for m in range(mult):
                for c in range(per_in):
                    ch = (g * per_in + c) * mult + m  # the depthwise output of input channel g*per_in+c, multiplier m
                    dw[ch, 0] = weights[g * mult + m, c]
                    total[g * mult + m, ch, 0, 0] = 1.0
        model.graph.initializer.append(numpy_helper.from_array(dw, f"{tag}_dw_w"))
        model.graph.initializer.append(numpy_helper.from_array(total, f"{tag}_sum_w"))
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name != "group"}
        new_nodes.append(helper.make_node("Conv", [node.input[0], f"{tag}_dw_w"], [f"{tag}_dw"], group=cin, **attrs))
        new_nodes.append(helper.make_node("Conv", [f"{tag}_dw", f"{tag}_sum_w", *node.input[2:3]], list(node.output),
                                          name=node.name, kernel_shape=[1, 1]))
    if count:
        model.graph.ClearField("node")
        model.graph.node.extend(new_nodes)
        return [f"{count} grouped convolution(s) as depthwise + 1x1 sum (XNNPACK runs few outputs per group slowly; exact in float)"]
    return []


# run on every TFLite target's graph; the second list only on the int8 graph
PASSES = [maxpool_edge_padding, hardsigmoid_as_add_mul, gelu_as_one_op, grouped_conv_as_depthwise_sum]
INT8_PASSES = [prelu_as_mul_add]


def _drop_unused_initializers(model) -> None:
    import onnx

    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in model.graph.node for a in n.attribute):
        return  # subgraphs may read outer initializers
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    keep = [i for i in model.graph.initializer if i.name in used]
    if len(keep) != len(model.graph.initializer):
        model.graph.ClearField("initializer")
        model.graph.initializer.extend(keep)


def run_passes(src, dst, passes: list[Callable]) -> list[str]:
    """Run ``passes`` on the ONNX file ``src`` and write the result to ``dst``; the notes of what changed."""
    import onnx

    model = onnx.load(str(src))
    notes: list[str] = []
    for p in passes:
        notes += p(model)
    if notes:
        _drop_unused_initializers(model)
        onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return notes
