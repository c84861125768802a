"""CoreML quantisation steps: int8 weights, palettisation, and W8A8 calibrated in the MIL interpreter.

W8A8 is what ``coremltools.optimize.coreml.linear_quantize_activations``
does, with one difference: that function measures activation ranges by
running the model with ``predict``, which needs macOS. Here the ranges come
from devicekit's MIL reference interpreter (``devicekit.milref``) running the
converted fp16 program itself on the calibration images; coremltools' own
passes (``compression::insert_prefix/suffix_quantize_dequantize_pair``) then
put int8 quantize/dequantize pairs around every op they support (conv,
linear, add, pooling, concat, activations), and ``linear_quantize_weights``
makes every weight int8. It works on any graph ``ct.convert`` takes --
TorchScript, ``torch.export`` programs, plain modules -- with no PyTorch-side
quantizer (torch.fx could not trace a TorchScript or exported third-party
model).

Which ops keep float activations is measured, as for TFLite int8
(policy ``search``): everything int8 first; if the gate fails on the
calibration and validation images, the output layers (learned layers whose
result reaches a model output through unlearned ops only) float; then also
the tail (every op from which no learned layer is reachable: soft-argmax, RoI
sampling, coordinate decoding). ``keep-float-tail`` takes the last directly;
``all-int8`` the first. Float-activation layers keep int8 weights.
"""

from __future__ import annotations

import numpy as np

from devicekit.errors import ConversionError, first_line

from .float_search import Budget, Region, select


def activation_ranges(path, inputs: np.ndarray) -> dict[str, dict[str, float]]:
    """{var name: {"rmin", "rmax"}} over ``inputs`` (normalised NCHW) of every float value the program computes."""
    from devicekit.milref import MLPackageRunner, run_program

    runner = MLPackageRunner(path)
    stats: dict[str, dict[str, float]] = {}
    for x in inputs:
        feed = x[None].astype(np.float32)
        if runner.mean is not None:  # image input: the pixels the CoreML runtime would make from the buffer
            feed = feed * runner.std + runner.mean
        for name, v in run_program(runner.program, {runner.input_name: feed}, keep=True).items():
            if v.dtype.kind != "f" or not v.size:
                continue
            lo, hi = float(v.min()), float(v.max())
            s = stats.setdefault(name, {"rmin": lo, "rmax": hi})
            s["rmin"], s["rmax"] = min(s["rmin"], lo), max(s["rmax"], hi)
    # inputs and output of a concat share one range (one scale either side: the concat stays int8)
    for op in runner.program.operations:
        if op.type == "concat":
            group = [ref for kind, ref in op.inputs.get("values", []) if kind == "var"] + [op.outputs[0][0]]
            have = [stats[g] for g in group if g in stats]
            if have:
                lo, hi = min(h["rmin"] for h in have), max(h["rmax"] for h in have)
                for g in group:
                    if g in stats:
                        stats[g] = {"rmin": lo, "rmax": hi}
    return stats


MIN_TRIALS, MAX_TRIALS, SEARCH_SECONDS = 16, 120, 180  # activation-quantise-and-judge rounds of the W8A8 search


def candidate_regions(mlmodel) -> tuple[list[Region], list[Region]]:
    """(tail regions, body regions) of the MIL program: op names whose activations could stay float.

    Tail: each output layer (a learned layer whose result reaches a model
    output through unlearned ops only), and every op from which no learned
    layer is reachable (soft-argmax, RoI sampling, coordinate decoding).
    Body: each learned layer, and each run of unlearned ops between two.
    """
    from .coreml_graph import is_learned, reaches_learned

    fn = mlmodel._mil_program.functions["main"]
    ops = [op for op in fn.operations if op.op_type != "const"]
    outputs = {v.name for v in fn.outputs}

    def feeds_output(op) -> bool:
        seen, stack = set(), [op]
        while stack:
            for v in stack.pop().outputs:
                if v.name in outputs:
                    return True
                for c in v.child_ops:
                    if id(c) not in seen and not is_learned(c):
                        seen.add(id(c))
                        stack.append(c)
        return False

    learned = [is_learned(op) for op in ops]
    heads = [i for i, op in enumerate(ops) if learned[i] and feeds_output(op)]
    after = [i for i, op in enumerate(ops) if not learned[i] and not reaches_learned(op)]
    tail = [Region(f"output layer ({ops[i].op_type} {ops[i].name})", "output layer", (i,), (ops[i].name,)) for i in heads]
    if after:
        tail.append(
            Region("after the last learned layer", "coordinate math after the last learned layer", tuple(after), tuple(ops[i].name for i in after))
        )
    in_tail = {i for r in tail for i in r.ops}
    body: list[Region] = []
    run: list[int] = []
    for i, op in enumerate(ops):
        if i in in_tail or learned[i]:
            if run:
                body.append(
                    Region(
                        f"{'+'.join(dict.fromkeys(ops[j].op_type for j in run))} after {ops[run[0] - 1].name}",
                        "activation requantised to 8 bits",
                        tuple(run),
                        tuple(ops[j].name for j in run),
                    )
                )
                run = []
            if learned[i] and i not in in_tail:
                body.append(Region(f"{op.op_type} {op.name}", "learned layer sensitive to int8", (i,), (op.name,)))
        else:
            run.append(i)
    return tail, body


def fp32_ops(mlmodel) -> frozenset[str]:
    """Ops of an fp16 program that compute in fp32 (its float tail): they keep float activations."""
    from coremltools.converters.mil.mil import types

    fn = mlmodel._mil_program.functions["main"]
    return frozenset(
        op.name
        for op in fn.operations
        if op.op_type != "const"
        and any(v.dtype == types.fp32 and (v.op is None or v.op.op_type != "const") for v in op.inputs.values() if hasattr(v, "dtype"))
    )


ACTIVATION_MODES = ("linear_symmetric", "linear")  # the Neural Engine's int8-int8 form first; zero points if the gate needs them


def apply_w8a8(mlmodel, stats: dict, float_ops: frozenset, mode: str = "linear_symmetric"):
    """coremltools' activation passes with ``stats`` (ops in ``float_ops`` skipped), then int8 weights everywhere."""
    import coremltools as ct
    from coremltools import _SPECIFICATION_VERSION_IOS_17
    from coremltools.converters.mil.frontend.milproto import load as milproto_load
    from coremltools.converters.mil.mil.passes.graph_pass import PassOption
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY
    from coremltools.models import utils as model_utils
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig

    act = OpLinearQuantizerConfig(mode=mode)
    config = OptimizationConfig(global_config=act, op_name_configs={n: None for n in float_ops | fp32_ops(mlmodel)})
    passes = []
    for name in ("insert_prefix_quantize_dequantize_pair", "insert_suffix_quantize_dequantize_pair"):
        p = PASS_REGISTRY[f"compression::{name}"]
        p.set_options([PassOption("config", config)])
        p.set_options([PassOption("activation_stats", stats)])
        passes.append(p)
    passes.append(PASS_REGISTRY["common::dequantize_quantize_pair_elimination"])
    q = model_utils._apply_graph_pass(
        mlmodel, passes, spec_version=_SPECIFICATION_VERSION_IOS_17, pymil_load_func=milproto_load.load, skip_model_load=True
    )
    weights = OptimizationConfig(global_config=OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel"))
    q = ct.optimize.coreml.linear_quantize_weights(q, config=weights)
    q.user_defined_metadata.update(dict(mlmodel.user_defined_metadata))
    return q


def w8a8(mlmodel, model, calib, opts, limits, program=None):
    """(W8A8 MLModel, quantisation info): ranges measured in the MIL interpreter, float activations chosen by the gate.

    ``program``: what ``ct.convert`` was given; a ``torch.export`` program names each float op's PyTorch layer.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from devicekit.milref import MLPackageRunner

    from .judge import InputSet, judge

    work = Path(tempfile.mkdtemp(prefix="devicekit-w8a8-"))
    try:
        base = work / "fp16.mlpackage"
        mlmodel.save(str(base))
        try:
            stats = activation_ranges(base, calib.inputs)
        except Exception as exc:  # noqa: BLE001 - an op the interpreter lacks, a bad shape: one line
            raise ConversionError(
                f"W8A8 calibration of {model.name} in the MIL interpreter failed ({first_line(exc)})",
                hint="try --target coreml-int8 (int8 weights, fp16 activations)",
            ) from None
        policy = opts.policy
        tail, body = candidate_regions(mlmodel)
        sets = [InputSet("calibration", calib.inputs, "calibration images")]
        if calib.validation is not None and len(calib.validation):
            sets.append(InputSet("validation", calib.validation, "validation images"))
        built: dict[tuple, tuple] = {}
        trials: list[dict] = []
        mode = ACTIVATION_MODES[0]

        def build(regions) -> tuple:
            key = (mode, frozenset(n for r in regions for n in r.nodes))
            if key not in built:
                q = apply_w8a8(mlmodel, stats, key[1], mode)
                path = work / f"trial{len(built)}.mlpackage"
                q.save(str(path))
                built[key] = (q, path, None)
            return built[key]

        def score(regions) -> float:
            q, path, known = build(regions)
            if known is None:
                known = max(judge(model, MLPackageRunner(path), s, limits).score() for s in sets)
                built[(mode, frozenset(n for r in regions for n in r.nodes))] = (q, path, known)
                trials.append(
                    {"activations": mode, "float": " + ".join(r.name for r in regions) or "nothing", "score": round(known, 4), "passed": known <= 1.0}
                )
            return known

        chosen = tail if policy.keep_float_tail else []
        for mode in ACTIVATION_MODES if policy.search else ():  # ``mode`` is what build() and score() quantise with
            budget = Budget(lambda: sum(t["activations"] == mode for t in trials), SEARCH_SECONDS, MIN_TRIALS, MAX_TRIALS)
            chosen, best = select(
                (tail, body), score, lambda r: len(r.ops), lambda rs: len({i for r in rs for i in r.ops}) == sum(len(r.ops) for r in rs), budget
            )
            if best <= 1.0:
                break
        q = build(chosen)[0]
        layer = _layer_names(program)
        float_ops = [
            {"op": n, "region": r.name, "why": f"{r.why}: float activations, int8 weights", **({"layer": layer(n)} if layer(n) else {})}
            for r in chosen
            for n in r.nodes
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = {
        "mode": "w8a8",
        "weights": "int8 per channel, symmetric",
        "activations": f"int8 per tensor ({'symmetric' if mode == 'linear_symmetric' else 'with zero points: the symmetric form missed the gate'}), "
        "ranges measured in the MIL interpreter on the calibration images",
        "policy": policy.name,
        "calibration": calib.to_json(),
        "search": trials,
        "float_ops": float_ops,
    }
    return q, info


def quantize_weights(mlmodel, nbits: int | None = None):
    """int8 weights (``linear_quantize_weights``, per channel, symmetric), or palettised if asked."""
    import coremltools as ct
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig

    if nbits:
        return palettize(mlmodel, int(nbits)), {"mode": f"palettized-{int(nbits)}bit", "weights": f"{int(nbits)}-bit lookup table (k-means)"}
    cfg = OptimizationConfig(global_config=OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel"))
    return ct.optimize.coreml.linear_quantize_weights(mlmodel, config=cfg), {"mode": "int8-weights", "weights": "int8 per channel, symmetric"}


def palettize(mlmodel, nbits: int):
    import coremltools as ct
    from coremltools.optimize.coreml import OpPalettizerConfig, OptimizationConfig

    cfg = OptimizationConfig(global_config=OpPalettizerConfig(mode="kmeans", nbits=nbits))
    return ct.optimize.coreml.palettize_weights(mlmodel, config=cfg)


def _layer_names(program):
    """MIL op name -> the PyTorch module path of the graph node it came from (``torch.export`` programs only)."""
    paths = {}
    graph = getattr(program, "graph", None)
    for n in getattr(graph, "nodes", []) if hasattr(program, "graph_signature") else []:
        stack = n.meta.get("nn_module_stack") or {}
        if n.op == "call_function" and stack:
            paths[n.name] = list(stack.values())[-1][0]

    def layer(op_name: str) -> str | None:
        best = max((k for k in paths if op_name == k or op_name.startswith(k + "_")), key=len, default=None)
        return paths[best] if best else None

    return layer
