"""Android Studio and Xcode projects rendered from an artifact's manifest.

``render(artifact, platform, out_dir, ...)`` is the one entry point (the CLI's
``devicekit package`` and the bench tooling call it). The template trees
``android/`` and ``ios/`` are package data; every value they need comes from
the artifact's manifest (see ``context.py``). Placeholders are ``@@NAME@@`` in
file contents and ``__NAME__`` in paths; a rendered project holds none.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from devicekit.errors import InputError, UsageError
from devicekit.fsutil import jsonable

from .context import ModelFacts, code_values, model_facts, validate_app_id, validate_name

TEMPLATES = Path(__file__).resolve().parent
PLATFORMS = ("android", "ios")  # the ones rendered here; the registry has them all (devicekit.registry.PLATFORMS)
MARKER = "devicekit-package.json"
PLACEHOLDER = re.compile(r"@@[A-Z0-9_]+@@|__(?:LIBMODULE|LIBPKG|APPPKG|CLASS|APP|KIT)__")
BINARY_SUFFIXES = {".tflite", ".png", ".jar", ".bat"}  # copied byte for byte (gradlew.bat keeps its CRLF)
# x86_64 too: the default Android Studio emulator is x86_64 and rejects an APK without it
DEFAULT_ABIS = ["arm64-v8a", "armeabi-v7a", "x86_64"]
# Where each platform's golden test finds its data (golden.json, golden_input.bin, golden_face.png)
GOLDEN_DIRS = {"android": "app/src/androidTest/assets/golden", "ios": "{APP}Tests/Golden"}
ANDROID_RUNTIME = "litert 2.1.0 (com.google.ai.edge.litert:litert, CompiledModel)"  # gradle/libs.versions.toml
DEFAULT_APP_ID = "com.devicekit.bench"  # DEVICE_PROTOCOL.md's default package / bundle id
DEFAULT_NAME = "FaceLandmarker"


@dataclass
class RenderResult:
    platform: str
    out_dir: Path
    app_id: str
    name: str
    model_file: str  # the embedded model, relative to out_dir
    files: list[str]  # every file written, relative to out_dir
    facts: ModelFacts
    size: dict | None = None  # APK size estimate (android)
    warnings: list[str] = field(default_factory=list)
    golden_dir: str = ""  # where the golden test's data is, relative to out_dir
    schema: int = 2

    def to_json(self) -> dict:
        return jsonable(self)


def _read(artifact: Path, what: str):
    from devicekit.manifest import read_manifest

    if not artifact.exists():
        raise InputError(f"{what} {artifact} does not exist")
    return read_manifest(artifact)


def _subst(text: str, values: dict[str, str], where: str) -> str:
    out = re.sub(r"@@([A-Z0-9_]+)@@", lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), text)
    left = PLACEHOLDER.findall(out)
    if left:
        raise RuntimeError(f"template {where} has unknown placeholders {sorted(set(left))}")
    return out


def _code_string(s: str) -> str:
    """Text safe inside a Kotlin or Swift string literal (no quotes, escapes or interpolation)."""
    return re.sub(r"[^A-Za-z0-9_.:/ +-]", "_", s)


def _render_tree(platform: str, dest: Path, values: dict[str, str], paths: dict[str, str]) -> list[str]:
    src_root = TEMPLATES / platform
    written = []
    for src in sorted(src_root.rglob("*")):
        if not src.is_file() or "__pycache__" in src.parts or src.suffix in (".pyc",):
            continue
        rel = src.relative_to(src_root).as_posix()
        for k, v in paths.items():
            rel = rel.replace(k, v)
        rel = "/".join("." + p[4:] if p.startswith("dot_") else p for p in rel.split("/"))
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix in BINARY_SUFFIXES:
            shutil.copyfile(src, target)
        else:
            target.write_text(_subst(src.read_text(encoding="utf-8"), values, rel), encoding="utf-8")
        shutil.copymode(src, target)
        if target.name == "gradlew":  # an install that dropped the mode bit must not leave a wrapper that cannot run
            target.chmod(0o755)
        written.append(rel)
    return written


def apk_estimate(model_bytes: int, abis: list[str], gpu: bool = True, budget: str = "play-apk") -> dict:
    """Model plus the LiteRT runtime for ``abis`` against a store budget (data: devicekit/data/litert_runtime.json)."""
    data = json.loads((_data_dir() / "litert_runtime.json").read_text())
    budgets = json.loads((_data_dir() / "rules" / "budgets.json").read_text())["budgets"]
    if budget not in budgets:
        raise UsageError(f"unknown budget {budget!r} (one of {', '.join(budgets)})")
    runtime = 0
    per_abi = {}
    for abi in abis:
        if abi not in data["abis"]:
            raise UsageError(f"unknown ABI {abi!r} (one of {', '.join(data['abis'])})")
        parts = ["interpreter", "gpu"] if gpu else ["interpreter"]
        per_abi[abi] = sum(data["abis"][abi][p]["apk_bytes"] for p in parts)
        runtime += per_abi[abi]
    total = model_bytes + runtime
    limit = budgets[budget]["bytes"]
    return {"model_bytes": model_bytes, "runtime_bytes": runtime, "runtime_per_abi": per_abi, "abis": list(abis),
            "gpu_delegate": gpu, "total_bytes": total, "budget": budget, "budget_bytes": limit,
            "share": total / limit, "fits": total <= limit,
            "note": "model (stored uncompressed) + LiteRT native libraries; the rest of the app (CameraX, ML Kit, your code) comes on top. Runtime sizes are estimates with sources in devicekit/data/litert_runtime.json."}


def _data_dir() -> Path:
    import devicekit

    return Path(devicekit.__file__).resolve().parent / "data"


def _prepare_out(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} exists and is not a directory")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise UsageError(f"{out_dir} exists and is not empty", hint="pass --force to replace a project devicekit generated, or choose another -o")
        if not (out_dir / MARKER).exists():
            raise UsageError(f"{out_dir} is not empty and was not generated by devicekit package; refusing to replace it even with --force")
        theirs = user_files(out_dir)
        if theirs:  # --force replaces what devicekit generated, never what the user added or changed
            more = f" and {len(theirs) - 8} more" if len(theirs) > 8 else ""
            raise UsageError(f"{out_dir} holds files devicekit did not generate (or that were changed since): "
                             f"{', '.join(theirs[:8])}{more}; refusing to replace it even with --force",
                             hint="move them out of the project first, or choose another -o")


# made by the IDE and the build, not by the user: replaced without asking
REGENERATED = ("build/", ".gradle/", ".idea/", ".cxx/", "local.properties", "DerivedData/", "xcuserdata/", ".DS_Store")


def file_digests(root: Path, files: list[str]) -> dict[str, str]:
    """{relative path: sha256} of the files a render wrote (recorded in the marker, checked by --force)."""
    from devicekit.fsutil import sha256_file

    return {f: sha256_file(root / f) for f in files if (root / f).is_file()}


def user_files(out_dir: Path) -> list[str]:
    """Files under a generated project that its marker does not record as written by devicekit (with the same
    content): what --force would otherwise delete."""
    try:
        recorded = json.loads((out_dir / MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if not isinstance(recorded, dict):
        return [f"(the project's {MARKER} does not list its files: generated by an older devicekit, so your files "
                "cannot be told from generated ones)"]
    from devicekit.fsutil import sha256_file

    out = []
    for p in sorted(q for q in out_dir.rglob("*") if q.is_file()):
        rel = p.relative_to(out_dir).as_posix()
        if rel == MARKER or any(rel.startswith(r) or f"/{r}" in f"/{rel}" for r in REGENERATED):
            continue
        if recorded.get(rel) != sha256_file(p):
            out.append(rel)
    return out


def render(
    artifact: str | Path,
    platform: str,
    out_dir: str | Path,
    app_id: str = DEFAULT_APP_ID,
    name: str = DEFAULT_NAME,
    force: bool = False,
    coreml: str | Path | None = None,
    abis: list[str] | None = None,
) -> RenderResult:
    """Render the ``platform`` project for ``artifact`` into ``out_dir``.

    ``artifact`` is the model file or its manifest (``<artifact>.json``). Android needs a ``.tflite`` artifact; iOS needs a CoreML ``.mlpackage``
    (the artifact itself, or ``coreml=`` when the artifact is a ``.tflite``).
    The project is built in a temporary sibling directory and moved into place.
    """
    if platform not in PLATFORMS:
        raise UsageError(f"--platform must be one of {', '.join(PLATFORMS)}, got {platform!r}")
    app_id = validate_app_id(app_id)
    name = validate_name(name)
    artifact = Path(artifact)
    if artifact.name.endswith((".tflite.json", ".mlpackage.json")):  # a manifest path: its artifact is beside it
        artifact = artifact.with_name(artifact.name[: -len(".json")])
    manifest = _read(artifact, "artifact")
    model_path, model_manifest = artifact, manifest
    if platform == "android" and manifest.format != "tflite":
        raise InputError(f"--platform android needs a .tflite artifact; {artifact.name} is {manifest.format}",
                         hint="devicekit convert MODEL --target tflite-int8")
    if platform == "ios":
        if coreml is not None:
            model_path = Path(coreml)
            model_manifest = _read(model_path, "--coreml")
        if model_manifest.format != "coreml" or model_path.suffix != ".mlpackage":
            raise InputError(f"--platform ios needs a CoreML .mlpackage; {model_path.name} is {model_manifest.format}",
                             hint="devicekit convert MODEL --target coreml-fp16, then pass it as ARTIFACT or with --coreml")
    facts = model_facts(model_manifest)
    from devicekit.manifest import check_unchanged

    actual = check_unchanged(model_path, model_manifest)
    out_dir = Path(out_dir)
    _prepare_out(out_dir, force)
    warnings = [f"the manifest has no {d}; used the documented default" for d in facts.defaults_used]
    from devicekit.app.golden import make_golden

    try:
        golden_doc, golden_input = make_golden(model_path, model_manifest, facts)
    except InputError as exc:  # the project still renders; its golden test reports why it has no data
        golden_doc, golden_input = {"protocol": 2, "unavailable": exc.message, "outputs": []}, b""
        warnings.append(f"golden test data: {exc.message}")
    values = {k: (_code_string(v) if k in ("MODEL_NAME", "LANDMARK_LAYOUT", "INPUT_TENSOR", "OUTPUT_TENSOR") else v)
              for k, v in code_values(facts).items()}
    lib_module = name.lower()
    lib_pkg = f"{app_id}.{lib_module}"
    model_file = f"{_code_string(facts.name).replace(' ', '_')}{'.tflite' if platform == 'android' else '.mlpackage'}"
    values.update({
        "APP_ID": app_id, "CLASS": name, "LIB_MODULE": lib_module, "LIB_PKG": lib_pkg, "APP_LABEL": f"{name} demo",
        "PROJECT_NAME": f"{name}Demo", "MODEL_ASSET": model_file, "MANIFEST_NAME": _code_string(model_manifest.artifact + ".json"),
        "KIT": f"{name}Kit", "APP": f"{name}Demo", "ANDROID_RUNTIME": ANDROID_RUNTIME,
    })
    size = None
    if platform == "android":
        abis = abis or list(DEFAULT_ABIS)
        size = apk_estimate(facts.size_bytes or model_path.stat().st_size, abis)
        values["ABI_FILTERS"] = ", ".join(f'"{a}"' for a in abis)
        paths = {"__LIBMODULE__": lib_module, "__LIBPKG__": lib_pkg.replace(".", "/"),
                 "__APPPKG__": app_id.replace(".", "/"), "__CLASS__": name}
    else:
        paths = {"__KIT__": values["KIT"], "__APP__": values["APP"], "__CLASS__": name}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        files = _render_tree(platform, tmp, values, paths)
        if platform == "android":
            rel_model = f"{lib_module}/src/main/assets/{model_file}"
            (tmp / rel_model).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_path, tmp / rel_model)
            files.append(rel_model)
        else:
            from .xcode import write_xcode_project

            rel_model = f"{values['KIT']}/Sources/{values['KIT']}/Resources/{model_file}"
            shutil.copytree(model_path, tmp / rel_model)
            files += [f"{rel_model}/{p.relative_to(model_path).as_posix()}" for p in sorted(model_path.rglob("*")) if p.is_file()]
        files += _write_golden(tmp, GOLDEN_DIRS[platform].replace("{APP}", values["APP"]), golden_doc, golden_input)
        if platform == "ios":
            tests = tmp / f"{values['APP']}Tests"
            files += write_xcode_project(tmp, values, [p.relative_to(tests).as_posix() for p in sorted(tests.rglob("*")) if p.is_file()])
        marker = {"schema": 2, "platform": platform, "artifact": str(model_path.resolve()), "sha256": actual,
                  "app_id": app_id, "name": name, "model_file": rel_model,
                  "golden_dir": GOLDEN_DIRS[platform].replace("{APP}", values["APP"]), "files": file_digests(tmp, files)}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        files.append(MARKER)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _record(model_path, platform, facts, golden_doc)
    return RenderResult(platform, out_dir, app_id, name, rel_model, sorted(files), facts, size, warnings,
                        GOLDEN_DIRS[platform].replace("{APP}", values["APP"]))


def _write_golden(root: Path, rel: str, doc: dict, data: bytes) -> list[str]:
    """golden.json, golden_input.bin and golden_face.png where the platform's golden test reads them."""
    from devicekit.app.golden import GOLDEN_DIR

    d = root / rel
    d.mkdir(parents=True, exist_ok=True)
    (d / "golden.json").write_text(json.dumps(doc, indent=1) + "\n")
    (d / "golden_input.bin").write_bytes(data)
    shutil.copyfile(GOLDEN_DIR / "face.png", d / "golden_face.png")
    return [f"{rel}/{n}" for n in ("golden.json", "golden_input.bin", "golden_face.png")]


def _record(model_path: Path, platform: str, facts: ModelFacts, golden: dict) -> None:
    """The runtime versions on both sides and the golden reference, in the artifact's manifest (results)."""
    from devicekit.errors import DevicekitError
    from devicekit.manifest import record_results

    runtimes = {"verify": facts.verify_runtime, platform: ANDROID_RUNTIME if platform == "android"
                else f"CoreML (iOS {facts.ios_deployment_target}+)"}
    entry = {"runtimes": runtimes}
    if golden.get("outputs"):
        entry["golden"] = {"source": golden["source"], "input_sha256": golden["input"]["sha256"], "gate": golden["gate"],
                           "outputs": golden["outputs"], "made_by": "devicekit package (devicekit/app/golden.py)"}
    try:
        record_results(model_path, entry)
    except (DevicekitError, OSError):  # a read-only manifest does not stop packaging
        pass


__all__ = ["render", "RenderResult", "apk_estimate", "PLATFORMS", "DEFAULT_APP_ID", "DEFAULT_NAME"]


def _attach() -> None:
    """Plug the packagers into devicekit.registry: ``package`` and ``bench``'s app builds dispatch through it."""
    from devicekit.registry import attach_platform

    def packager(platform: str):
        return lambda artifact, out_dir, **options: render(artifact, platform, out_dir, **options)

    for p in PLATFORMS:
        attach_platform(p, packager=packager(p), template=Path(__file__).resolve().parent / p)
    from .webapp import render_web  # the web app (LiteRT.js): its own renderer, the same ModelFacts

    attach_platform("web", packager=render_web, template=Path(__file__).resolve().parent / "web")


_attach()
