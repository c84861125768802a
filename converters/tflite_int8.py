"""tflite-int8: calibrate once, then keep in float only what measurement says must be.

Steps: the int8 graph variant (tflite.saved_model(int8=True): ONNX rewrites
for int8 and XNNPACK) -> calibrate on the calibration images -> quantise with
the MLIR quantiser, a denylist of nodes left in float -> float outputs.

The denylist is searched (policy ``search``, the default):

1. Everything int8. Judged on the calibration images, in LiteRT with the
   XNNPACK delegate a phone applies, against the reference model, by the
   gate's int8 limits (converters.judge). Passing: done, no float op.
2. Otherwise each candidate region alone in float, measured: the coordinate
   math computed from a softmax, the ops after the last learned layer, each
   output layer, then (when those are not enough) each learned layer.
3. Regions added in order of how much each helps until the gate passes,
   skipping any that would put the integer share of MACs under the minimum;
   then every chosen region dropped again if the gate still passes without
   it. The result is the smallest set found, each region with the error it
   saves and its cost in bytes and MACs.

Policies ``keep-float-tail`` (the fixed rule of earlier releases) and
``all-int8`` (nothing float) skip the search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from devicekit.errors import ConversionError, first_line

from .float_search import Budget, Region, select

# Ops that hold learned weights: the float tail starts after the last of them.
WEIGHTED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL"}
# Ops whose outputs are probabilities: everything computed from them is coordinate math.
FRAGILE_OPS = {"EXP", "SOFTMAX", "LOG_SOFTMAX"}
# Ops that only move or rescale data (coordinate decoding): a weighted op feeding the
# output through these alone is an output layer.
SHAPE_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CONCATENATION", "DEQUANTIZE", "QUANTIZE", "MUL", "ADD", "SUB", "DIV"}
# Ops XNNPACK has no int8 kernel for, which it runs in float inside an int8 graph faster than any int8 form
# (benchmarks/xnnpack_ops.md; MobileNetV3-small int8 0.87x fp32 with them float, 0.96x decomposed into int8
# multiplies, 2.1x on LiteRT's builtin int8 kernel). They stay float under the search and keep-float-tail
# policies; they hold no weights and no MACs.
FLOAT_FASTER = {
    "HARD_SWISH": "XNNPACK has no int8 HARD_SWISH; in float it stays inside the delegate and is faster than an int8 form",
    "SOFTMAX": "XNNPACK has no int8 SOFTMAX (it would leave the delegate); float inside it, and probabilities keep their precision",
    "GELU": "XNNPACK has no int8 GELU (it would leave the delegate); float inside it",
    "RSQRT": "XNNPACK has no int8 RSQRT (a LayerNorm's 1/std; it would leave the delegate); float inside it",
    "SQUARED_DIFFERENCE": "XNNPACK has no int8 SQUARED_DIFFERENCE (a LayerNorm's variance; it would leave the delegate); float inside it",
}
SEARCH_IMAGES = 256  # calibration images each trial is judged on (all of them by default: the gate judges them all)
# quantise-and-measure rounds before the search settles for the best it found: at least MIN_TRIALS, then while
# SEARCH_SECONDS last, never more than MAX_TRIALS
MIN_TRIALS, MAX_TRIALS, SEARCH_SECONDS = 40, 300, 180


def graph_ops(tflite_bytes: bytes) -> tuple[list[dict], dict[int, str], list[int]]:
    """(ops with op_name/inputs/outputs, tensor index -> name, output tensor indices) of a .tflite."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite_bytes)
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    return it._get_ops_details(), names, [o["index"] for o in it.get_output_details()]


def learned_layers(tflite_bytes: bytes, ops: list[dict]) -> set[int]:
    """Indices of ops with a learned weight: a constant weight tensor whose values are not all equal.

    A convolution with a one-value kernel is a (scaled) box sum, as the
    soft-argmax and RoI ramps of heatmap models are written; a matmul of two
    activations (attention) has no weight at all.
    """
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite_bytes)
    it.allocate_tensors()
    out = set()
    for i, op in enumerate(ops):
        if op["op_name"] not in WEIGHTED_OPS or len(op["inputs"]) < 2 or int(op["inputs"][1]) < 0:
            continue
        try:
            w = it.get_tensor(int(op["inputs"][1]))  # a constant's value; an activation reads as zeros
        except ValueError:
            continue
        if w.size and np.any(w != w.reshape(-1)[0]):
            out.add(i)
    return out


def float_tail(tflite_bytes: bytes) -> list[dict]:
    """The coordinate-math tail of a float graph, each op with the reason it is tail.

    Everything computed from a softmax (soft-argmax, RoI sampling and its
    fixed ramp convolutions, coordinate decoding), everything after the last
    learned layer on every path, and the learned layer that produces a model
    output directly (a regressor's or classifier's last layer).
    """
    ops, names, outputs = graph_ops(tflite_bytes)
    learned = learned_layers(tflite_bytes, ops)
    consumers: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(i)
    reaches_weighted: dict[int, bool] = {}

    def downstream_weighted(i: int) -> bool:
        if i in reaches_weighted:
            return reaches_weighted[i]
        reaches_weighted[i] = False
        hit = any(ops[j]["op_name"] in WEIGHTED_OPS or downstream_weighted(j) for t in ops[i]["outputs"] for j in consumers.get(int(t), []))
        reaches_weighted[i] = hit
        return hit

    def feeds_output_directly(i: int) -> bool:
        for t in ops[i]["outputs"]:
            if int(t) in outputs:
                return True
            for j in consumers.get(int(t), []):
                if ops[j]["op_name"] in SHAPE_OPS and feeds_output_directly(j):
                    return True
        return False

    producers = {int(t): i for i, op in enumerate(ops) for t in op["outputs"]}
    from_softmax: dict[int, bool] = {}

    def computed_from_softmax(i: int) -> bool:
        """A softmax/exp, or computed from one without a learned layer in between (an attention's softmax feeds
        its value matmul, then a learned projection: what follows that is the network, not coordinate math)."""
        if i not in from_softmax:
            from_softmax[i] = False
            from_softmax[i] = ops[i]["op_name"] in FRAGILE_OPS or (
                i not in learned and any(int(t) in producers and computed_from_softmax(producers[int(t)]) for t in ops[i]["inputs"])
            )
        return from_softmax[i]

    tail = []
    for i, op in enumerate(ops):
        name = op["op_name"]
        tensor = names[int(op["outputs"][0])]
        if computed_from_softmax(i):
            tail.append(
                {"op": name, "index": i, "tensor": tensor, "group": "softmax", "why": "computed from a softmax (soft-argmax / coordinate math)"}
            )
        elif name in WEIGHTED_OPS:
            if feeds_output_directly(i):
                tail.append({"op": name, "index": i, "tensor": tensor, "group": f"output layer {i}", "why": "output layer"})
        elif not downstream_weighted(i):
            tail.append(
                {
                    "op": name,
                    "index": i,
                    "tensor": tensor,
                    "group": "after the last learned layer",
                    "why": "after the last learned layer (coordinate math)",
                }
            )
    return tail


# Ops that int8 computes exactly (they move or select values): never a float candidate on their own.
EXACT_OPS = {
    "RESHAPE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "TRANSPOSE",
    "CONCATENATION",
    "STRIDED_SLICE",
    "SLICE",
    "PAD",
    "MAX_POOL_2D",
    "GATHER",
    "SPLIT",
    "SPLIT_V",
    "PACK",
    "UNPACK",
    "QUANTIZE",
    "DEQUANTIZE",
}


def candidate_regions(float_bytes: bytes) -> tuple[list[Region], list[Region]]:
    """(tail regions, learned-layer and activation regions) of the float graph of the int8 variant.

    An activation region is a run of computing ops without weights (a PReLU
    written as multiplies and an add, a residual add, a swish) between two
    learned layers, in graph order: each requantises its output to 8 bits.
    """
    ops, names, _ = graph_ops(float_bytes)
    groups: dict[str, list[dict]] = {}
    for t in float_tail(float_bytes):
        groups.setdefault(t["group"], []).append(t)
    tail = []
    for g, items in groups.items():
        label = g if not g.startswith("output layer") else f"output layer ({items[0]['op']} #{items[0]['index']})"
        region = Region(label, items[0]["why"], tuple(t["index"] for t in items), tuple(sorted({t["tensor"] for t in items})))
        if g.startswith("output layer") and items[0]["op"] == "FULLY_CONNECTED":
            # first the cheaper form: float activations and output, int8 weights, bias corrected on the calibration images
            tail.append(
                Region(
                    label + " with int8 weights",
                    "output layer: float output (no 1/256 step), int8 weights",
                    region.ops,
                    region.nodes,
                    int8_weights=True,
                )
            )
        tail.append(region)
    in_tail = {i for r in tail for i in r.ops}
    body: list[Region] = []
    run: list[int] = []

    def close_run():
        if run:
            kinds = "+".join(dict.fromkeys(ops[i]["op_name"] for i in run))
            body.append(
                Region(
                    f"{kinds} after #{run[0] - 1}",
                    "activation requantised to 8 bits",
                    tuple(run),
                    tuple(names[int(ops[i]["outputs"][0])] for i in run),
                )
            )
            run.clear()

    for i, op in enumerate(ops):
        if i in in_tail:
            close_run()
        elif op["op_name"] in WEIGHTED_OPS:
            close_run()
            body.append(Region(f"{op['op_name']} #{i}", "learned layer sensitive to int8", (i,), (names[int(op["outputs"][0])],)))
        elif op["op_name"] not in EXACT_OPS:
            run.append(i)
    close_run()
    return tail, body


def refused_region(data: bytes, float_bytes: bytes) -> Region | None:
    """The int8 ops of ``data`` that XNNPACK leaves to LiteRT's builtin kernels, as a region of the float graph.

    Each such op splits the graph into delegate partitions with copies between
    them. Kept float, XNNPACK takes most (a LayerNorm's epsilon add, whose
    scales are outside what XNNPACK's int8 add accepts). None when XNNPACK
    takes every op or cannot prepare the file at all (the gate reports that).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from devicekit.runtime.probe import delegated_ops

    it = Interpreter(model_content=data, num_threads=1, experimental_op_resolver_type=OpResolverType.AUTO)
    try:
        it.allocate_tensors()
    except (RuntimeError, ValueError):
        return None
    ops = it._get_ops_details()
    _, left, _ = delegated_ops(ops)
    orig = [o for o in ops if o["op_name"] != "DELEGATE"]
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    refused = {names[int(orig[i]["outputs"][0])] for i in left if orig[i]["op_name"] not in ("QUANTIZE", "DEQUANTIZE")}
    fops, fnames, _ = graph_ops(float_bytes)
    idx = [i for i, op in enumerate(fops) if fnames[int(op["outputs"][0])] in refused]
    if not idx:
        return None
    kinds = "+".join(dict.fromkeys(fops[i]["op_name"] for i in idx))
    return Region(
        f"{kinds} x{len(idx)} that XNNPACK refuses in int8",
        "XNNPACK does not take it in int8 (measured on this file): it would run on the builtin kernels between delegate partitions",
        tuple(idx),
        tuple(fnames[int(fops[i]["outputs"][0])] for i in idx),
    )


def forced_regions(float_bytes: bytes) -> list[Region]:
    """One region per FLOAT_FASTER op type present in the float graph."""
    ops, names, _ = graph_ops(float_bytes)
    out = []
    for op_type, why in FLOAT_FASTER.items():
        idx = [i for i, op in enumerate(ops) if op["op_name"] == op_type]
        if idx:
            out.append(Region(f"{op_type} x{len(idx)}", why, tuple(idx), tuple(names[int(ops[i]["outputs"][0])] for i in idx)))
    return out


def _op_costs(float_bytes: bytes) -> tuple[list[int], list[int], int]:
    """(MACs per op, float weight bytes per op, total MACs) of the float graph, from devicekit check's reader."""
    import tempfile
    from pathlib import Path

    from devicekit.check.graph import all_macs
    from devicekit.modelfile import read_model

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "float.tflite"
        p.write_bytes(float_bytes)
        facts = read_model(p)
    macs = all_macs(facts)
    weights = []  # what keeping the op float costs over int8: its constant inputs at 4 bytes instead of 1
    for op in facts.ops:
        consts = [facts.tensor(i) for i in op.inputs if i >= 0]
        weights.append(int(0.75 * sum(t.const_bytes for t in consts if t is not None and t.const)))
    return macs, weights, sum(macs)


@dataclass
class Int8Result:
    data: bytes
    float_regions: list[dict] = field(default_factory=list)
    search: list[dict] = field(default_factory=list)  # every trial: regions in float, score, passed, bytes
    score: float = 0.0
    passed: bool = True
    int8_mac_share: float = 1.0
    notes: list[str] = field(default_factory=list)


class _Quantizer:
    """Calibrated model + denylist -> int8 bytes (memoised), and its judgement on the search images."""

    def __init__(self, model, opts, calib, converter):
        from tensorflow.lite.python import convert as tfl_convert

        from .judge import InputSet, reference_outputs

        tf, conv = converter
        self.tf, self._quantize = tf, tfl_convert.mlir_quantize
        self.model, self.opts = model, opts
        inputs = calib.inputs.transpose(0, 2, 3, 1).astype(np.float32)  # the SavedModel takes NHWC

        def representative():
            for x in inputs:
                yield [x[None]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        conv._experimental_calibrate_only = True
        self.calibrated = conv.convert()
        self.calib_inputs = calib.inputs
        self._calib_reference = reference_outputs(model, calib.inputs, "calibration")
        # judged where it was calibrated and on images calibration never saw (int8 ranges clip unseen inputs)
        self.search_sets = [
            (
                InputSet("calibration", calib.inputs[:SEARCH_IMAGES], "calibration images"),
                reference_outputs(model, calib.inputs, "calibration")[:SEARCH_IMAGES],
            )
        ]
        if calib.validation is not None and len(calib.validation):
            self.search_sets.append(
                (InputSet("validation", calib.validation, "validation images"), reference_outputs(model, calib.validation, "validation"))
            )
        self.limits = opts.gate.limits("int8")
        self._built: dict[frozenset, bytes] = {}
        self._judged: dict[frozenset, object] = {}
        self.trials: list[dict] = []

    def build(self, nodes: frozenset, hybrid: frozenset = frozenset()) -> bytes:
        """int8 bytes with ``nodes`` float; the float FULLY_CONNECTED ops among ``hybrid`` with int8 weights."""
        if hybrid:
            key = (nodes, hybrid)
            if key not in self._built:
                from .tflite_edit import int8_weights

                base = self.build(nodes)
                means = self._input_means(base, hybrid)
                first = int8_weights(base, set(hybrid), means)[0]
                self._built[key] = int8_weights(base, set(hybrid), means, self._output_error(first, hybrid))[0]
            return self._built[key]
        if nodes not in self._built:
            from .tflite_edit import float_outputs

            try:
                q = self._quantize(
                    self.calibrated,
                    fully_quantize=True,
                    input_data_type=self.tf.int8,
                    output_data_type=self.tf.float32,
                    denylisted_ops=list(self.opts.policy.extra_float_ops) or None,
                    denylisted_nodes=sorted(nodes) or None,
                )
            except Exception as exc:  # noqa: BLE001 - the MLIR quantiser raises ConverterError & co
                raise ConversionError(f"int8 quantisation of {self.model.name} failed ({first_line(exc)})") from None
            self._built[nodes] = float_outputs(q)
        return self._built[nodes]

    def _input_means(self, data: bytes, names: frozenset) -> dict:
        """Mean input vector of each FULLY_CONNECTED producing ``names``, over the calibration images."""
        from ai_edge_litert.interpreter import Interpreter

        from .tflite_edit import fc_inputs

        inputs = fc_inputs(data, set(names))
        if not inputs:
            return {}
        it = Interpreter(model_content=data, experimental_preserve_all_tensors=True)
        it.allocate_tensors()
        from devicekit.runtime import TFLiteRunner

        feed = TFLiteRunner(data, delegate="cpu")
        sums = {k: 0.0 for k in inputs}
        for x in self.calib_inputs:
            it.set_tensor(it.get_input_details()[0]["index"], feed.to_input(x[None]))
            it.invoke()
            for k, idx in inputs.items():
                sums[k] = sums[k] + it.get_tensor(idx).astype(np.float64).reshape(-1)
        return {k: v / len(self.calib_inputs) for k, v in sums.items()}

    def _output_error(self, data: bytes, names: frozenset) -> dict:
        """Mean error vs the reference over the calibration images of each model output among ``names``."""
        from devicekit.runtime import TFLiteRunner, match_outputs

        runner = TFLiteRunner(data, delegate="xnnpack")
        out_names = [d["name"] for d in runner.outputs]
        wanted = [i for i, n in enumerate(out_names) if n in names]
        if not wanted:
            return {}
        sums: dict[int, np.ndarray] = {}
        for x, r in zip(self.calib_inputs, self._calib_reference):
            raw = runner.run(x[None])
            for i in wanted:  # the reference output of the same size is this output's (an output layer's vector)
                ref_i = next(o for o in r if o.size == raw[i].size)
                got = match_outputs([raw[i]], [ref_i])[0]
                sums[i] = sums.get(i, 0.0) + (got - ref_i).astype(np.float64).reshape(-1)
        return {out_names[i]: v / len(self.calib_inputs) for i, v in sums.items()}

    def judge(self, nodes: frozenset, label: str, hybrid: frozenset = frozenset()) -> list | None:
        """The agreements of the int8 model with ``nodes`` float on the search sets (None when XNNPACK refuses it)."""
        key = (nodes, hybrid) if hybrid else nodes
        if key not in self._judged:
            from devicekit.runtime import DelegateError, TFLiteRunner

            from .judge import judge

            data = self.build(nodes, hybrid)
            try:
                runner = TFLiteRunner(data, delegate="xnnpack")
                agreements = [judge(self.model, runner, s, self.limits, ref) for s, ref in self.search_sets]
                score, why = max(a.score() for a in agreements), None
            except DelegateError as exc:
                agreements, score, why = None, float("inf"), str(exc)
            self._judged[key] = agreements
            self.trials.append(
                {"float": label, "score": round(score, 4), "passed": score <= 1.0, "bytes": len(data), **({"xnnpack": why} if why else {})}
            )
        return self._judged[key]

    def score(self, nodes: frozenset, label: str, hybrid: frozenset = frozenset()) -> float:
        a = self.judge(nodes, label, hybrid)
        return float("inf") if a is None else max(x.score() for x in a)


def quantize_int8(model, opts, calib, converter, float_bytes: bytes) -> Int8Result:
    """Search the float islands of ``model``'s int8 conversion (see the module docstring)."""
    q = _Quantizer(model, opts, calib, converter)
    policy = opts.policy
    macs, weights, total = _op_costs(float_bytes)
    tail, learned = candidate_regions(float_bytes)
    forced = [] if policy.name == "all-int8" else forced_regions(float_bytes)
    t0 = time.perf_counter()

    def int8_share(regions) -> float:
        ops = {i for r in regions for i in r.ops}
        return 1.0 - sum(macs[i] for i in ops if i < len(macs)) / total if total else 1.0

    def nodes_of(regions) -> frozenset:
        return frozenset(n for r in forced + regions for n in r.nodes)

    def hybrid_of(regions) -> frozenset:
        return frozenset(n for r in regions if r.int8_weights for n in r.nodes)

    def score(regions) -> float:
        return q.score(nodes_of(regions), label(regions), hybrid_of(regions))

    def label(regions) -> str:
        return " + ".join(r.name for r in regions) or "nothing"

    def cost(r: Region) -> int:
        return 0 if r.int8_weights else sum(weights[i] for i in r.ops if i < len(weights))

    def fits(regions) -> bool:  # under the integer-MAC floor, and no op twice (a layer and its int8-weight form)
        ops = [i for r in regions for i in r.ops]
        return len(ops) == len(set(ops)) and int8_share(regions) >= opts.gate.min_int8_share

    def finish(chosen: list[Region], notes: list[str], base=None) -> Int8Result:
        # ops XNNPACK refuses in int8 stay float when the gate allows it: the whole graph in one delegate partition
        if policy.name != "all-int8":
            extra = refused_region(q.build(nodes_of(chosen), hybrid_of(chosen)), float_bytes)
            if extra is not None and fits(chosen + [extra]) and score(chosen + [extra]) <= max(1.0, score(chosen)):
                chosen = chosen + [extra]
        return _result(q, nodes_of(chosen), forced + chosen, float_bytes, notes, macs, weights, total, base, hybrid_of(chosen))

    if not policy.search:
        return finish([r for r in tail if not r.int8_weights] if policy.keep_float_tail else [], [f"policy {policy.name}: no search"])
    base = score([])
    if base <= 1.0:
        return finish([], [], base)
    notes: list[str] = []
    budget = Budget(lambda: len(q.trials), SEARCH_SECONDS, MIN_TRIALS, MAX_TRIALS)
    chosen, current = select((tail, learned), score, cost, fits, budget)
    notes += [budget.note()] if budget.note() else []
    # a fully connected layer chosen in its float form (an output layer or one in the body): does the cheaper
    # form, int8 weights with float activations, pass on top of the rest? (MTCNN ONet's first Linear: 865 KB float)
    for i, r in enumerate(chosen):
        if r.int8_weights or not (r.name.startswith("FULLY_CONNECTED #") or any(c.name == r.name + " with int8 weights" for c in tail)):
            continue
        lighter = next((c for c in tail if c.name == r.name + " with int8 weights"), None) or Region(
            r.name + " with int8 weights", r.why + "; int8 weights, float activations", r.ops, r.nodes, int8_weights=True
        )
        trial = chosen[:i] + [lighter] + chosen[i + 1 :]
        if current <= 1.0 and score(trial) <= 1.0:
            chosen, current = trial, score(trial)
    notes.append(f"searched {len(q.trials)} configurations in {time.perf_counter() - t0:.0f} s")
    return finish(chosen, notes, base)


def _result(
    q: _Quantizer,
    nodes: frozenset,
    chosen: list,
    float_bytes: bytes,
    notes: list[str],
    macs=None,
    weights=None,
    total=None,
    base=None,
    hybrid: frozenset = frozenset(),
) -> Int8Result:
    data = q.build(nodes, hybrid)
    score = q.score(nodes, "final", hybrid)
    regions = []
    for r in chosen:
        rest = nodes - frozenset(r.nodes)
        without = q.score(rest, "without " + r.name, hybrid - frozenset(r.nodes))
        int8_w = hybrid & frozenset(r.nodes)
        extra = sum(weights[i] for i in r.ops if i < len(weights)) if weights else None
        regions.append(
            {
                "region": r.name,
                "why": r.why,
                "ops": list(r.ops),
                "nodes": list(r.nodes),
                "form": "int8 weights, float activations" if int8_w else "float",
                "score_without": round(without, 4),
                "score_with": round(score, 4),
                "macs": int(sum(macs[i] for i in r.ops if i < len(macs))) if macs else None,
                "extra_bytes": int(extra * (0 if int8_w else 1)) if extra is not None else None,
            }
        )
    share = 1.0
    if macs and total:
        share = 1.0 - sum(macs[i] for r in chosen for i in r.ops if i < len(macs)) / total
    return Int8Result(
        data,
        regions,
        q.trials,
        score,
        score <= 1.0,
        share,
        notes + ([f"everything int8 scored {base:.3g} (1 = at the gate's limits)"] if base is not None else []),
    )
