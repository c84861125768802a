"""The Xcode project: a project.pbxproj (old-style plist) written from the rendered
app sources, a shared scheme, and a small parser for the format (used by the checks).

Object ids are 24 hex digits derived from a stable key, so a render is reproducible.
The Swift package is referenced as a local package folder (a ``wrapper`` file
reference plus an ``XCSwiftPackageProductDependency``), the way Xcode records a
local package dragged into a project; XcodeGen's ``project.yml`` says the same.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

OBJECT_VERSION = 56


def xid(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:24].upper()


def _q(s: str) -> str:
    return s if re.fullmatch(r"[A-Za-z0-9_$/.]+", s) else '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write(v, indent: int) -> str:
    pad = "\t" * indent
    if isinstance(v, dict):
        body = "".join(f"{pad}\t{_q(k)} = {_write(x, indent + 1)};\n" for k, x in v.items())
        return "{\n" + body + pad + "}"
    if isinstance(v, list):
        body = "".join(f"{pad}\t{_write(x, indent + 1)},\n" for x in v)
        return "(\n" + body + pad + ")"
    return _q(str(v))


def _file_type(name: str) -> str:
    ext = name.rsplit(".", 1)[-1]
    return {"swift": "sourcecode.swift", "plist": "text.plist.xml", "json": "text.json", "png": "image.png"}.get(ext, "file")


def _config_list(o: dict, key: str, per_config: dict[str, dict]) -> str:
    ids = []
    for cfg, settings in per_config.items():
        cid = xid(f"config:{key}:{cfg}")
        o[cid] = {"isa": "XCBuildConfiguration", "buildSettings": settings, "name": cfg}
        ids.append(cid)
    lid = xid(f"configlist:{key}")
    o[lid] = {"isa": "XCConfigurationList", "buildConfigurations": ids, "defaultConfigurationIsVisible": "0", "defaultConfigurationName": "Release"}
    return lid


def _group_files(o: dict, folder: str, files: list[str], key: str) -> tuple[str, list[str], list[str]]:
    """A PBXGroup for ``folder`` (files may sit one level down, e.g. Golden/golden.json); (group, swift refs, other refs)."""
    children, swift, other, sub = [], [], [], {}
    for rel in files:
        fid = xid(f"file:{folder}/{rel}")
        name = rel.rsplit("/", 1)[-1]
        o[fid] = {"isa": "PBXFileReference", "lastKnownFileType": _file_type(name), "path": name, "sourceTree": "<group>"}
        (swift if name.endswith(".swift") else other).append(fid)
        if "/" in rel:
            sub.setdefault(rel.split("/", 1)[0], []).append(fid)
        else:
            children.append(fid)
    for name, kids in sorted(sub.items()):
        gid = xid(f"group:{folder}/{name}")
        o[gid] = {"isa": "PBXGroup", "children": kids, "path": name, "sourceTree": "<group>"}
        children.append(gid)
    gid = xid(f"group:{key}")
    o[gid] = {"isa": "PBXGroup", "children": children, "path": folder, "sourceTree": "<group>"}
    return gid, swift, other


def _phase(o: dict, isa: str, key: str, refs: list[str]) -> str:
    builds = []
    for fid in refs:
        bid = xid(f"build:{key}:{fid}")
        o[bid] = {"isa": "PBXBuildFile", "fileRef": fid}
        builds.append(bid)
    pid = xid(f"phase:{key}")
    o[pid] = {"isa": isa, "buildActionMask": "2147483647", "files": builds, "runOnlyForDeploymentPostprocessing": "0"}
    return pid


def build_project(
    app: str, kit: str, bundle_id: str, app_files: list[str], test_files: list[str] | None = None, deployment_target: str = "17.0"
) -> dict:
    """The pbxproj as nested dicts: the iOS app target built from app_files (names in <app>/) linking <kit>, and
    the unit-test target <app>Tests (test_files, relative to <app>Tests/: Swift sources and the golden resources)
    hosted by the app."""
    o: dict[str, dict] = {}
    tests = f"{app}Tests"
    app_group, app_swift, _ = _group_files(o, app, app_files, app)
    groups = [app_group]
    kit_ref = xid(f"package-folder:{kit}")
    o[kit_ref] = {"isa": "PBXFileReference", "lastKnownFileType": "wrapper", "path": kit, "sourceTree": "<group>"}
    products, packages, main = xid("group:Products"), xid("group:Packages"), xid("group:main")
    common = {
        "ALWAYS_SEARCH_USER_PATHS": "NO",
        "CLANG_ENABLE_MODULES": "YES",
        "IPHONEOS_DEPLOYMENT_TARGET": deployment_target,
        "SDKROOT": "iphoneos",
        "SWIFT_VERSION": "5.0",
        "ENABLE_BITCODE": "NO",
        "CODE_SIGN_STYLE": "Automatic",
        "DEVELOPMENT_TEAM": "",
    }
    project_cfg = {
        cfg: {**common, "SWIFT_OPTIMIZATION_LEVEL": "-Onone" if cfg == "Debug" else "-O", "ONLY_ACTIVE_ARCH": "YES" if cfg == "Debug" else "NO"}
        for cfg in ("Debug", "Release")
    }
    targets, product_refs = [], []

    def native(name: str, product: str, ptype: str, phases: list[str], settings: dict, deps: list[str]) -> str:
        pref = xid(f"product:{name}")
        o[pref] = {
            "isa": "PBXFileReference",
            "explicitFileType": "wrapper.application" if ptype.endswith("application") else "wrapper.cfbundle",
            "includeInIndex": "0",
            "path": product,
            "sourceTree": "BUILT_PRODUCTS_DIR",
        }
        product_refs.append(pref)
        dep = xid(f"package-product:{kit}:{name}")
        o[dep] = {"isa": "XCSwiftPackageProductDependency", "productName": kit}
        kit_build = xid(f"build-product:{kit}:{name}")
        o[kit_build] = {"isa": "PBXBuildFile", "productRef": dep}
        fw = xid(f"phase:frameworks:{name}")
        o[fw] = {"isa": "PBXFrameworksBuildPhase", "buildActionMask": "2147483647", "files": [kit_build], "runOnlyForDeploymentPostprocessing": "0"}
        tid = xid(f"target:{name}")
        o[tid] = {
            "isa": "PBXNativeTarget",
            "buildConfigurationList": _config_list(o, f"target:{name}", {c: dict(settings) for c in ("Debug", "Release")}),
            "buildPhases": [phases[0], fw, *phases[1:]],
            "buildRules": [],
            "dependencies": deps,
            "name": name,
            "packageProductDependencies": [dep],
            "productName": name,
            "productReference": pref,
            "productType": ptype,
        }
        targets.append(tid)
        return tid

    app_settings = {
        "ASSETCATALOG_COMPILER_APPICON_NAME": "AppIcon",
        "CURRENT_PROJECT_VERSION": "1",
        "GENERATE_INFOPLIST_FILE": "NO",
        "INFOPLIST_FILE": f"{app}/Info.plist",
        "LD_RUNPATH_SEARCH_PATHS": "$(inherited) @executable_path/Frameworks",
        "MARKETING_VERSION": "1.0",
        "PRODUCT_BUNDLE_IDENTIFIER": bundle_id,
        "PRODUCT_NAME": "$(TARGET_NAME)",
        "TARGETED_DEVICE_FAMILY": "1,2",
    }
    app_target = native(
        app,
        f"{app}.app",
        "com.apple.product-type.application",
        [_phase(o, "PBXSourcesBuildPhase", f"sources:{app}", app_swift), _phase(o, "PBXResourcesBuildPhase", f"resources:{app}", [])],
        app_settings,
        [],
    )
    if test_files:
        t_group, t_swift, t_res = _group_files(o, tests, test_files, tests)
        groups.append(t_group)
        proxy = xid(f"proxy:{tests}")
        root_id = xid(f"project:{app}")
        o[proxy] = {
            "isa": "PBXContainerItemProxy",
            "containerPortal": root_id,
            "proxyType": "1",
            "remoteGlobalIDString": app_target,
            "remoteInfo": app,
        }
        tdep = xid(f"dependency:{tests}")
        o[tdep] = {"isa": "PBXTargetDependency", "target": app_target, "targetProxy": proxy}
        test_settings = {
            "BUNDLE_LOADER": "$(TEST_HOST)",
            "TEST_HOST": f"$(BUILT_PRODUCTS_DIR)/{app}.app/{app}",
            "GENERATE_INFOPLIST_FILE": "YES",
            "PRODUCT_BUNDLE_IDENTIFIER": f"{bundle_id}.tests",
            "PRODUCT_NAME": "$(TARGET_NAME)",
            "LD_RUNPATH_SEARCH_PATHS": "$(inherited) @executable_path/Frameworks @loader_path/Frameworks",
            "TARGETED_DEVICE_FAMILY": "1,2",
        }
        native(
            tests,
            f"{tests}.xctest",
            "com.apple.product-type.bundle.unit-test",
            [_phase(o, "PBXSourcesBuildPhase", f"sources:{tests}", t_swift), _phase(o, "PBXResourcesBuildPhase", f"resources:{tests}", t_res)],
            test_settings,
            [tdep],
        )
    o[products] = {"isa": "PBXGroup", "children": product_refs, "name": "Products", "sourceTree": "<group>"}
    o[packages] = {"isa": "PBXGroup", "children": [kit_ref], "name": "Packages", "sourceTree": "<group>"}
    o[main] = {"isa": "PBXGroup", "children": [packages, *groups, products], "sourceTree": "<group>"}
    root = xid(f"project:{app}")
    o[root] = {
        "isa": "PBXProject",
        "attributes": {"BuildIndependentTargetsInParallel": "1", "LastSwiftUpdateCheck": "1500", "LastUpgradeCheck": "1500"},
        "buildConfigurationList": _config_list(o, "project", project_cfg),
        "compatibilityVersion": "Xcode 14.0",
        "developmentRegion": "en",
        "hasScannedForEncodings": "0",
        "knownRegions": ["en", "Base"],
        "mainGroup": main,
        "productRefGroup": products,
        "projectDirPath": "",
        "projectRoot": "",
        "targets": targets,
    }
    return {"archiveVersion": "1", "classes": {}, "objectVersion": str(OBJECT_VERSION), "objects": o, "rootObject": root}


def dumps(project: dict) -> str:
    return "// !$*UTF8*$!\n" + _write(project, 0) + "\n"


SCHEME = """<?xml version="1.0" encoding="UTF-8"?>
<Scheme LastUpgradeVersion="1500" version="1.7">
   <BuildAction parallelizeBuildables="YES" buildImplicitDependencies="YES">
      <BuildActionEntries>
         <BuildActionEntry buildForTesting="YES" buildForRunning="YES" buildForProfiling="YES" buildForArchiving="YES" buildForAnalyzing="YES">
            <BuildableReference BuildableIdentifier="primary" BlueprintIdentifier="{target}" BuildableName="{app}.app" BlueprintName="{app}" ReferencedContainer="container:{app}.xcodeproj">
            </BuildableReference>
         </BuildActionEntry>
         <BuildActionEntry buildForTesting="YES" buildForRunning="NO" buildForProfiling="NO" buildForArchiving="NO" buildForAnalyzing="NO">
            <BuildableReference BuildableIdentifier="primary" BlueprintIdentifier="{tests_target}" BuildableName="{app}Tests.xctest" BlueprintName="{app}Tests" ReferencedContainer="container:{app}.xcodeproj">
            </BuildableReference>
         </BuildActionEntry>
      </BuildActionEntries>
   </BuildAction>
   <TestAction buildConfiguration="Debug" selectedDebuggerIdentifier="Xcode.DebuggerFoundation.Debugger.LLDB" selectedLauncherIdentifier="Xcode.DebuggerFoundation.Launcher.LLDB" shouldUseLaunchSchemeArgsEnv="YES">
      <Testables>
         <TestableReference skipped="NO">
            <BuildableReference BuildableIdentifier="primary" BlueprintIdentifier="{tests_target}" BuildableName="{app}Tests.xctest" BlueprintName="{app}Tests" ReferencedContainer="container:{app}.xcodeproj">
            </BuildableReference>
         </TestableReference>
      </Testables>
   </TestAction>
   <LaunchAction buildConfiguration="Release" selectedDebuggerIdentifier="Xcode.DebuggerFoundation.Debugger.LLDB" selectedLauncherIdentifier="Xcode.DebuggerFoundation.Launcher.LLDB" launchStyle="0" useCustomWorkingDirectory="NO" ignoresPersistentStateOnLaunch="NO" debugDocumentVersioning="YES" debugServiceExtension="internal" allowLocationSimulation="YES">
      <BuildableProductRunnable runnableDebuggingMode="0">
         <BuildableReference BuildableIdentifier="primary" BlueprintIdentifier="{target}" BuildableName="{app}.app" BlueprintName="{app}" ReferencedContainer="container:{app}.xcodeproj">
         </BuildableReference>
      </BuildableProductRunnable>
   </LaunchAction>
</Scheme>
"""


def write_xcode_project(root: Path, values: dict, test_files: list[str] | None = None) -> list[str]:
    """Writes <APP>.xcodeproj (pbxproj + shared scheme) for the rendered sources under root; returns their paths.
    ``test_files``: the files of <APP>Tests/ (relative to it) the unit-test target builds and bundles."""
    app, kit = values["APP"], values["KIT"]
    files = sorted(p.name for p in (root / app).iterdir() if p.is_file() and p.name != "Info.plist") + ["Info.plist"]
    project = build_project(app, kit, values["APP_ID"], sorted(files), sorted(test_files or []), values.get("IOS_DEPLOYMENT_TARGET", "17.0"))
    rel = f"{app}.xcodeproj/project.pbxproj"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(dumps(project), encoding="utf-8")
    scheme = root / f"{app}.xcodeproj/xcshareddata/xcschemes/{app}.xcscheme"
    scheme.parent.mkdir(parents=True, exist_ok=True)
    scheme.write_text(
        SCHEME.replace("{target}", xid(f"target:{app}")).replace("{tests_target}", xid(f"target:{app}Tests")).replace("{app}", app), encoding="utf-8"
    )
    return [rel, scheme.relative_to(root).as_posix()]


# --- parser for the old-style (OpenStep) plist format -------------------------------------------

_TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_$/.:+\-<>]+)|([{}()=;,])', re.S)


class PbxprojError(ValueError):
    pass


def _tokens(text: str):
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise PbxprojError(f"unexpected character {text[pos]!r} at offset {pos}")
        pos = m.end()
        if m.group(1) is not None:
            yield ("str", re.sub(r"\\(.)", r"\1", m.group(1)))
        elif m.group(2) is not None:
            yield ("str", m.group(2))
        elif m.group(3) is not None:
            yield (m.group(3), m.group(3))


def loads(text: str) -> dict:
    """Parse a project.pbxproj; raises PbxprojError on any syntax error."""
    if not text.startswith("// !$*UTF8*$!"):
        raise PbxprojError("missing the // !$*UTF8*$! header")
    toks = list(_tokens(text))
    pos = 0

    def value():
        nonlocal pos
        if pos >= len(toks):
            raise PbxprojError("unexpected end of file")
        kind, v = toks[pos]
        pos += 1
        if kind == "str":
            return v
        if kind == "{":
            d = {}
            while toks[pos][0] != "}":
                k = value()
                if not isinstance(k, str) or toks[pos][0] != "=":
                    raise PbxprojError(f"expected key = value near token {pos}")
                pos += 1
                d[k] = value()
                if toks[pos][0] != ";":
                    raise PbxprojError(f"expected ; near token {pos}")
                pos += 1
            pos += 1
            return d
        if kind == "(":
            items = []
            while toks[pos][0] != ")":
                items.append(value())
                if toks[pos][0] == ",":
                    pos += 1
                elif toks[pos][0] != ")":
                    raise PbxprojError(f"expected , or ) near token {pos}")
            pos += 1
            return items
        raise PbxprojError(f"unexpected {v!r} near token {pos}")

    try:
        result = value()
    except IndexError:
        raise PbxprojError("unexpected end of file") from None
    if pos != len(toks) or not isinstance(result, dict):
        raise PbxprojError("trailing content after the root dictionary")
    return result


def referenced_paths(project: dict) -> list[str]:
    """Paths (relative to the project's directory) of every <group> file reference, resolved through the groups."""
    objs = project["objects"]
    out = []

    def walk(gid: str, prefix: str):
        g = objs[gid]
        base = prefix + (g["path"] + "/" if g.get("path") and g["isa"] == "PBXGroup" else "")
        for child in g.get("children", []):
            c = objs[child]
            if c["isa"] == "PBXGroup":
                walk(child, base)
            elif c.get("sourceTree") == "<group>":
                out.append(base + c["path"])

    walk(objs[project["rootObject"]]["mainGroup"], "")
    return out
