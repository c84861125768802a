"""`devicekit package ARTIFACT --platform android|ios`: an Android Studio or Xcode project with the model embedded."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from .. import registry
from ._common import command, emit_json, handle_errors, info, next_steps, set_mode, warn


def register(app: typer.Typer) -> None:
    @app.command("package")
    @handle_errors
    def package_cmd(
        artifact: Path = typer.Argument(..., help="A converted model with its manifest (.tflite for android, .mlpackage for ios)."),
        platform: str = typer.Option(..., "--platform", "-p", help=registry.help_text("platforms")),
        out: Optional[Path] = typer.Option(None, "-o", "--out", help="Output folder (default ./<model>-<platform>)."),
        app_id: str = typer.Option("com.devicekit.bench", "--app-id", help="Android application id / iOS bundle id (a Java package name)."),
        name: str = typer.Option("FaceLandmarker", "--name", help="The landmarker class name (a Kotlin and Swift type name)."),
        coreml: Optional[Path] = typer.Option(None, "--coreml", help="iOS: the CoreML .mlpackage when ARTIFACT is a .tflite."),
        abi: Optional[List[str]] = typer.Option(None, "--abi", help="Android ABIs to ship (repeatable; default arm64-v8a, armeabi-v7a)."),
        force: bool = typer.Option(False, "--force", help="Replace an output folder that devicekit package generated before."),
        check: bool = typer.Option(
            False,
            "--check",
            help="Run the static checks on the result (parsers, XML/plist, pbxproj, sha256, constants); exit 1 on a problem. Needs the test extra (tree-sitter-language-pack).",
        ),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object (the RenderResult) to stdout."),
    ):
        """Render mobile_templates/ into a project that embeds the model; every value comes from the manifest.

        Examples:
          devicekit package out/heatmap2s.tflite-int8.tflite --platform android
          devicekit package out/heatmap2s.coreml-fp16.mlpackage --platform ios -o HeatmapIOS --app-id com.example.face
        """
        set_mode(json_out)
        from .. import mobile_templates  # noqa: F401  (attaches the android, ios and web packagers to the registry)
        from ..registry import packager_for

        # an unknown platform, or a model format the platform's apps do not embed: one line from the registry
        model_file = coreml if coreml is not None and platform == "ios" else artifact
        if model_file.name.endswith(".json"):  # a manifest: its artifact is beside it
            model_file = model_file.with_name(model_file.name[: -len(".json")])
        if not model_file.exists():
            from ..errors import InputError

            raise InputError(f"artifact {model_file} does not exist")
        target = packager_for(platform, model_file)
        out_dir = out or Path(f"{artifact.name.split('.')[0]}-{platform}")
        if target.name == "web":
            return _package_web(target, artifact, out_dir, force, json_out)
        res = target.packager(artifact, out_dir, app_id=app_id, name=name, force=force, coreml=coreml, abis=abi)
        for w in res.warnings:
            warn(w)
        problems = _check(res.out_dir) if check else []
        if json_out:
            emit_json({**res.to_json(), "problems": problems if check else None})
            _fail_on(problems)
            return
        f = res.facts
        info(f"[green]✓[/] {platform} project in [bold]{escape(str(res.out_dir))}[/] ({len(res.files)} files)")
        info(
            escape(
                f"  model {res.model_file}: {f.width}x{f.height} {f.color}, {f.input_dtype} input, {f.num_landmarks} landmarks, "
                f"crop enlarge {f.crop['enlarge']} shift_y {f.crop['shift_y']}"
            )
        )
        golden = res.out_dir / res.golden_dir / "golden.json" if res.golden_dir else None
        if golden is not None and golden.exists():
            import json

            g = json.loads(golden.read_text())
            if g.get("outputs"):
                info(
                    escape(
                        f"  golden test: {res.golden_dir}/ (reference: {g['source']}; gate "
                        + ", ".join(f"{k} {v:g}" for k, v in g["gate"].items())
                        + ")"
                    )
                )
        if res.size:
            s = res.size
            verdict = "[green]fits[/]" if s["fits"] else "[bold red]over[/]"
            info(
                f"  APK estimate: model {s['model_bytes'] / 1e6:.2f} MB + LiteRT runtime {s['runtime_bytes'] / 1e6:.2f} MB "
                f"({', '.join(s['abis'])}) = {s['total_bytes'] / 1e6:.2f} MB, {100 * s['share']:.1f}% of {s['budget']} "
                f"({s['budget_bytes'] / 1e6:.0f} MB): {verdict}"
            )
        if check:
            info(f"  static checks: {'[green]all pass[/]' if not problems else f'[bold red]{len(problems)} problem(s)[/]'}")
            for p in problems:
                warn(p)
            _fail_on(problems)
        if platform == "android":
            next_steps(
                f"{command('cd', res.out_dir)} && ./gradlew :app:connectedAndroidTest (the golden test on a phone)",
                command("devicekit", "bench", artifact, "--device", "SERIAL", "--app-id", res.app_id, "--golden"),
            )
        else:
            next_steps(
                f"{command('open', res.out_dir / (res.name + 'Demo.xcodeproj'))} in Xcode (Product > Test runs the golden test)",
                command("devicekit", "bench", artifact, "--device", "UDID", "--app-id", res.app_id, "--team", "TEAMID", "--golden"),
            )


def _package_web(target, artifact: Path, out_dir: Path, force: bool, json_out: bool) -> None:
    res = target.packager(artifact, out_dir, force=force)
    for w in res.warnings:
        warn(w)
    if json_out:
        emit_json(res.to_json())
        return
    c = res.config
    info(f"[green]✓[/] web app in [bold]{escape(str(res.out_dir))}[/] ({len(res.files)} files, LiteRT.js {res.litertjs_version})")
    info(
        escape(
            f"  model {res.model_file}: {c['inputWidth']}x{c['inputHeight']} {c['color']}, {c['inputDtype']} input, "
            f"{c['numLandmarks']} landmarks, crop enlarge {c['cropEnlarge']} shift_y {c['cropShiftY']}"
        )
    )
    next_steps(f"serve {command(res.out_dir)} with COOP/COEP headers (threads), or: " + command("devicekit", "bench", artifact, "--device", "chrome"))


def _check(out_dir: Path) -> list[str]:
    try:
        import tree_sitter_language_pack  # noqa: F401
    except ImportError:
        from ..errors import EnvironmentMissing

        raise EnvironmentMissing("--check needs tree-sitter-language-pack", hint="pip install 'devicekit[test]'") from None
    from ..mobile_templates.checks import check_project

    return check_project(out_dir)


def _fail_on(problems: list[str]) -> None:
    if problems:
        from ..errors import GateFailed

        raise GateFailed(f"{len(problems)} static check(s) failed: {problems[0]}")
