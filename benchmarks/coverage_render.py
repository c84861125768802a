"""benchmarks/coverage.md from coverage.json's rows: a table per model, then where devicekit is behind a peer and why.

Every sentence of the last section is computed from the rows (sizes, medians, gate scores, op counts, float
regions); none is typed in. Thresholds for calling a difference: ``SIZE_MARGIN`` and ``LATENCY_MARGIN``.
"""

from __future__ import annotations

from coverage_tools import OPTIONAL, TOOLS, all_models

SIZE_MARGIN = 0.02  # a peer's file counts as smaller when it is more than 2 % smaller
LATENCY_MARGIN = 0.10  # ... faster when its median is more than 10 % lower (same loop, same machine)
ACCURACY_MARGIN = 0.8  # ... more accurate when its gate score is below 0.8x devicekit's
ACCURACY_FLOOR = 0.25  # ... and devicekit uses more than a quarter of the gate's allowance (below that both are exact)


def _kb(e: dict) -> str:
    return f"{e['size_bytes'] / 1024:,.0f}" if "size_bytes" in e else ""


def _ms(e: dict) -> str:
    lat = e.get("latency_1t", {})
    if "median" not in lat:
        return ""
    return f"{lat['median']:.2f}" + ("†" if lat.get("delegate") == "cpu" else "")


def headline(err: dict | None) -> str:
    """The gate measure of every head, compact: classifiers top-1 and min cosine, landmarks px, else rel-L2."""
    if not err:
        return ""
    parts = []
    for h in err["heads"]:
        if h["kind"] == "classifier":
            parts.append(f"top-1 {h['top1']:.0%} cos {h['cosine_min']:.4f}")
        elif h["kind"] == "landmarks":
            parts.append(f"{h['mean_px']:.3g} px")
        else:
            parts.append(f"rel {h['rel_l2']:.1e}")
    return "; ".join(parts)


def gate_mark(err: dict | None) -> str:
    if not err:
        return ""
    if err["passed"]:
        return "✓"
    return "✗ " + ", ".join(f.split(" (")[0] for h in err["heads"] for f in h["failures"])


def _converts(res: dict, notes: list[str]) -> str:
    ok = [p for p in ("fp32", "int8") if "path" in res.get(p, {})]
    reasons = sorted({res[p]["failed"] for p in ("fp32", "int8") if "failed" in res.get(p, {})})
    for r in reasons:
        if r not in notes:
            notes.append(r)
    refs = "".join(f"[{notes.index(r) + 1}]" for r in reasons)
    if len(ok) == 2:
        return "yes"
    return f"{ok[0]} only {refs}" if ok else f"no {refs}"


def _counted(names: list[str]) -> str:
    from collections import Counter

    return ", ".join(f"{n} x{c}" if c > 1 else n for n, c in Counter(names).items())


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else ""


def model_section(row: dict) -> list[str]:
    out = [f"### {row['model']} ({row['group']})", ""]
    cal = row.get("calibration") or {}
    if row.get("error"):
        out += [f"Measuring failed: {row['error']}", ""]
    out += ["| tool | converts | fp32 error (rel-L2) | int8 error (gate measure) | int8 gate | KB fp32 | KB int8 | int8/fp32 size "
            "| XNNPACK fp32 / int8 | ms fp32 | ms int8 | int8/fp32 ms | convert s | peak GiB |",
            "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    notes: list[str] = []
    for tool, res in row["tools"].items():
        f, i = res.get("fp32", {}), res.get("int8", {})
        fe = f.get("error")
        ferr = f"{max(h['rel_l2'] for h in fe['heads']):.1e}" + ("" if fe["passed"] else " ✗") if fe else f.get("judge_error", "")[:60]
        lat = lambda e: e.get("latency_1t", {}).get("median")  # noqa: E731
        xnn = " / ".join(e.get("xnnpack", "-") for e in (f, i))
        out.append(f"| {tool} | {_converts(res, notes)} | {ferr} | {headline(i.get('error')) or i.get('judge_error', '')[:60]} | "
                   f"{gate_mark(i.get('error'))} | {_kb(f)} | {_kb(i)} | {_ratio(i.get('size_bytes'), f.get('size_bytes'))} | "
                   f"{xnn} | {_ms(f)} | {_ms(i)} | {_ratio(lat(i), lat(f))} | {res.get('wall_seconds', '')} | {res.get('peak_rss_gib', '')} |")
    out.append("")
    out += [f"[{k + 1}] {n}" + "  " for k, n in enumerate(notes)]
    dk = row["tools"].get("devicekit", {}).get("info", {})
    for prec in ("fp32", "int8"):
        g = dk.get(prec)
        if not g:
            continue
        line = f"- devicekit's own gate on {prec}: **{g['status']}**"
        mine = row["tools"]["devicekit"].get(prec, {}).get("error", {}).get("score")
        if g.get("holdout_score") is not None and mine is not None:
            line += f" (held-out score {g['holdout_score']:.3g}; this table's judge: {mine:.3g})"
        if g.get("failures"):
            line += " (" + "; ".join(g["failures"]) + ")"
        if prec == "int8" and g.get("int8_mac_share") is not None:
            regions = ", ".join(f"{r.get('region', '?')} ({r.get('why', '?')})" for r in g.get("float_regions", []))
            line += (f"; int8 share of MACs {g['int8_mac_share']:.1%}, of weight bytes {g.get('int8_weight_share', 0):.1%}; "
                     f"float regions: {regions or 'none'}; float ops: {_counted(g.get('float_ops') or []) or 'none'}")
        out.append(line)
    for tool, res in row["tools"].items():
        for prec in ("fp32", "int8"):
            e = res.get(prec, {})
            if e.get("xnnpack_error"):
                out.append(f"- {tool} {prec}: XNNPACK {e['xnnpack']}: {e['xnnpack_error']}")
            elif e.get("xnnpack_left"):
                out.append(f"- {tool} {prec}: XNNPACK leaves {', '.join(e['xnnpack_left'])} to the builtin kernels")
    if cal:
        out.append(f"- {cal.get('count')} calibration images, judged on {cal.get('holdout')} held-out ones; judging and "
                   f"timing every file took {row.get('measure_seconds', '?')} s")
    return out + [""]


def _int8(row: dict, tool: str) -> dict:
    return row["tools"].get(tool, {}).get("int8", {})


def _score(e: dict) -> float | None:
    return e.get("error", {}).get("score")


def _why_size(dk: dict, peer: dict, dk_info: dict) -> str:
    why = []
    if dk.get("int8_weight_share") is not None and peer.get("int8_weight_share") is not None:
        why.append(f"integer weight bytes {dk['int8_weight_share']:.0%} vs {peer['int8_weight_share']:.0%}")
    regions = [f"{r.get('region', '?')} ({r.get('extra_bytes', 0) / 1024:,.0f} KB)" for r in dk_info.get("float_regions", [])]
    if regions:
        why.append(f"devicekit keeps float: {', '.join(regions)}")
    return "; ".join(why)


def _why_latency(dk: dict, peer: dict) -> str:
    why = []
    if dk.get("xnnpack") != peer.get("xnnpack"):
        why.append(f"XNNPACK: devicekit's file {dk.get('xnnpack')}, the peer's {peer.get('xnnpack')}")
    left = [op for op in dk.get("xnnpack_left", []) if op not in peer.get("xnnpack_left", [])]
    if left:
        why.append(f"devicekit's file leaves {', '.join(left)} to the builtin kernels, the peer's does not")
    d_ops, p_ops = dk.get("ops", {}), peer.get("ops", {})
    more = sorted(((d_ops[op] - p_ops.get(op, 0), op) for op in d_ops if d_ops[op] > p_ops.get(op, 0)), reverse=True)
    if more:
        why.append("devicekit's file has more " + ", ".join(f"{op} ({d_ops[op]} vs {p_ops.get(op, 0)})" for _, op in more[:3]))
    if dk.get("int8_mac_share") is not None and peer.get("int8_mac_share") is not None and dk["int8_mac_share"] < peer["int8_mac_share"]:
        why.append(f"int8 MAC share {dk['int8_mac_share']:.1%} vs {peer['int8_mac_share']:.1%}")
    return "; ".join(why)


def _caveat(e: dict) -> str:
    """What makes a peer's win hollow: its file fails the gate's limits here, or XNNPACK refuses it."""
    out = []
    if e.get("error") and not e["error"]["passed"]:
        out.append("but it fails the gate's limits: " + ", ".join(f for h in e["error"]["heads"] for f in h["failures"]))
    if e.get("xnnpack") not in ("delegated", "partly"):
        out.append(f"but XNNPACK {e.get('xnnpack')}")
    return "".join(f"; {c}" for c in out)


def behind(rows: list[dict]) -> list[str]:
    """Where a peer's int8 (or fp32) beats devicekit's on the same model, and the measured differences that explain it."""
    out = ["## Where devicekit is behind a peer, and why", "",
           f"Generated from the rows above. A peer counts as smaller when its file is >{SIZE_MARGIN:.0%} smaller, faster when "
           f"its 1-thread median is >{LATENCY_MARGIN:.0%} lower in the same interleaved loop, more accurate when its gate "
           f"score (worst metric / limit over the heads on the held-out images; <= 1 passes) is below {ACCURACY_MARGIN}x "
           f"devicekit's while devicekit's is above {ACCURACY_FLOOR}. The reasons are the measured differences between the "
           "two files (op counts, XNNPACK's verdict, integer shares, devicekit's float regions).", ""]
    tally = {"smallest": 0, "fastest": 0, "most accurate": 0, "models": 0}
    for row in rows:
        dk_res = row["tools"].get("devicekit")
        if not dk_res:
            continue
        lines = []
        dk, info = dk_res.get("int8", {}), dk_res.get("info", {}).get("int8", {})
        peers = {t: _int8(row, t) for t in row["tools"] if t != "devicekit" and "path" in _int8(row, t)}
        if "path" not in dk:
            ok = ", ".join(peers) or "no peer either"
            lines.append(f"devicekit wrote no int8 file ({dk.get('failed', '?')}); int8 from: {ok}")
        else:
            tally["models"] += 1
            if info.get("status") == "failed":
                passing = [t for t, e in peers.items() if e.get("error", {}).get("passed")]
                lines.append(f"devicekit's int8 fails its own gate ({'; '.join(info.get('failures', [])[:2])}); "
                             f"peers whose int8 passes the same limits here: {', '.join(passing) or 'none'}")
            size = {t: e["size_bytes"] for t, e in peers.items() if "size_bytes" in e}
            small = [t for t, s in size.items() if s < (1 - SIZE_MARGIN) * dk.get("size_bytes", 0)]
            for t in sorted(small, key=size.get):
                lines.append(f"smaller: {t} int8 {size[t] / 1024:,.0f} KB vs devicekit {dk['size_bytes'] / 1024:,.0f} KB "
                             f"({size[t] / dk['size_bytes']:.2f}x; {_why_size(dk, peers[t], info) or 'no measured difference explains it'}"
                             f"{_caveat(peers[t])})")
            tally["smallest"] += not small
            med = {t: e["latency_1t"]["median"] for t, e in peers.items() if "median" in e.get("latency_1t", {})}
            dk_med = dk.get("latency_1t", {}).get("median")
            fast = [t for t, m in med.items() if dk_med and m < (1 - LATENCY_MARGIN) * dk_med]
            for t in sorted(fast, key=med.get):
                lines.append(f"faster: {t} int8 {med[t]:.2f} ms vs devicekit {dk_med:.2f} ms ({med[t] / dk_med:.2f}x; "
                             f"{_why_latency(dk, peers[t]) or 'no op-count or delegate difference measured'}{_caveat(peers[t])})")
            tally["fastest"] += bool(dk_med) and not fast
            dk_score = _score(dk)
            better = [t for t, e in peers.items() if dk_score is not None and dk_score > ACCURACY_FLOOR
                      and _score(e) is not None and _score(e) < ACCURACY_MARGIN * dk_score]
            for t in sorted(better, key=lambda t: _score(peers[t])):
                e = peers[t]
                lines.append(f"more accurate: {t} int8 gate score {_score(e):.2f} vs devicekit {dk_score:.2f} "
                             f"({headline(e.get('error'))} vs {headline(dk.get('error'))}"
                             f"{_caveat(e)})")
            tally["most accurate"] += dk_score is not None and not better
        fp = dk_res.get("fp32", {})
        fp_med = fp.get("latency_1t", {}).get("median")
        for t, res in row["tools"].items():
            m = res.get("fp32", {}).get("latency_1t", {}).get("median")
            if t != "devicekit" and fp_med and m and m < (1 - LATENCY_MARGIN) * fp_med:
                lines.append(f"faster fp32: {t} {m:.2f} ms vs devicekit {fp_med:.2f} ms "
                             f"({_why_latency(fp, res['fp32']) or 'no op-count difference measured'}{_caveat(res['fp32'])})")
        out += [f"- **{row['model']}**: " + ("; ".join(lines[:1]) if lines else "no peer is smaller, faster or more accurate in int8")]
        out += [f"  - {ln}" for ln in lines[1:]]
    n = tally["models"]
    if n:
        out += ["", f"Over the {n} model(s) where devicekit wrote an int8 file: no peer smaller on {tally['smallest']}, "
                f"no peer faster on {tally['fastest']}, no peer more accurate on {tally['most accurate']}."]
    return out + [""]


def render(rows: list[dict], tools: list[str]) -> str:
    runs = []
    for row in rows:
        if row["run"] not in runs:
            runs.append(row["run"])
    expected = [m for m in all_models() if m not in OPTIONAL]
    missing = [m for m in expected if m not in {r["model"] for r in rows}]
    short = sorted({t for r in rows for t in tools if t not in r["tools"]})
    out = ["# Coverage: devicekit and its peers on models nobody here wrote", ""]
    if missing or short:
        out += [f"**PARTIAL run, not the full benchmark: {len(expected) - len(missing)} of {len(expected)} models"
                + (f" (missing: {', '.join(missing)})" if missing else "")
                + (f"; tools missing on some models: {', '.join(short)}" if short else "") + ".**", ""]
    for run in runs:
        models = ", ".join(r["model"] for r in rows if r["run"] == run)
        out.append(f"- `{run['cmd']}` on {run['machine']}, {run['date']}, {run['minutes']} min, load average at the end "
                   f"{' / '.join(str(v) for v in run['load'])} ({models})")
    out += ["", "Tools: " + "; ".join(f"**{t}** {TOOLS[t][1]}" for t in tools if t in TOOLS) + ".", "",
            "Every tool gets the same calibration images (the face-data cache's unlabeled photos and video frames, "
            "face-cropped and normalised as devicekit crops them: `devicekit.converters.calibration.load_calibration`) "
            "and every file is judged on the same held-out images, which no tool calibrated on, against PyTorch, by "
            "devicekit's gate measure (`converters/judge.py`): fp32 rel-L2 of every head (limit 1e-4); int8 classifier "
            "heads by top-1 agreement (>= 98 %) and minimum cosine (>= 0.99), landmark heads in pixels (<= 0.5 px "
            "mean), any other head by rel-L2 (<= 5 %). `int8 gate` applies those limits to every tool's file. "
            "Files run in ai_edge_litert with XNNPACK; XNNPACK is LiteRT's own verdict from a child process "
            "(`devicekit.runtime.probe`). Latency: 1 thread, median of the runs, every file of one model invoked in "
            "turn in one loop (ratios within a table are side by side; absolute numbers move with the load). "
            "† = XNNPACK refused the file; timed on the builtin kernels. Corpus and most zoo weights are random-init "
            "(see shared/corpus/README.md); MTCNN has trained weights.", ""]
    optional = [m for m in OPTIONAL if m not in {r["model"] for r in rows}]
    if optional:
        out += [f"Not run (optional): {', '.join(f'{m} ({OPTIONAL[m]})' for m in optional)}.", ""]
    for row in rows:
        out += model_section(row)
    out += behind(rows)
    return "\n".join(out) + "\n"
