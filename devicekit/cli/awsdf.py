"""`devicekit bench MODEL --device awsdf:PROJECT_ARN[/POOL]`: the Device Farm run, rendered (bench.py dispatches here)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from ._common import command, emit_json, info, next_steps, warn


def run_farm(cfg, test_apk: Path | None, json_out: bool) -> None:
    from ..bench.awsdf import run_awsdf
    from ..errors import DeviceError, GateFailed

    try:
        res, error = run_awsdf(cfg, test_apk, log=lambda msg: info(escape(str(msg)))), None
    except (DeviceError, GateFailed) as exc:  # devices failed (exit 3) or a golden gate (exit 1): show what was measured
        res, error = getattr(exc, "result", None), exc
        if res is None:
            raise
    if json_out:
        emit_json(res.to_json())
    else:
        for r in res.runs:
            s, d = r.summary["stats"], r.summary.get("device") or {}
            name = (r.summary.get("farm") or {}).get("device", {}).get("name") or d.get("model")
            g, farm_test = r.summary.get("golden"), (r.summary.get("farm") or {}).get("golden_test") or {}
            info(
                f"[bold]{escape(str(name))}[/] ({escape(str(d.get('os') or '?'))}): {s['frames']} frames, "
                f"p50 {s['p50_ms']} ms, p90 {s['p90_ms']} ms, p99 {s['p99_ms']} ms"
                + (f", golden check {'pass' if g['passed'] else 'FAIL'}" if g else "")
                + f" -> {escape(str(r.run_dir))}"
            )
            if farm_test.get("passed") is False:
                warn(f"{name}: the golden instrumentation test failed on the farm (see {r.run_dir / 'golden_test.txt'})")
        for line in res.failures:
            warn(line)
    if error:
        raise error
    if res.runs and not json_out:
        next_steps(command("devicekit", "report", *[r.run_dir for r in res.runs], "-o", "report.html"))
