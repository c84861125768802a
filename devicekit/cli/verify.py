"""`devicekit verify ARTIFACT --reference MODEL --images DIR`: converted vs PyTorch on real faces."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import command, emit_json, handle_errors, info, next_steps, set_mode, step


def register(app: typer.Typer) -> None:
    @app.command("verify")
    @handle_errors
    def verify_cmd(
        artifact: Path = typer.Argument(..., help="The converted model (.tflite, or .mlpackage run in devicekit's MIL reference interpreter)"),
        reference: Optional[str] = typer.Option(None, "--reference", "-r", help="The PyTorch model it came from: zoo:NAME or a checkpoint as `convert` takes"),
        images: Optional[Path] = typer.Option(None, "--images", help="Folder (or one file) of face images"),
        annotations: Optional[Path] = typer.Option(None, "--annotations", help="Folder of iBUG .pts (1-based) / .json by image stem, or one JSON file; default: next to each image"),
        video: Optional[Path] = typer.Option(None, "--video", help="A video with a mostly still face: jitter raw vs 1-euro filtered"),
        report: Optional[Path] = typer.Option(None, "--report", help="Write verify.html (single file), ced.png and verify.json here"),
        max_nme_increase: Optional[float] = typer.Option(None, "--max-nme-increase", help="Gate: fail when NME (inter-ocular, fraction) rises by more than X (0.003 = 0.3 points)"),
        max_fr_increase: Optional[float] = typer.Option(None, "--max-fr-increase", help="Gate: fail when the failure rate at 0.08 or 0.10 rises by more than X (fraction)"),
        config: Optional[Path] = typer.Option(None, "--config", help="devicekit.toml (default: ./devicekit.toml if present)"),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object: reference, converted, delta, agreement."),
    ):
        """Run the reference and the converted model on the same face crops; NME, FR, AUC, CED, jitter.

        Examples:
          devicekit verify out/heatmap2s/heatmap2s.tflite-int8.tflite --reference zoo:heatmap2s --images faces/
          devicekit verify model.tflite -r zoo:heatmap2s --images faces/ --video clip.mp4 --report report/ --max-nme-increase 0.003
        """
        set_mode(json_out)
        from ..config import load_project_config
        from ..errors import UsageError
        from ..pipeline import verify as run_verify
        from ..verify.run import public, raise_on_gates

        cfg = load_project_config(config)
        if reference is None and cfg.get("model", "source"):
            reference = cfg.get("model", "source")
            if not reference.startswith("zoo:"):  # a config file never names code to load (config.COMMAND_LINE_ONLY)
                raise UsageError(f"{cfg.path}: model.source {reference!r} is a file; a reference that is loaded as a "
                                 "program must be named on the command line", hint=f"pass --reference {reference}")
            info(f"reference {reference} (model.source in {cfg.path})")
        images = images or (Path(cfg.get("verify", "images")) if cfg.get("verify", "images") else None)
        if not reference:
            raise UsageError("--reference is required (zoo:NAME or the checkpoint the artifact was converted from)")
        if images is None:
            raise UsageError("--images is required (a folder of face photos)")
        res = run_verify(
            artifact, reference, images,
            annotations=annotations or cfg.get("verify", "annotations"),
            video=video or cfg.get("verify", "video"),
            report_dir=report,
            max_nme_increase=max_nme_increase if max_nme_increase is not None else cfg.get("verify", "max_nme_increase"),
            max_fr_increase=max_fr_increase if max_fr_increase is not None else cfg.get("verify", "max_fr_increase"),
            step=step,
        )
        pub = public(res)
        if json_out:
            emit_json(pub)
        else:
            _render(pub)
        raise_on_gates(res)
        nxt = [command("devicekit", "package", artifact, "--platform", "android")]
        if report is None:
            nxt.insert(0, command("devicekit", "verify", artifact, "-r", reference, "--images", images, "--report", "verify-report"))
        next_steps(*nxt)


def _render(r: dict) -> None:
    from rich.markup import escape as esc
    from rich.table import Table

    from ._common import err_console

    conv = r.get("converted", {})
    if "nme_inter_ocular" in r.get("reference", {}):
        t = Table(title=f"{r['annotated']} annotated face(s)")
        t.add_column("metric")
        for c in ("reference", "converted", "delta"):
            t.add_column(c, justify="right")
        for k in ("nme_inter_ocular", "nme_inter_pupil", "fr_0.08", "fr_0.10", "auc_0.08", "auc_0.10"):
            t.add_row(k, *(f"{r[c][k]:.4f}" if k in r.get(c, {}) else "-" for c in ("reference", "converted", "delta")))
        err_console.print(t)
    else:
        info(f"no annotations: agreement only ({r['faces_total']} face(s))")
    if conv.get("status") == "not verified":
        info(f"[yellow]converted: {esc(str(conv['reason']))}[/]")
    if "agreement" in r:
        a = r["agreement"]
        info(f"agreement converted vs reference: mean {a['mean']:.3f} px, max {a['max']:.3f} px (image pixels)")
    if r.get("skipped"):
        info(f"skipped {len(r['skipped'])} image(s): " + esc(", ".join(f"{Path(s['image']).name} ({s['reason']})" for s in r["skipped"][:5])))
    v = r.get("video")
    if v:
        for name in ("reference", "converted"):
            if name in v:
                info(f"video jitter {name}: step {v[name]['raw']['step_px']:.3f} px raw -> {v[name]['filtered']['step_px']:.3f} px "
                     f"1-euro filtered ({v['tracked']} frames)")
    if r.get("report"):
        info(f"report: {esc(str(r['report']['html']))}")
    for f in r["gates"]["failures"]:
        info(f"[red]gate failed:[/] {esc(f)}")
