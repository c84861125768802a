"""`devicekit report`: one self-contained HTML file (inline SVG plots), or Markdown / JSON.

Input: one or more ``runs/<RUN>/`` directories written by ``devicekit bench``.
"""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path

import numpy as np

from ..bench.fleet import failures, load_fleet
from ..bench.results import load_run
from . import svg

COLUMNS = [
    ("device", lambda r: _label(r)),
    ("model", lambda r: r.get("model")),
    ("precision", lambda r: r.get("precision")),
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
    ("accelerator", lambda r: (r.get("runtimes") or {}).get("accelerator")),
    ("runtime", lambda r: (r.get("runtimes") or {}).get("device")),
    ("golden", lambda r: _golden(r.get("golden"))),
    ("complete", lambda r: "yes" if r.get("complete") else f"no: {r.get('error')}"),
]


def _label(r: dict) -> str:
    d = r.get("device") or {}
    return f"{d.get('model') or r.get('device_name')} [{r.get('run')}]"


def _thermal(t: dict) -> str:
    if t.get("start") is None and t.get("end") is None:
        return "-"
    return f"{t.get('start')}→{t.get('end')}"


def _golden(g: dict | None) -> str | None:
    if not g:
        return None
    err = (
        f"{g['landmarks_px_mean']:.3g} px mean"
        if g.get("landmarks_px_mean") is not None
        else f"rel_l2 {max((o.get('rel_l2') or 0) for o in g.get('outputs') or [{}]):.3g}"
    )
    return f"{err}, {'pass' if g.get('passed') else 'FAIL'}"


# a fleet (``devicekit bench --device all``, runs/<FLEET>/fleet.json): one row per device, failed ones too
FLEET_COLUMNS = ("p50 ms", "p90 ms", "p99 ms", "jank >33.3ms", "thermal", "accelerator", "runtime", "golden")


def fleet_runs(doc: dict, fleet_dir: str | Path) -> list[tuple[dict, dict | None]]:
    """Each device of a fleet with its loaded run (None when it never got a run directory)."""
    out = []
    for e in doc["devices"]:
        d = Path(fleet_dir).parent / str(e.get("run_id"))  # the run directories sit beside the fleet's
        out.append((e, load_run(d) if (d / "summary.json").is_file() else None))
    return out


def fleet_table(doc: dict, fleet_dir: str | Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the side-by-side fleet table (the CLI prints it, the report renders it)."""
    cols = dict(COLUMNS)
    rows = []
    for e, r in fleet_runs(doc, fleet_dir):
        name = e["label"] if e["label"] != e["device"] or r is None else (r.get("device") or {}).get("model") or e["label"]
        rows.append([f"{name} ({e['device']})", *(_fmt(cols[c](r)) if r else "-" for c in FLEET_COLUMNS), e["status"], e.get("error") or ""])
    return ["device", *FLEET_COLUMNS, "status", "error"], rows


def load_runs(paths: list[str | Path]) -> list[dict]:
    """Run directories; a fleet's directory stands for every device run it has."""
    return [r for p in paths for r in _expand(p)]


def _expand(path: str | Path) -> list[dict]:
    doc = load_fleet(path) if not (Path(path) / "summary.json").exists() else None
    if doc is None:
        return [load_run(path)]
    return [r for _, r in fleet_runs(doc, _fleet_dir(path)) if r is not None]


def _fleet_dir(path: str | Path) -> Path:
    p = Path(path)
    return p.parent if p.is_file() else p


def _fleets(paths: list[str | Path]) -> list[tuple[dict, Path]]:
    return [(doc, _fleet_dir(p)) for p in paths if not (Path(p) / "summary.json").exists() and (doc := load_fleet(p))]


def _fmt(v) -> str:
    return "-" if v is None else str(v)


def to_json(runs: list[dict], fleets: list[tuple[dict, Path]] = ()) -> dict:
    out = {
        "schema": "devicekit.report/1",
        "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        "table": [{name: f(r) for name, f in COLUMNS} for r in runs],
    }
    if fleets:
        out["fleets"] = [doc for doc, _ in fleets]
    return out


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    cell = lambda v: str(v).replace("|", "/").replace("\n", " ")  # noqa: E731
    return (
        "\n".join(
            [
                "| " + " | ".join(head) + " |",
                "|" + "|".join("---" for _ in head) + "|",
                *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows),
            ]
        )
        + "\n"
    )


def to_markdown(runs: list[dict], fleets: list[tuple[dict, Path]] = ()) -> str:
    parts = [f"## fleet {doc['fleet']}\n\n" + _md_table(*fleet_table(doc, d)) for doc, d in fleets]
    table = _md_table([n for n, _ in COLUMNS], [[_fmt(f(r)) for _, f in COLUMNS] for r in runs])
    return "# devicekit bench report\n\n" + "\n".join([*parts, table])


def _html_table(head: list[str], rows: list[list[str]], bad: list[bool]) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{escape(n)}</th>" for n in head) + "</tr></thead><tbody>"]
    for row, b in zip(rows, bad):
        cls = ' class="incomplete"' if b else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>")
    return "".join(out) + "</tbody></table>"


def to_html(runs: list[dict], fleets: list[tuple[dict, Path]] = ()) -> str:
    lat = [(_label(r), r["_rows"][:, 5] / 1000.0) for r in runs]
    tim = [(_label(r), (r["_rows"][:, 1] - r["_rows"][0, 1]) / 1e9 if len(r["_rows"]) else np.zeros(0), r["_rows"][:, 5] / 1000.0) for r in runs]
    plots = [svg.histogram(lat), svg.over_time(tim), svg.cdf(lat)] if any(len(v) for _, v in lat) else []
    table = [_html_table([n for n, _ in COLUMNS], [[_fmt(f(r)) for _, f in COLUMNS] for r in runs], [not r.get("complete") for r in runs])]
    for doc, d in reversed(fleets):  # each fleet's side-by-side table first, failed devices included
        head, rows = fleet_table(doc, d)
        table.insert(
            0,
            f"<h2>fleet {escape(doc['fleet'])}: {len(rows) - len(failures(doc))} of {len(rows)} devices ran</h2>"
            + _html_table(head, rows, [e["status"] != "ok" for e in doc["devices"]]),
        )
    details = "".join(
        f"<details><summary>{escape(_label(r))}: device and settings</summary><pre>"
        f"{escape(json.dumps({'device': r.get('device'), 'settings': r.get('settings'), 'artifact': r.get('artifact'), 'sha256': r.get('artifact_sha256')}, indent=2))}"
        "</pre></details>"
        for r in runs
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devicekit bench report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }} th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child {{ text-align: left; }} tr.incomplete td {{ background: #fff1f0; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 12px; }} .plots svg {{ border: 1px solid #eee; }}
</style></head><body>
<h1>devicekit bench report</h1>
<p>{len(runs)} run(s); generated {time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())}. Frame time = preprocess + inference + postprocess per measured frame.</p>
{"".join(table)}
<div class="plots">{"".join(plots)}</div>
{details}
</body></html>
"""


def render(paths: list[str | Path], fmt: str = "html") -> str:
    runs, fleets = load_runs(paths), _fleets(paths)
    if fmt == "json":
        return json.dumps(to_json(runs, fleets), indent=2) + "\n"
    if fmt == "md":
        return to_markdown(runs, fleets)
    return to_html(runs, fleets)
