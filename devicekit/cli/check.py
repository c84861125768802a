"""`devicekit check ARTIFACT`: size budgets, op compatibility per runtime, int8 purity, MACs and activation memory.

Exit 0 when every requested gate passes, 1 when a budget, --require or
--runtime gate fails (for CI), 2 on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import registry
from ._common import command, emit_json, handle_errors, next_steps, out_console, set_mode, warn

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "info": "dim"}


def register(app: typer.Typer) -> None:
    @app.command("check")
    @handle_errors
    def check_cmd(
        artifact: Path = typer.Argument(..., help="A .tflite, .onnx or .mlpackage (any, not only devicekit's)."),
        budget: Optional[List[str]] = typer.Option(
            None,
            "--budget",
            "-b",
            help="NAME (play-apk, play-base, play-asset-pack, appstore-cellular) or NAME=BYTES (e.g. app=50MB). Repeatable; default play-apk.",
        ),
        runtime: Optional[List[str]] = typer.Option(None, "--runtime", "-r", help=registry.help_text("runtimes")),
        require: Optional[List[str]] = typer.Option(None, "--require", help="Gate: int8 (every op runs in int8)."),
        memory_limit: Optional[str] = typer.Option(None, "--memory-limit", help="Gate: peak activation memory, e.g. 8MB."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object (the CheckReport) to stdout."),
        layers: int = typer.Option(5, "--layers", min=0, max=100_000, help="Rows of the per-layer weight table."),
    ):
        """Check a model file against store budgets, runtimes and delegates; exit 1 when a gate fails.

        Examples:
          devicekit check face.tflite
          devicekit check model.int8.tflite --budget play-apk --budget app=20MB --runtime gpu --require int8 --json
        """
        set_mode(json_out)
        from ..check import run_checks
        from ..check.rules import parse_bytes

        limit = parse_bytes(memory_limit) if memory_limit else None
        report = run_checks(artifact, budgets=budget, runtimes=runtime, require=require, memory_limit=limit)
        if json_out:
            emit_json(report.to_json())
        else:
            _render(report, layers)
        if not report.ok:
            from ..errors import GateFailed

            raise GateFailed(f"{len(report.failed)} gate(s) failed: " + ", ".join(r.check for r in report.failed))
        if not json_out:
            next_steps(command("devicekit", "verify", artifact, "--reference", "MODEL"), command("devicekit", "bench", artifact, "--device", "host"))


def _render(report, n_layers: int) -> None:
    """Tables of the report. Everything that comes from the file (paths, op, tensor and layer names, messages
    quoting them) is escaped: a hostile file's names are shown as written, never read as rich markup."""
    from rich.markup import escape as esc
    from rich.table import Table

    from ..check.graph import human_bytes

    s = report.sections
    out_console.print(f"[bold]{esc(str(report.path))}[/] ({report.format}, {s['model']['ops']} ops, {s['compute']['total_macs'] / 1e6:.1f}M MACs)")
    t = Table(title="checks", show_lines=False)
    for col in ("check", "status", "result", "hint"):
        t.add_column(col, overflow="fold")
    for r in report.results:
        status = r.status + (" (gate)" if r.gate else "")
        t.add_row(esc(r.check), f"[{_STYLE[r.status]}]{status}[/]", esc(r.message), esc(r.hint or ""))
    out_console.print(t)
    ops = Table(title="ops")
    cols = ["op", "version", "kind", "count", "MACs"]
    if report.format == "tflite":
        cols += ["min runtime", "xnnpack", "gpu"]
    for c in cols:
        ops.add_column(c, justify="right" if c in ("count", "MACs", "version") else "left", overflow="fold")
    for r in sorted(s["ops"], key=lambda r: (-r["macs"], -r["count"])):
        row = [esc(str(r["op"])), str(r["version"]), r["kind"], str(r["count"]), f"{r['macs'] / 1e6:.2f}M"]
        if report.format == "tflite":
            row += [
                r.get("min_runtime") or "-",
                "yes" if not r.get("xnnpack") else f"[yellow]no[/] ({esc(r['xnnpack'])})",
                "yes" if not r.get("gpu") else f"[yellow]no[/] ({esc(r['gpu'])})",
            ]
        ops.add_row(*row)
    out_console.print(ops)
    size = s["size"]
    if size["layers"]:
        lt = Table(title=f"weights by layer (top {min(n_layers, len(size['layers']))} of {size['layers_total']})")
        for c in ("op", "type", "output", "bytes", "share"):
            lt.add_column(c)
        tot = max(size["weight_bytes"], 1)
        for r in size["layers"][:n_layers]:
            lt.add_row(str(r["op"]), esc(str(r["type"])), esc(str(r["name"])[:40]), human_bytes(r["bytes"]), f"{r['bytes'] / tot:.0%}")
        out_console.print(lt)
    wi = size["what_if"]
    parts = [f"{k}: {human_bytes(v)}" for k, v in wi.items() if v]
    for row in size["extra_pool_what_if"]:
        parts.append(
            f"+{row['extra_pools']} pool before first FC: {human_bytes(row['model_bytes'])}"
            + (f" ({human_bytes(row['int8_model_bytes'])} int8)" if row.get("int8_model_bytes") else "")
        )
    if parts:
        out_console.print("what-if sizes: " + esc("; ".join(parts)))
    for note in report.notes:
        warn(note)
