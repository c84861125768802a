"""`devicekit report`: one self-contained HTML file (inline SVG plots), or Markdown / JSON.

Input: one or more ``runs/<RUN>/`` directories written by ``devicekit bench``.
"""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path

import numpy as np

from ..bench.results import load_run
from . import svg

COLUMNS = [
    ("device", lambda r: _label(r)),
    ("delegate", lambda r: r.get("settings", {}).get("delegate")),
    ("threads", lambda r: r.get("settings", {}).get("threads")),
    ("frames", lambda r: r["stats"]["frames"]),
    ("p50 ms", lambda r: r["stats"]["p50_ms"]),
    ("p90 ms", lambda r: r["stats"]["p90_ms"]),
    ("p95 ms", lambda r: r["stats"]["p95_ms"]),
    ("p99 ms", lambda r: r["stats"]["p99_ms"]),
    ("mean ms", lambda r: r["stats"]["mean_ms"]),
    ("std ms", lambda r: r["stats"]["std_ms"]),
    ("min ms", lambda r: r["stats"]["min_ms"]),
    ("max ms", lambda r: r["stats"]["max_ms"]),
    ("FPS", lambda r: r["stats"]["fps"]),
    ("jank >33.3ms", lambda r: (r["stats"].get("jank") or {}).get("33.3ms", {}).get("frames")),
    ("jank >16.7ms", lambda r: (r["stats"].get("jank") or {}).get("16.7ms", {}).get("frames")),
    ("load ms", lambda r: r["stats"].get("load_ms")),
    ("first frame ms", lambda r: r["stats"].get("first_frame_ms")),
    ("thermal", lambda r: _thermal(r["stats"].get("thermal") or {})),
    ("throttling", lambda r: "yes" if r["stats"].get("throttling") else "no"),
    ("complete", lambda r: "yes" if r.get("complete") else f"no: {r.get('error')}"),
]


def _label(r: dict) -> str:
    d = r.get("device") or {}
    return f"{d.get('model') or r.get('target')} [{r.get('run')}]"


def _thermal(t: dict) -> str:
    if t.get("start") is None and t.get("end") is None:
        return "-"
    return f"{t.get('start')}→{t.get('end')}"


def load_runs(paths: list[str | Path]) -> list[dict]:
    return [load_run(p) for p in paths]


def _fmt(v) -> str:
    return "-" if v is None else str(v)


def to_json(runs: list[dict]) -> dict:
    return {"schema": "devicekit.report/1", "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
            "table": [{name: f(r) for name, f in COLUMNS} for r in runs]}


def to_markdown(runs: list[dict]) -> str:
    head = "| " + " | ".join(n for n, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    rows = ["| " + " | ".join(_fmt(f(r)).replace("|", "/") for _, f in COLUMNS) + " |" for r in runs]
    return "# devicekit bench report\n\n" + "\n".join([head, sep, *rows]) + "\n"


def to_html(runs: list[dict]) -> str:
    lat = [(_label(r), r["_rows"][:, 5] / 1000.0) for r in runs]
    tim = [(_label(r), (r["_rows"][:, 1] - r["_rows"][0, 1]) / 1e9 if len(r["_rows"]) else np.zeros(0), r["_rows"][:, 5] / 1000.0)
           for r in runs]
    plots = [svg.histogram(lat), svg.over_time(tim), svg.cdf(lat)] if any(len(v) for _, v in lat) else []
    table = ["<table><thead><tr>" + "".join(f"<th>{escape(n)}</th>" for n, _ in COLUMNS) + "</tr></thead><tbody>"]
    for r in runs:
        cls = "" if r.get("complete") else ' class="incomplete"'
        table.append(f"<tr{cls}>" + "".join(f"<td>{escape(_fmt(f(r)))}</td>" for _, f in COLUMNS) + "</tr>")
    table.append("</tbody></table>")
    details = "".join(
        f"<details><summary>{escape(_label(r))}: device and settings</summary><pre>"
        f"{escape(json.dumps({'device': r.get('device'), 'settings': r.get('settings'), 'artifact': r.get('artifact'), 'sha256': r.get('artifact_sha256')}, indent=2))}"
        "</pre></details>" for r in runs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devicekit bench report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }} th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child {{ text-align: left; }} tr.incomplete td {{ background: #fff1f0; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 12px; }} .plots svg {{ border: 1px solid #eee; }}
</style></head><body>
<h1>devicekit bench report</h1>
<p>{len(runs)} run(s); generated {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}. Frame time = preprocess + inference + postprocess per measured frame.</p>
{''.join(table)}
<div class="plots">{''.join(plots)}</div>
{details}
</body></html>
"""


def render(paths: list[str | Path], fmt: str = "html") -> str:
    runs = load_runs(paths)
    if fmt == "json":
        return json.dumps(to_json(runs), indent=2) + "\n"
    if fmt == "md":
        return to_markdown(runs)
    return to_html(runs)
