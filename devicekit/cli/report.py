"""`devicekit report RUN... [-o report.html] [--format html|md|json]`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ._common import command, emit_json, handle_errors, info, next_steps, set_mode


def register(app: typer.Typer) -> None:
    @app.command("report")
    @handle_errors
    def report_cmd(
        runs: List[Path] = typer.Argument(
            ..., help="runs/<RUN> directories from `devicekit bench` (several: side by side); a fleet's runs/<FLEET> stands for all its devices."
        ),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here (default: report.html / stdout for md and json)."),
        fmt: str = typer.Option("html", "--format", "-f", help="html | md | json"),
    ):
        """One self-contained HTML report (histogram, latency over time, CDF, side-by-side table), or md/json."""
        from ..errors import UsageError
        from ..fsutil import atomic_write_text
        from ..report import render

        if fmt not in ("html", "md", "json"):
            raise UsageError(f"--format must be html, md or json, got {fmt!r}")
        if fmt == "json" and output is None:
            import json

            set_mode(True)
            emit_json(json.loads(render(runs, "json")))
            return
        set_mode(False)
        text = render(runs, fmt)
        if output is None and fmt == "md":
            typer.echo(text, nl=False)
            return
        out = output or Path("report.html")
        atomic_write_text(out, text)
        from rich.markup import escape

        info(f"report: {escape(str(out))} ({len(runs)} run(s))")
        next_steps(command("open", out))
