"""`devicekit zoo`: the built-in models with params, MACs and input spec."""

from __future__ import annotations

import typer

from ._common import emit_json, handle_errors, next_steps, out_console, set_mode


def register(app: typer.Typer) -> None:
    @app.command("zoo")
    @handle_errors
    def zoo_cmd(json_out: bool = typer.Option(False, "--json", help="Print a machine-readable result.")):
        """List zoo models (params, MACs, input spec). Needs torch to count params and MACs."""
        set_mode(json_out)
        from ..zoo import ZOO
        from ..zoo.stats import model_stats

        rows = []
        for name, e in ZOO.items():
            st = model_stats(e)
            rows.append(
                {
                    "name": f"zoo:{name}",
                    "seed": e.seed,
                    "task": e.task,
                    "params": st["params"],
                    "macs": st["macs"],
                    "fp32_bytes": st["params"] * 4,
                    "input": e.input.to_json(),
                    "landmarks": e.landmarks,
                    "weights": "trained" if e.weights_path else "random-init",
                    "paper": e.paper,
                    "summary": e.summary,
                }
            )
        if json_out:
            emit_json({"models": rows})
            return
        from rich.table import Table

        t = Table(title="devicekit zoo")
        for col in ("model", "seed", "params", "paper params", "MACs", "fp32 MB", "input", "norm", "weights"):
            t.add_column(col, justify="right" if col in ("params", "paper params", "MACs", "fp32 MB") else "left")
        for r in rows:
            i = r["input"]
            t.add_row(
                r["name"],
                r["seed"],
                f"{r['params']:,}",
                f"{int(r['paper']['params']):,}" if "params" in r["paper"] else "-",
                f"{r['macs'] / 1e6:.1f}M",
                f"{r['fp32_bytes'] / 2**20:.2f}",
                f"{'x'.join(map(str, i['shape']))} {i['color']}",
                f"mean {i['mean'][0]:g} std {i['std'][0]:g}",
                r["weights"],
            )
        out_console.print(t)
        next_steps("devicekit convert zoo:heatmap2s --target tflite-int8")
