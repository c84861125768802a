"""The models and the tools of benchmarks/coverage.py: where each model comes from, how each tool converts it.

Every tool is a function ``(model, calib, work, done) -> {"fp32": ..., "int8": ..., "info": {...}}`` where each
precision is ``{"path": str, "seconds": float}`` or ``{"failed": "one-line reason"}``; ``done`` holds the
results of the tools that ran before it on the same model (ai-edge-quantizer quantises devicekit's fp32 file).
All tools get the same calibration set (``calib.inputs`` / ``calib.pixels``); none sees ``calib.holdout``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, error_line, plain_onnx2tf

CORPUS = ROOT.parent / "shared" / "corpus"
IMAGENET = {"mean": (123.675, 116.28, 103.53), "std": (58.395, 57.12, 57.375)}
MTCNN = {"mtcnn-onet": "onet", "mtcnn-rnet": "rnet"}
OPTIONAL = {"basiccnn-pool1": "544 MB fp32 file: minutes and several GB per tool; run it by name or with --models all"}
ONNX2TF2 = ROOT / "benchmarks" / ".venv-onnx2tf2" / "bin" / "onnx2tf"
AEQ_PYTHON = ROOT / "benchmarks" / ".venv-aeq" / "bin" / "python"
AEQ_WORKER = Path(__file__).with_name("aeq_worker.py")
CALIB_COUNT = 48  # with the face-data cache (13 photos, 4 videos) this leaves 15 validation + 14 held-out images


def corpus_models() -> list[str]:
    index = CORPUS / "index.json"
    if not index.exists():
        return []
    return sorted(n for n in json.loads(index.read_text()) if (CORPUS / f"{n}.pt2").exists())


def all_models() -> dict[str, str]:
    """name -> group (corpus | zoo | mtcnn), in the order the report lists them."""
    from devicekit.zoo import ZOO

    return {**{n: "corpus" for n in corpus_models()}, **{n: "zoo" for n in ZOO}, **{n: "mtcnn" for n in MTCNN}}


def load(name: str, work: Path):
    """The LoadedModel for ``name``; MTCNN nets are saved as .pt2 (torch.export) into ``work`` first, as a user would."""
    from devicekit import converters as cv
    from devicekit import pipeline

    group = all_models().get(name)
    if group == "corpus":
        return cv.load_model(str(CORPUS / f"{name}.pt2"), spec_overrides=IMAGENET)
    if group == "zoo":
        return _same_weights(cv.load_model(f"zoo:{name}"), work / f"{name}.random-init.pt")
    if group == "mtcnn":
        sys.path.insert(0, str(ROOT / "tests"))
        import mtcnn  # tests/mtcnn.py: facenet-pytorch's nets and weights from the wheel in the test-models cache

        pt2 = work / f"{name}.pt2"
        if not pt2.exists():
            work.mkdir(parents=True, exist_ok=True)
            mtcnn.save_pt2(pt2, MTCNN[name])
        return cv.load_model(str(pt2), spec_overrides={"mean": (mtcnn.MEAN,), "std": (mtcnn.STD,)}, name=name)
    raise KeyError(name)


def _same_weights(model, path: Path):
    """A zoo model without shipped weights is random-init, drawn anew in every process: every tool's child and the
    judge must see one draw, so the first child saves its weights and the others load them."""
    import torch

    if model.info.get("weights") != "random-init":
        return model
    if path.exists():
        model.module.load_state_dict(torch.load(path, weights_only=True))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.module.state_dict(), path)
    return model


def _failed(exc: BaseException) -> dict:
    text = str(exc).strip()
    return {"failed": (text.splitlines()[0] if text else type(exc).__name__)[:300]}


def devicekit_tool(model, calib, work: Path, done: dict) -> dict:
    """The library call a user's script makes: fp32 and int8, devicekit's gate on by default (judged, not thrown)."""
    from devicekit import converters as cv
    from devicekit import pipeline

    from common import face_dir

    opts = cv.ConvertOptions(spec=model.spec, out_dir=work, calib_dir=face_dir(), calib_count=CALIB_COUNT)
    out: dict = {"info": {"gate_failures": []}}
    for prec in ("fp32", "int8"):  # one call per target, so an int8 that raises keeps the fp32 row
        t0 = time.perf_counter()
        try:
            rep = pipeline.convert(model, [f"tflite-{prec}"], opts)
        except Exception as exc:  # noqa: BLE001 - a failure is a row
            out[prec] = _failed(exc)
            continue
        out["info"][f"{prec}_wall_seconds"] = round(time.perf_counter() - t0, 1)
        out["info"]["gate_failures"] += rep.gate_failures
        r = rep.results[0]
        gate = r.summary.get("gate", {})
        out[prec] = {"path": str(r.artifact), "seconds": round(r.seconds, 1)}
        g = {"status": r.status, "passed": gate.get("passed"), "failures": gate.get("failures", [])[:4]}
        if "holdout" in gate:
            g["holdout_score"] = gate["holdout"].get("score")
        if prec == "int8":
            g.update(int8_mac_share=r.summary.get("int8_mac_share"), int8_weight_share=r.summary.get("int8_weight_share"),
                     float_regions=[{k: v for k, v in fr.items() if k != "nodes"} for fr in r.summary.get("float_regions", [])],
                     float_ops=[f.get("op") for f in r.summary.get("float_ops", [])], search_notes=r.summary.get("search_notes"))
        out["info"][prec] = g
    return out


def _onnx2tf(model, calib, work: Path, exe: Path, what: str) -> dict:
    if not exe.exists():
        return {"fp32": {"failed": f"{what} is not installed ({exe})"}, "int8": {"failed": f"{what} is not installed"}}
    work.mkdir(parents=True, exist_ok=True)
    try:
        paths, secs, r = plain_onnx2tf(model, calib, work, exe=exe, timeout=3600)
    except Exception as exc:  # noqa: BLE001 - a failure is a row
        return {"fp32": _failed(exc), "int8": _failed(exc)}
    (work / "onnx2tf.log").write_text(r.stdout)  # kept with --keep
    out: dict = {"info": {"wall_seconds": round(secs, 1), "exit_code": r.returncode}}
    reason = f"no int8 file written: {error_line(r.stdout)}" + (f" (exit code {r.returncode})" if r.returncode else "")
    for prec in ("fp32", "int8"):
        out[prec] = {"path": str(paths[prec]), "seconds": round(secs, 1)} if prec in paths else {"failed": reason}
    return out


def onnx2tf_tool(model, calib, work: Path, done: dict) -> dict:
    """onnx2tf 1.29 (the project's venv, TensorFlow converter) with ``-oiqt``: its integer_quant file (float I/O)."""
    return _onnx2tf(model, calib, work, Path(sys.executable).parent / "onnx2tf", "onnx2tf 1.29")


def onnx2tf2_tool(model, calib, work: Path, done: dict) -> dict:
    """onnx2tf 2.6.9 with its default flatbuffer_direct backend (no TensorFlow), same flags, its own Python 3.12 venv."""
    return _onnx2tf(model, calib, work, ONNX2TF2, "onnx2tf 2.6.9 (make setup-onnx2tf2)")


def litert_torch_tool(model, calib, work: Path, done: dict) -> dict:
    """litert-torch 0.10 through devicekit's backend worker: fp32, and PT2E static int8 on the same calibration inputs."""
    from devicekit.converters.litert_torch_backend import convert_with_litert_torch

    work.mkdir(parents=True, exist_ok=True)
    out: dict = {}
    for prec in ("fp32", "int8"):
        t0 = time.perf_counter()
        try:
            data = convert_with_litert_torch(model, calib, prec)
        except Exception as exc:  # noqa: BLE001
            out[prec] = _failed(exc)
            continue
        p = work / f"{model.name}.{prec}.tflite"
        p.write_bytes(data)
        out[prec] = {"path": str(p), "seconds": round(time.perf_counter() - t0, 1)}
    return out


def aeq_tool(model, calib, work: Path, done: dict) -> dict:
    """ai-edge-quantizer 0.10 static int8 (static_wi8_ai8 recipe) on devicekit's fp32 file, same calibration inputs."""
    import numpy as np

    src = done.get("devicekit", {}).get("fp32", {}).get("path")
    out: dict = {"fp32": {"failed": "not a converter: quantises devicekit's fp32 file"}}
    if not src:
        out["int8"] = {"failed": "no devicekit fp32 file to quantise (run --tools devicekit,ai-edge-quantizer)"}
        return out
    if not AEQ_PYTHON.exists():
        out["int8"] = {"failed": f"ai-edge-quantizer is not installed ({AEQ_PYTHON}; make setup-aeq)"}
        return out
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "calib.npy", calib.inputs.astype(np.float32))
    dst = work / f"{model.name}.aeq-int8.tflite"
    t0 = time.perf_counter()
    try:
        r = subprocess.run([str(AEQ_PYTHON), str(AEQ_WORKER), src, str(work / "calib.npy"), str(dst)],
                           capture_output=True, text=True, timeout=3600, cwd=work)
    except subprocess.TimeoutExpired:
        out["int8"] = {"failed": "ai-edge-quantizer did not finish in 3600 s"}
        return out
    if r.returncode != 0 or not dst.exists():
        out["int8"] = {"failed": f"ai-edge-quantizer failed: {error_line(r.stderr or r.stdout)}"}
        return out
    out["int8"] = {"path": str(dst), "seconds": round(time.perf_counter() - t0, 1)}
    out["info"] = {"quantised_from": "devicekit fp32", **json.loads(r.stdout.strip().splitlines()[-1])}
    return out


# tool name -> (function, what it is); run in this order (ai-edge-quantizer needs devicekit's fp32 file)
TOOLS = {
    "devicekit": (devicekit_tool, "the library API (`converters.convert`), default gate and int8 search"),
    "onnx2tf-1.29": (onnx2tf_tool, "onnx2tf 1.29.24 -oiqt (TF converter)"),
    "onnx2tf-2.6.9": (onnx2tf2_tool, "onnx2tf 2.6.9 -oiqt (flatbuffer_direct, default backend)"),
    "litert-torch": (litert_torch_tool, "litert-torch 0.10.0 (PT2E int8, per-channel symmetric)"),
    "ai-edge-quantizer": (aeq_tool, "ai-edge-quantizer 0.10.0 static_wi8_ai8 on devicekit's fp32 file"),
}
