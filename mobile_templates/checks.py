"""Static checks of a rendered project (no Android SDK or Xcode needed).

``check_project(out_dir)`` returns a list of problems (empty when all pass):
every Kotlin/Kotlin-script/Java/Swift file parses without error nodes
(tree-sitter-language-pack 0.13), every XML and plist is well formed, the
pbxproj parses and references exactly the app's files, the AndroidManifest
declares the camera permission and the activities, no placeholder is left,
the embedded model matches the manifest's sha256, and the constants in the
generated ModelConfig equal the manifest's.
"""

from __future__ import annotations

import json
import plistlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from . import MARKER, PLACEHOLDER
from .context import model_facts

PARSERS = {".kt": "kotlin", ".kts": "kotlin", ".java": "java", ".swift": "swift"}
ANDROID_NS = "{http://schemas.android.com/apk/res/android}"


def parse_errors(path: Path, language: str) -> list[str]:
    from tree_sitter_language_pack import get_parser

    tree = get_parser(language).parse(path.read_bytes())
    if not tree.root_node.has_error:
        return []
    bad = []

    def walk(n):
        if n.type == "ERROR" or n.is_missing:
            bad.append(f"{path.name}:{n.start_point[0] + 1}:{n.start_point[1] + 1} {'missing ' + n.type if n.is_missing else 'syntax error'}")
            return
        for c in n.children:
            walk(c)

    walk(tree.root_node)
    return bad or [f"{path.name}: parse error"]


def config_values(text: str) -> dict[str, str]:
    """name -> literal text of `name = value` / `name: value` lines in a generated ModelConfig."""
    out = {}
    for m in re.finditer(r"^\s*(?:(?:public\s+)?(?:static\s+)?(?:const\s+)?(?:val|let)\s+)?([A-Za-z0-9]+)\s*[=:]\s*(.+?),?\s*$", text, re.M):
        out[m.group(1)] = m.group(2).strip()
    return out


def _num(lit: str) -> float:
    return float(lit.rstrip("L"))


def check_constants(config_text: str, facts) -> list[str]:
    vals = config_values(config_text)
    problems = []
    for k, expect in facts.spec_json().items():
        if k not in vals:
            problems.append(f"ModelConfig lacks {k}")
            continue
        lit = vals[k]
        if isinstance(expect, bool):
            ok = lit == ("true" if expect else "false")
        elif isinstance(expect, str):
            ok = lit == f'"{expect}"'
        elif isinstance(expect, list):
            inner = re.sub(r"^(doubleArrayOf\(|\[)|(\)|\])$", "", lit)
            got = [float(v) for v in inner.split(",") if v.strip()]
            ok = got == [float(v) for v in expect]
        else:
            ok = _num(lit) == float(expect)
        if not ok:
            problems.append(f"ModelConfig {k} = {lit}, manifest says {expect}")
    return problems


def check_project(out_dir: str | Path) -> list[str]:
    from devicekit.fsutil import sha256_file
    from devicekit.manifest import read_manifest

    root = Path(out_dir)
    marker = json.loads((root / MARKER).read_text())
    problems: list[str] = []
    files = [p for p in root.rglob("*") if p.is_file()]
    model_dir = root / marker["model_file"]
    for p in files:
        rel = p.relative_to(root).as_posix()
        if model_dir in p.parents or p == model_dir:
            continue
        if p.suffix in PARSERS:
            problems += [f"{rel}: {e}" for e in parse_errors(p, PARSERS[p.suffix])]
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        left = PLACEHOLDER.findall(text) + PLACEHOLDER.findall(rel)
        if left:
            problems.append(f"{rel}: placeholders left {sorted(set(left))}")
        if p.suffix in (".xml", ".xcscheme"):
            try:
                ET.fromstring(text)
            except ET.ParseError as exc:
                problems.append(f"{rel}: XML not well formed ({exc})")
        if p.suffix == ".plist":
            try:
                plistlib.loads(p.read_bytes())
            except Exception as exc:  # noqa: BLE001 - any parse failure is the finding
                problems.append(f"{rel}: plist not well formed ({exc})")
    if sha256_file(model_dir) != marker["sha256"]:
        problems.append(f"{marker['model_file']}: sha256 differs from the artifact's manifest")
    facts = model_facts(read_manifest(marker["artifact"]))
    if facts.sha256 and facts.sha256 != marker["sha256"]:
        problems.append("embedded model sha256 differs from the manifest's sha256")
    configs = [p for p in files if p.name in ("ModelConfig.kt", "ModelConfig.swift")]
    if len(configs) != 1:
        problems.append(f"expected one ModelConfig, found {len(configs)}")
    for c in configs:
        problems += check_constants(c.read_text(), facts)
    if marker["platform"] == "android":
        problems += _check_android(root, marker)
    else:
        problems += _check_ios(root, marker)
    return problems


def _catalog_refs(root: Path) -> list[str]:
    """Every `libs.<...>` reference in the Gradle scripts that the version catalog does not define."""
    import tomllib

    cat = tomllib.loads((root / "gradle/libs.versions.toml").read_text())
    libs = {k.replace("-", ".") for k in cat.get("libraries", {})}
    plugins = {k.replace("-", ".") for k in cat.get("plugins", {})}
    versions = {k.replace("-", ".") for k in cat.get("versions", {})}
    bad = []
    for kts in root.rglob("*.gradle.kts"):
        for ref in re.findall(r"\blibs\.([A-Za-z0-9_.]+?)(?:\.get\(\)|[)\s,}])", kts.read_text()):
            if ref.startswith("plugins."):
                ok = ref[len("plugins.") :] in plugins
            elif ref.startswith("versions."):
                ok = ref[len("versions.") :] in versions
            else:
                ok = ref in libs
            if not ok:
                bad.append(f"{kts.relative_to(root)}: libs.{ref} is not in gradle/libs.versions.toml")
    return bad


def _check_android(root: Path, marker: dict) -> list[str]:
    import tomllib
    import zipfile

    problems = []
    man = ET.parse(root / "app/src/main/AndroidManifest.xml").getroot()
    perms = {e.get(ANDROID_NS + "name") for e in man.iter("uses-permission")}
    if "android.permission.CAMERA" not in perms:
        problems.append("AndroidManifest lacks the CAMERA permission")
    acts = {e.get(ANDROID_NS + "name"): e for e in man.iter("activity")}
    if ".MainActivity" not in acts:
        problems.append("AndroidManifest lacks activity .MainActivity")
    if ".DevicekitBenchmarkActivity" in acts:
        problems.append("the main AndroidManifest exports DevicekitBenchmarkActivity (it belongs to the benchmark build type only)")
    bench_man = root / "app/src/benchmark/AndroidManifest.xml"
    bench = {e.get(ANDROID_NS + "name"): e for e in ET.parse(bench_man).getroot().iter("activity")} if bench_man.exists() else {}
    if bench.get(".DevicekitBenchmarkActivity") is None or bench[".DevicekitBenchmarkActivity"].get(ANDROID_NS + "exported") != "true":
        problems.append("src/benchmark/AndroidManifest.xml must declare DevicekitBenchmarkActivity exported (am start)")
    pkg = marker["app_id"].replace(".", "/")
    for rel in (
        f"app/src/main/java/{pkg}/MainActivity.kt",
        f"app/src/benchmark/java/{pkg}/DevicekitBenchmarkActivity.kt",
        f"app/src/androidTest/java/{pkg}/GoldenTest.kt",
    ):
        if not (root / rel).exists():
            problems.append(f"{rel} is missing (application id {marker['app_id']})")
    kts = {p.relative_to(root).as_posix(): re.sub(r"//[^\n]*", "", p.read_text()) for p in root.rglob("*.gradle.kts")}
    text = "".join(kts.values())
    if 'noCompress += "tflite"' not in text or not any(k.count("/") == 1 and k != "app/build.gradle.kts" for k in kts):
        problems.append("no module declares noCompress for .tflite")
    if "kotlinOptions" in text or "compilerOptions" not in text:
        problems.append("Gradle scripts must set Kotlin options with kotlin { compilerOptions { } } (kotlinOptions is an error from Kotlin 2.2)")
    app = kts.get("app/build.gradle.kts", "")
    if 'create("benchmark")' not in app or 'initWith(getByName("release"))' not in app:
        problems.append("app/build.gradle.kts lacks the release-configured benchmark build type")
    abis = re.search(r"abiFilters \+= listOf\(([^)]*)\)", app)
    if not abis or '"arm64-v8a"' not in abis.group(1):
        problems.append("app/build.gradle.kts has no arm64-v8a in abiFilters")
    problems += _catalog_refs(root)
    cat = tomllib.loads((root / "gradle/libs.versions.toml").read_text())
    if not str(cat["versions"].get("litert", "")).startswith("2."):
        problems.append(f"LiteRT {cat['versions'].get('litert')} is not 2.x (CompiledModel)")
    for p in root.rglob("*.kt"):
        if re.search(r"^import org\.tensorflow\.lite", p.read_text(), re.M):
            problems.append(f"{p.relative_to(root)} uses the deprecated org.tensorflow.lite Interpreter API")
    gradlew, jar = root / "gradlew", root / "gradle/wrapper/gradle-wrapper.jar"
    props = root / "gradle/wrapper/gradle-wrapper.properties"
    if not (gradlew.exists() and gradlew.stat().st_mode & 0o111):
        problems.append("gradlew is missing or not executable")
    try:
        if "org/gradle/wrapper/GradleWrapperMain.class" not in zipfile.ZipFile(jar).namelist():
            problems.append("gradle-wrapper.jar has no org.gradle.wrapper.GradleWrapperMain")
    except (OSError, zipfile.BadZipFile):
        problems.append("gradle/wrapper/gradle-wrapper.jar is missing or not a jar")
    if not props.exists() or "distributionUrl=" not in props.read_text():
        problems.append("gradle-wrapper.properties names no distributionUrl")
    problems += _check_golden(root, marker)
    return problems


def _check_golden(root: Path, marker: dict) -> list[str]:
    """The golden test's data: present, for this model, and the input the size the model takes."""
    from devicekit.manifest import read_manifest

    from .context import model_facts

    d = root / marker["golden_dir"]
    missing = [n for n in ("golden.json", "golden_input.bin", "golden_face.png") if not (d / n).exists()]
    if missing:
        return [f"{marker['golden_dir']} lacks {', '.join(missing)}"]
    doc = json.loads((d / "golden.json").read_text())
    if doc.get("unavailable"):
        return []  # said so at render time (a warning): the golden test skips with that reason
    problems = []
    f = model_facts(read_manifest(marker["artifact"]))
    if doc.get("model_sha256") != marker["sha256"]:
        problems.append("golden.json was made for another model (model_sha256)")
    size = (d / "golden_input.bin").stat().st_size
    per = {"float32": 4}.get(f.input_dtype, 1)
    if size != f.width * f.height * f.channels * per:
        problems.append(f"golden_input.bin has {size} bytes; the model input takes {f.width * f.height * f.channels * per}")
    if not doc.get("outputs") or doc["landmarks"]["output"] >= len(doc["outputs"]):
        problems.append("golden.json has no landmark output")
    return problems


# Top-level public type names that shadow the standard library or Foundation in every file importing the kit
SHADOWING = {"Decoder", "Encoder", "Codable", "Data", "URL", "Result", "Error", "Array", "String", "Set", "Dictionary"}


def swift_public_init_gaps(text: str) -> list[str]:
    """Public structs with stored public properties and no public init (Swift's memberwise init is internal)."""
    gaps = []
    for m in re.finditer(r"^(\s*)public struct (\w+)[^{]*\{", text, re.M):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = text[m.end() : i - 1]
        top = re.sub(r"\{[^{}]*\}", "{}", body)  # nested bodies -> {} (computed properties then end in {})
        stored = re.findall(r"^\s*public (?:let|var) (\w+)\s*:[^={\n]*$", top, re.M)
        if stored and "public init(" not in body:
            gaps.append(m.group(2))
    return gaps


def _check_ios(root: Path, marker: dict) -> list[str]:
    from .xcode import PbxprojError, loads, referenced_paths

    problems = []
    projects = list(root.glob("*.xcodeproj/project.pbxproj"))
    if len(projects) != 1:
        return [f"expected one .xcodeproj, found {len(projects)}"]
    try:
        proj = loads(projects[0].read_text())
    except PbxprojError as exc:
        return [f"project.pbxproj does not parse: {exc}"]
    refs = referenced_paths(proj)
    for r in refs:
        if not (root / r).exists():
            problems.append(f"project.pbxproj references {r}, which does not exist")
    app = projects[0].parent.stem
    tests = f"{app}Tests"
    actual = {p.relative_to(root).as_posix() for d in (app, tests) if (root / d).is_dir() for p in (root / d).rglob("*") if p.is_file()}
    missing = actual - set(refs)
    if missing:
        problems.append(f"project.pbxproj does not reference {sorted(missing)}")
    objs = proj["objects"]
    path_of = {}
    for gid, g in objs.items():
        if g["isa"] == "PBXGroup" and g.get("path"):
            for c in g.get("children", []):
                path_of[c] = g["path"]
    targets = {o["name"]: o for o in objs.values() if o["isa"] == "PBXNativeTarget"}
    for name, folder in ((app, app), (tests, tests)):
        t = targets.get(name)
        if t is None:
            problems.append(f"project.pbxproj has no target {name}")
            continue
        phases = {objs[ph]["isa"]: objs[ph] for ph in t["buildPhases"]}
        built = {objs[objs[f]["fileRef"]]["path"] for f in phases.get("PBXSourcesBuildPhase", {}).get("files", [])}
        want = {p.name for p in (root / folder).rglob("*.swift")}
        if built != want:
            problems.append(f"target {name} compiles {sorted(built)}, its folder has {sorted(want)}")
        if not t.get("packageProductDependencies"):
            problems.append(f"target {name} does not link the Swift package")
        if name == tests:
            res = {objs[objs[f]["fileRef"]]["path"] for f in phases.get("PBXResourcesBuildPhase", {}).get("files", [])}
            if not {"golden.json", "golden_input.bin", "golden_face.png"} <= res:
                problems.append(f"target {tests} does not bundle the golden data (has {sorted(res)})")
            if not t.get("dependencies"):
                problems.append(f"target {tests} does not depend on the app it tests")
    target_settings = [objs[c]["buildSettings"] for o in objs.values() if o["isa"] == "XCConfigurationList" for c in o["buildConfigurations"]]
    from devicekit.manifest import read_manifest

    want_dt = model_facts(read_manifest(marker["artifact"])).ios_deployment_target
    dts = {s_.get("IPHONEOS_DEPLOYMENT_TARGET") for s_ in target_settings if "IPHONEOS_DEPLOYMENT_TARGET" in s_}
    if dts != {want_dt}:
        problems.append(f"IPHONEOS_DEPLOYMENT_TARGET {sorted(dts)} is not the model's {want_dt}")
    if not any("TEST_HOST" in s_ for s_ in target_settings):
        problems.append(f"target {tests} has no TEST_HOST (it must run inside the app)")
    pkg = (root / next(iter(r for r in refs if not r.startswith((app + "/", tests + "/"))), "")) / "Package.swift"
    if not pkg.exists():
        problems.append("the local Swift package referenced by the project has no Package.swift")
    else:
        text = pkg.read_text()
        res = re.findall(r'\.copy\("([^"]+)"\)', text)
        kit = pkg.parent.name
        for r in res:
            if not (pkg.parent / "Sources" / kit / r).exists():
                problems.append(f"Package.swift resource {r} does not exist")
        if f"Sources/{kit}/" + (res[0] if res else "") != marker["model_file"].split("/", 1)[1]:
            problems.append("Package.swift does not ship the embedded model as a resource")
        if f".iOS(.v{want_dt.split('.')[0]})" not in text:
            problems.append(f"Package.swift does not target iOS {want_dt.split('.')[0]} (the model's deployment target)")
        for src in sorted((pkg.parent / "Sources" / kit).glob("*.swift")):
            t = src.read_text()
            for gap in swift_public_init_gaps(t):
                problems.append(f"{src.name}: public struct {gap} has no public init (a host app cannot construct it)")
            for m in re.finditer(r"^public (?:struct|class|final class|enum|protocol) (\w+)", t, re.M):
                if m.group(1) in SHADOWING:
                    problems.append(f"{src.name}: public type {m.group(1)} shadows the standard library's in every importing file")
    info = plistlib.loads((root / app / "Info.plist").read_bytes())
    if "NSCameraUsageDescription" not in info:
        problems.append("Info.plist lacks NSCameraUsageDescription")
    yml = (root / "project.yml").read_text() if (root / "project.yml").exists() else ""
    if "NSCameraUsageDescription" not in yml or "properties:" not in yml:
        problems.append("project.yml does not generate Info.plist with NSCameraUsageDescription (xcodegen would drop it)")
    if f'iOS: "{want_dt}"' not in yml:
        problems.append(f"project.yml deploymentTarget is not the model's {want_dt}")
    problems += _check_golden(root, marker)
    return problems
