"""The verify report: one self-contained HTML file (plots inline) plus ced.png and verify.json.

CED curves of all models in one chart, the per-region table, the
per-landmark error, the worst faces drawn with both sets of landmarks (and
the annotation), and the video jitter table.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import numpy as np

from ..fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..report.svg import COLORS, _Axes
from . import metrics
from .core import public

BGR = {"reference": (180, 119, 31), "converted": (40, 39, 214), "annotation": (44, 160, 44)}


def _models(result: dict) -> list[str]:
    return [k for k in ("reference", "converted") if "per_face_nme_inter_ocular" in result.get(k, {})]


def ced_svg(result: dict, t_max: float = 0.10) -> str:
    ax = _Axes("Cumulative error distribution", "NME (inter-ocular)", "fraction of faces", (0, t_max), (0, 1))
    ax.frame()
    names = _models(result)
    for i, name in enumerate(names):
        x, y = metrics.ced(result[name]["per_face_nme_inter_ocular"], t_max)
        ax.polyline(x, y, COLORS[i])
    ax.legend(names)
    return ax.svg()


def per_landmark_svg(result: dict) -> str:
    names = _models(result)
    vals = [np.asarray(result[n]["per_landmark"]["nme_inter_ocular"]) for n in names]
    top = max((float(v.max()) for v in vals), default=1.0)
    ax = _Axes("Error per landmark", "landmark index (iBUG 68)", "mean error / inter-ocular", (0, len(vals[0]) - 1), (0, top * 1.05))
    ax.frame()
    for i, v in enumerate(vals):
        ax.polyline(np.arange(len(v)), v, COLORS[i])
    ax.legend(names)
    return ax.svg()


def ced_png(result: dict, t_max: float = 0.10, size: tuple[int, int] = (640, 400)) -> bytes:
    """The CED chart as a PNG (drawn with OpenCV; no plotting library needed)."""
    import cv2

    w, h = size
    l, r, t, b = 70, 20, 40, 50
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.rectangle(img, (l, t), (w - r, h - b), (150, 150, 150), 1)
    for k in range(6):
        xv, yv = t_max * k / 5, k / 5
        x = int(l + (w - l - r) * k / 5)
        y = int(h - b - (h - t - b) * k / 5)
        cv2.line(img, (l, y), (w - r, y), (235, 235, 235), 1)
        cv2.putText(img, f"{xv:.2f}", (x - 16, h - b + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
        cv2.putText(img, f"{yv:.1f}", (l - 30, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.putText(img, "CED: fraction of faces with NME (inter-ocular) <= x", (l, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for i, name in enumerate(_models(result)):
        x, y = metrics.ced(result[name]["per_face_nme_inter_ocular"], t_max, 201)
        px = (l + x / t_max * (w - l - r)).astype(np.int32)
        py = (h - b - y * (h - t - b)).astype(np.int32)
        cv2.polylines(img, [np.stack([px, py], 1)], False, BGR[name], 2, cv2.LINE_AA)
        cv2.putText(img, name, (w - r - 120, t + 20 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, BGR[name], 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", img)
    return buf.tobytes()


def face_png(result: dict, index: int, size: int = 320) -> bytes:
    """The face crop with the reference, converted and annotated landmarks drawn on it."""
    import cv2

    from ..face.crop import crop_image, to_crop
    from .core import read_image

    face = result["faces"][index]
    box = result["_faces"][index].box
    img = read_image(Path(face["image"]))
    crop = crop_image(img, box, size)
    arrays = result["_arrays"]
    sets = [
        ("annotation", result["_faces"][index].gt),
        ("reference", arrays["reference"][index]),
        ("converted", None if arrays["converted"] is None else arrays["converted"][index]),
    ]
    for name, pts in sets:
        if pts is None:
            continue
        for x, y in to_crop(pts, box, size):
            cv2.circle(crop, (int(round(x)), int(round(y))), 2, BGR[name], -1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", crop)
    return buf.tobytes()


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}"/>'


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else escape(str(v))


def html(result: dict, title: str) -> str:
    pub = public(result)
    names = _models(result)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>"
        "body{font:14px system-ui,sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse;margin:8px 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
        "img{margin:4px;border:1px solid #ddd}.k{color:#555}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    rows = [("", "reference", "converted", "delta")]
    for k in (*metrics.SCALARS, "images"):
        rows.append((k, *(pub.get(m, {}).get(k, "") for m in ("reference", "converted", "delta"))))
    parts.append("<h2>Accuracy (fractions; NME normalised by the outer eye corners / pupils)</h2><table>")
    parts += [
        "<tr>" + "".join(f"<th>{escape(str(c))}</th>" if i == 0 or r is rows[0] else f"<td>{_fmt(c)}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    ]
    parts.append("</table>")
    conv = pub.get("converted", {})
    if conv.get("status") == "not verified":
        parts.append(f"<p><b>converted: {escape(conv.get('reason', ''))}</b></p>")
    if "agreement" in pub:
        a = pub["agreement"]
        parts.append(f"<p>Agreement converted vs reference: mean {a['mean']:.3f} px, max {a['max']:.3f} px (image pixels, {a['images']} faces).</p>")
    if names:
        parts.append("<h2>CED</h2>" + ced_svg(result) + per_landmark_svg(result))
        parts.append(
            "<h2>Per region</h2><table><tr><th>region</th>"
            + "".join(f"<th>{n} NME</th><th>{n} FR@0.10 (landmark-wise)</th>" for n in names)
            + "</tr>"
        )
        for region in result[names[0]]["per_region"]:
            cells = "".join(
                f"<td>{result[n]['per_region'][region]['nme_inter_ocular']:.4f}</td><td>{result[n]['per_region'][region]['fr_0.10']:.4f}</td>"
                for n in names
            )
            parts.append(f"<tr><th>{escape(region)}</th>{cells}</tr>")
        parts.append("</table>")
    parts.append("<h2>Worst faces</h2><p class='k'>green: annotation, blue: reference, red: converted</p>")
    for i in result["_arrays"]["order"][:5]:
        f = result["faces"][i]
        cap = ", ".join(f"{k} {v:.4f}" for k, v in f.items() if k.startswith("nme") or k.startswith("agreement"))
        parts.append(
            f"<figure style='display:inline-block'>{_img(face_png(result, i), f['image'])}"
            f"<figcaption>{escape(Path(f['image']).name)} ({escape(f['box_source'])} box) {escape(cap)}</figcaption></figure>"
        )
    if "video" in pub:
        v = pub["video"]
        parts.append(
            f"<h2>Video stability</h2><p>{escape(Path(v['video']).name)}: {v['tracked']}/{v['frames']} frames tracked at "
            f"{v['fps']:.1f} fps; 1-euro {escape(str(v['one_euro']))}</p><table><tr><th>model</th><th>raw step px</th>"
            "<th>filtered step px</th><th>raw accel px</th><th>filtered accel px</th></tr>"
        )
        for n in ("reference", "converted"):
            if n in v:
                parts.append(
                    f"<tr><th>{n}</th><td>{v[n]['raw']['step_px']:.3f}</td><td>{v[n]['filtered']['step_px']:.3f}</td>"
                    f"<td>{v[n]['raw']['accel_px']:.3f}</td><td>{v[n]['filtered']['accel_px']:.3f}</td></tr>"
                )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(result: dict, out_dir: str | Path, title: str = "devicekit verify") -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": atomic_write_json(out / "verify.json", public(result))}
    if _models(result):
        files["ced"] = atomic_write_bytes(out / "ced.png", ced_png(result))
    files["html"] = atomic_write_text(out / "verify.html", html(result, title))
    return {k: str(v) for k, v in files.items()}
