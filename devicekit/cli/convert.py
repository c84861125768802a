"""`devicekit convert MODEL --target T`: PyTorch/ONNX to TFLite (and CoreML)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from .. import registry
from ._common import command, emit_json, handle_errors, info, library_output, next_steps, out_console, set_mode, step, warn


def register(app: typer.Typer) -> None:
    @app.command("convert")
    @handle_errors
    def convert_cmd(
        model: str = typer.Argument(..., help="zoo:NAME, a .pt2 (torch.export), a .pt/.ts TorchScript file, a state dict (with --arch), or an .onnx"),
        target: Optional[List[str]] = typer.Option(None, "--target", "-t", help=registry.help_text("targets")),
        out: Optional[Path] = typer.Option(None, "-o", "--output", help="Output folder (default: out/<model>)"),
        input_shape: Optional[str] = typer.Option(None, "--input-shape", help="N,C,H,W (PyTorch layout)"),
        mean: Optional[str] = typer.Option(None, "--mean", help="0-255 pixel units; one value or one per channel"),
        std: Optional[str] = typer.Option(None, "--std", help="0-255 pixel units; one value or one per channel"),
        color: Optional[str] = typer.Option(None, "--color", help="rgb, bgr or gray"),
        calib: Optional[Path] = typer.Option(None, "--calib", help="Folder of real face images for int8 calibration"),
        calib_count: Optional[int] = typer.Option(
            None, "--calib-count", help="How many calibration images (default 64; 16 more are held out for the gate)"
        ),
        calib_min: Optional[int] = typer.Option(None, "--calib-min", help="Fewest good calibration images int8 accepts (default 8)"),
        arch: Optional[str] = typer.Option(None, "--arch", help="package.module:Class for a state dict"),
        arch_args: Optional[str] = typer.Option(None, "--arch-args", help="JSON kwargs for --arch"),
        trust_checkpoint: bool = typer.Option(False, "--trust-checkpoint", help="Allow full unpickling (runs code from the file!)"),
        landmarks: Optional[int] = typer.Option(None, "--landmarks", help="Landmark count of a non-zoo model (for the manifest)"),
        policy: Optional[str] = typer.Option(
            None, "--policy", help="int8 policy: search (default: float only where measured necessary), keep-float-tail, all-int8"
        ),
        gate: Optional[List[str]] = typer.Option(
            None,
            "--gate",
            help="Override a gate limit, KEY=VALUE (fp32.rel_l2, fp16.rel_l2, int8.landmarks_mean_px, int8.top1, int8.cosine, int8.rel_l2); repeatable",
        ),
        no_gate: bool = typer.Option(False, "--no-gate", help="Keep and accept artifacts that fail the gate (exit 0; they stay marked failed)"),
        min_int8_share: Optional[float] = typer.Option(
            None, "--min-int8-share", help="tflite-int8 fails when fewer MACs than this share run in int8 (default 0.9)"
        ),
        max_error: Optional[float] = typer.Option(None, "--max-error", help="Gate: fail when the max coordinate error vs PyTorch exceeds PX"),
        deployment_target: Optional[str] = typer.Option(None, "--deployment-target", help="CoreML: iOS16, iOS17 (default) or iOS18"),
        coreml_input: Optional[str] = typer.Option(None, "--coreml-input", help="CoreML input: image (default; CVPixelBuffer/Vision) or tensor"),
        palettize: Optional[int] = typer.Option(None, "--palettize", help="CoreML: palettise weights to 4, 6 or 8 bits"),
        compute_precision: Optional[str] = typer.Option(None, "--compute-precision", help="CoreML: fp16 or fp32"),
        keep_names: bool = typer.Option(False, "--keep-names", help="Keep TensorFlow's debug names of intermediate tensors (larger file)"),
        no_check: bool = typer.Option(False, "--no-check", help="Skip `devicekit check` on the written artifacts"),
        backend: Optional[str] = typer.Option(None, "--backend", help="TFLite backend: onnx2tf (default) or litert-torch"),
        verify_images: Optional[Path] = typer.Option(
            None,
            "--verify-images",
            help="Faces to verify each artifact on (.pts/.json annotations next to them give NME; default: the annotated faces of the face-data cache)",
        ),
        no_verify: bool = typer.Option(False, "--no-verify", help="Skip the quick verify on faces"),
        max_nme_increase: Optional[float] = typer.Option(
            None,
            "--max-nme-increase",
            help="Gate: fail when the quick verify's NME (inter-ocular, fraction) rises by more than X (0.003 = 0.3 points)",
        ),
        weights: str = typer.Option("shipped", "--weights", help="zoo models: shipped (trained, when available) or random"),
        config: Optional[Path] = typer.Option(None, "--config", help="devicekit.toml (default: ./devicekit.toml if present)"),
        json_out: bool = typer.Option(False, "--json", help="Print a machine-readable result."),
    ):
        """Convert a model to TFLite (fp32/fp16/int8) and CoreML; write a manifest next to each artifact.

        Examples:
          devicekit convert zoo:heatmap2s --target tflite-int8 --calib faces/
          devicekit convert model.pt2 --target all --mean 127.5 --std 128
          devicekit convert weights.pt --arch mypkg.net:Net --input-shape 1,3,112,112 --target tflite-int8
        """
        set_mode(json_out)
        import os

        from ..config import load_project_config, parse_floats, parse_shape
        from ._common import state

        if not state.debug:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter

        cfg = load_project_config(config)
        overrides = {
            "shape": parse_shape(input_shape or cfg.get("input", "shape")),
            "mean": parse_floats(mean if mean is not None else cfg.get("input", "mean"), "--mean"),
            "std": parse_floats(std if std is not None else cfg.get("input", "std"), "--std"),
            "color": color or cfg.get("input", "color"),
        }
        calib_dir = calib or (Path(cfg.get("convert", "calib")) if cfg.get("convert", "calib") else None)
        targets = target or _as_list(cfg.get("convert", "targets", ["tflite-int8"]))  # the command line beats devicekit.toml
        written: list[Path] = []  # the output folder, once known: the library log moves there
        with library_output(lambda: written[0] if written else None):  # TensorFlow/absl logs, warnings, onnx2tf
            with step("load the conversion stack"):
                from devicekit import converters as cv
                from devicekit import pipeline
            with step(f"load {model}"):
                loaded = cv.load_model(
                    # trust and --arch come from the command line only (config.COMMAND_LINE_ONLY)
                    model,
                    spec_overrides=overrides,
                    arch=arch,
                    arch_args=arch_args,
                    trust_checkpoint=trust_checkpoint,
                    landmarks=landmarks,
                    weights=weights,
                )
            if loaded.info.get("weights") == "random-init":
                warn(f"{model} has no trained weights shipped: converting a randomly initialised model")
            opts = cv.ConvertOptions(
                spec=loaded.spec,
                out_dir=out or Path(cfg.get("convert", "output", "out")) / loaded.name,
                calib_dir=calib_dir,
                calib_count=calib_count or cfg.get("convert", "calib_count", 64),
                policy=cv.QuantPolicy.named(policy or cfg.get("convert", "policy", "search")),
                max_error=max_error if max_error is not None else cfg.get("convert", "max_error"),
                gate=cv.GateConfig.parse(
                    gate if gate else cfg.get("convert", "gate"),
                    enabled=not (no_gate or cfg.get("convert", "no_gate", False)),
                    min_int8_share=min_int8_share if min_int8_share is not None else cfg.get("convert", "min_int8_share"),
                ),
                calib_min=calib_min if calib_min is not None else cfg.get("convert", "calib_min", 8),
                backend=backend or cfg.get("convert", "backend", "onnx2tf"),
                check=not no_check,
                verify=bool(not no_verify and cfg.get("convert", "verify", True)),
                verify_images=verify_images or cfg.get("verify", "images"),
                max_nme_increase=max_nme_increase if max_nme_increase is not None else cfg.get("verify", "max_nme_increase"),
                target_options={
                    "keep_names": keep_names or None,
                    "deployment_target": deployment_target,
                    "coreml_input": coreml_input,
                    "palettize": palettize,
                    "compute_precision": compute_precision,
                },
            )
            written.append(opts.out_dir)
            report = pipeline.convert(loaded, targets, opts, step=step, warn=warn)
            if json_out:
                emit_json(report.to_json())
            else:
                render_summary(report)
                info(f"[dim]library output (TensorFlow, onnx2tf, coremltools): {escape(str(opts.out_dir / 'devicekit-convert.log'))}[/]")
            from devicekit.pipeline import raise_on_gates

            raise_on_gates(report)
            first = report.results[0].artifact if report.results else None
            if first and first.suffix == ".mlpackage":
                next_steps(
                    command("devicekit", "check", first),
                    command("devicekit", "package", first, "--platform", "ios"),
                    command("devicekit", "bench", first, "--device", "iphone15pro"),
                )
            elif first:
                next_steps(
                    command("devicekit", "check", first),
                    command("devicekit", "verify", first, "--reference", model, "--images", "FACES/"),
                    command("devicekit", "bench", first, "--device", "host"),
                )


def verify_line(v: dict) -> str:
    """One line for the quick verify of one artifact."""
    if v.get("status") != "ran":
        return f"skipped ({v.get('reason')})"
    parts = [f"{v['faces_total']} face(s) from {v['images']}"]
    ref, conv, d = v.get("reference", {}), v.get("converted", {}), v.get("delta", {})
    if "nme_inter_ocular" in ref and "nme_inter_ocular" in conv:
        parts.append(
            f"NME (inter-ocular) PyTorch {ref['nme_inter_ocular'] * 100:.2f}% -> converted "
            f"{conv['nme_inter_ocular'] * 100:.2f}% ({d['nme_inter_ocular'] * 100:+.3f} points)"
        )
    elif conv.get("status") == "not verified":
        parts.append(conv.get("reason", "not verified"))
    if "agreement" in v:
        parts.append(f"agreement mean {v['agreement']['mean']:.3f} / max {v['agreement']['max']:.3f} image px")
    return "; ".join(parts)


def gate_line(a: dict) -> str:
    """One line for one agreement (converters.judge / runtime.compare JSON)."""
    parts = []
    for h in a.get("heads", []):
        if h["kind"] == "landmarks":
            v = f"{h['mean_px']:.3g} px mean, {h['max_px']:.3g} max"
        elif h["kind"] == "classifier":
            ties = f" ({h['top1_ties']} between tied classes)" if h.get("top1_ties") else ""
            v = f"top-1 {h['top1']:.0%}{ties}, top-5 {h['top5']:.0%}, cosine >= {h['cosine_min']:.4f}"
        else:
            v = f"rel-L2 {h['rel_l2']:.2g}, max abs {h['max_abs']:.2g}"
        parts.append(f"{h['name']} ({h['kind']}) {v}{'' if h['passed'] else ' FAIL'}")
    return f"{a.get('on')}: " + "; ".join(parts)


def _as_list(v):
    return v if isinstance(v, list) else [v]


def render_summary(report) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"devicekit convert: {escape(str(report.model.get('source')))}", show_lines=False)
    for col in ("", "target", "file", "size", "ops", "float ops (int8)", "error vs PyTorch", "time"):
        t.add_column(col)
    for r in report.results:
        s = r.summary
        err = s.get("error", {})
        if err.get("verified") is False:
            e = err["reason"]
        elif "mean_px" in err:
            e = f"mean {err['mean_px']:.3f} px, max {err['max_px']:.3f} px"
            if "mean_cells" in err:
                e += f" ({err['mean_cells']:.3f}/{err['max_cells']:.3f} heatmap px)"
        elif err:
            e = f"max abs {err.get('max_abs', 0):.2e} (rel {err.get('max_rel', 0):.1e})"
        else:
            e = "-"
        ops = s.get("op_counts", {})
        top = ", ".join(f"{k}x{v}" for k, v in list(ops.items())[:6])
        fl = s.get("float_ops")
        floats = "-" if fl is None else (", ".join(sorted({f["op"] for f in fl})) or "none")
        mark = {"verified": "[green]✓[/]", "failed": "[bold red]✗ FAILED[/]"}.get(r.status, "[yellow]? unverified[/]")
        t.add_row(
            mark,
            r.target,
            escape(r.artifact.name),
            f"{s.get('size_bytes', 0) / 1024:.0f} KB",
            f"{sum(ops.values())}: {top}",
            floats,
            escape(e),
            f"{r.seconds:.1f} s",
        )
    out_console.print(t)
    for r in report.results:
        gate = r.summary.get("gate") or {}
        for key in ("calibration", "holdout", "vs_fp32"):
            a = gate.get(key)
            if a:
                info(f"  {r.target} {key.replace('_', ' ')}: {escape(gate_line(a))}")
        for f in gate.get("failures", []):
            info(f"  [bold red]{r.target} gate failed[/]: {escape(f)}")
        if gate.get("not_run"):
            info(f"  [yellow]{r.target}[/]: {escape(gate['not_run'])}")
        if s_share := r.summary.get("int8_mac_share"):
            info(f"  {r.target}: {s_share:.1%} of MACs and {r.summary.get('int8_weight_share', 0):.1%} of weight bytes in int8")
        for reg in r.summary.get("float_regions") or []:
            info(
                f"  {r.target}: float region {escape(reg['region'])}: gate score {reg['score_without']:.3g} -> {reg['score_with']:.3g} "
                f"(1 = at the limits), costs {reg['extra_bytes'] or 0} B, {reg['macs'] or 0:,} MACs"
            )
    for r in report.results:
        for f in {(f["op"], f.get("why", "left float by the converter")) for f in r.summary.get("float_ops") or []}:
            info(f"  {r.target}: {f[0]} stays float: {f[1]}")
    for r in report.results:
        path = r.summary.get("error", {}).get("path")
        if path:
            info(f"  {r.target} verified with the {path}")
    for r in report.results:
        v = r.summary.get("verify")
        if v:
            info(f"  {r.target} verify: {verify_line(v)}")
    for r in report.results:
        chk = r.summary.get("check")
        if chk:
            share = f"{chk['play_apk_share'] * 100:.2f}% of play-apk" if chk.get("play_apk_share") is not None else ""
            mem = f", peak activations {chk['peak_activation_bytes'] / 1024:.0f} KB" if chk.get("peak_activation_bytes") else ""
            info(
                f"  {r.target} check: {share}{mem}; {len(chk['findings'])} warning(s)"
                + (f": {chk['findings'][0]['message']}" if chk["findings"] else "")
            )
    cal = report.calibration
    info(
        f"calibration: {cal.get('count')} {'SYNTHETIC ' if cal.get('synthetic') else ''}image(s) from {cal.get('source')}, {cal.get('skipped')} skipped"
        + (f", {cal['no_face_frames']} video frame(s) without a face left out" if cal.get("no_face_frames") else "")
    )
