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
    return {"swift": "sourcecode.swift", "plist": "text.plist.xml"}.get(name.rsplit(".", 1)[-1], "text")


def build_project(app: str, kit: str, bundle_id: str, app_files: list[str]) -> dict:
    """The pbxproj as nested dicts: one iOS app target built from app_files (names in <app>/), linking <kit>."""
    o: dict[str, dict] = {}
    refs, builds = [], []
    for name in app_files:
        fid = xid(f"file:{app}/{name}")
        o[fid] = {"isa": "PBXFileReference", "lastKnownFileType": _file_type(name), "path": name, "sourceTree": "<group>"}
        refs.append(fid)
        if name.endswith(".swift"):
            bid = xid(f"build:{app}/{name}")
            o[bid] = {"isa": "PBXBuildFile", "fileRef": fid}
            builds.append(bid)
    product = xid(f"product:{app}")
    o[product] = {"isa": "PBXFileReference", "explicitFileType": "wrapper.application", "includeInIndex": "0",
                  "path": f"{app}.app", "sourceTree": "BUILT_PRODUCTS_DIR"}
    kit_ref = xid(f"package-folder:{kit}")
    o[kit_ref] = {"isa": "PBXFileReference", "lastKnownFileType": "wrapper", "path": kit, "sourceTree": "<group>"}
    dep = xid(f"package-product:{kit}")
    o[dep] = {"isa": "XCSwiftPackageProductDependency", "productName": kit}
    kit_build = xid(f"build-product:{kit}")
    o[kit_build] = {"isa": "PBXBuildFile", "productRef": dep}
    app_group, products, packages, main = xid(f"group:{app}"), xid("group:Products"), xid("group:Packages"), xid("group:main")
    o[app_group] = {"isa": "PBXGroup", "children": refs, "path": app, "sourceTree": "<group>"}
    o[products] = {"isa": "PBXGroup", "children": [product], "name": "Products", "sourceTree": "<group>"}
    o[packages] = {"isa": "PBXGroup", "children": [kit_ref], "name": "Packages", "sourceTree": "<group>"}
    o[main] = {"isa": "PBXGroup", "children": [packages, app_group, products], "sourceTree": "<group>"}
    src, fw, res = xid("phase:sources"), xid("phase:frameworks"), xid("phase:resources")
    o[src] = {"isa": "PBXSourcesBuildPhase", "buildActionMask": "2147483647", "files": builds, "runOnlyForDeploymentPostprocessing": "0"}
    o[fw] = {"isa": "PBXFrameworksBuildPhase", "buildActionMask": "2147483647", "files": [kit_build], "runOnlyForDeploymentPostprocessing": "0"}
    o[res] = {"isa": "PBXResourcesBuildPhase", "buildActionMask": "2147483647", "files": [], "runOnlyForDeploymentPostprocessing": "0"}
    common = {"ALWAYS_SEARCH_USER_PATHS": "NO", "CLANG_ENABLE_MODULES": "YES", "IPHONEOS_DEPLOYMENT_TARGET": "16.0",
              "SDKROOT": "iphoneos", "SWIFT_VERSION": "5.0", "ENABLE_BITCODE": "NO"}
    target_settings = {"ASSETCATALOG_COMPILER_APPICON_NAME": "AppIcon", "CODE_SIGN_STYLE": "Automatic",
                       "CURRENT_PROJECT_VERSION": "1", "GENERATE_INFOPLIST_FILE": "NO",
                       "INFOPLIST_FILE": f"{app}/Info.plist", "LD_RUNPATH_SEARCH_PATHS": "$(inherited) @executable_path/Frameworks",
                       "MARKETING_VERSION": "1.0", "PRODUCT_BUNDLE_IDENTIFIER": bundle_id,
                       "PRODUCT_NAME": "$(TARGET_NAME)", "TARGETED_DEVICE_FAMILY": "1,2"}
    lists = {}
    for scope, extra in (("project", common), ("target", target_settings)):
        ids = []
        for cfg in ("Debug", "Release"):
            settings = dict(extra)
            if scope == "project":
                settings["SWIFT_OPTIMIZATION_LEVEL"] = "-Onone" if cfg == "Debug" else "-O"
                settings["ONLY_ACTIVE_ARCH"] = "YES" if cfg == "Debug" else "NO"
            cid = xid(f"config:{scope}:{cfg}")
            o[cid] = {"isa": "XCBuildConfiguration", "buildSettings": settings, "name": cfg}
            ids.append(cid)
        lid = xid(f"configlist:{scope}")
        o[lid] = {"isa": "XCConfigurationList", "buildConfigurations": ids, "defaultConfigurationIsVisible": "0",
                  "defaultConfigurationName": "Release"}
        lists[scope] = lid
    target = xid(f"target:{app}")
    o[target] = {"isa": "PBXNativeTarget", "buildConfigurationList": lists["target"], "buildPhases": [src, fw, res],
                 "buildRules": [], "dependencies": [], "name": app, "packageProductDependencies": [dep],
                 "productName": app, "productReference": product, "productType": "com.apple.product-type.application"}
    root = xid(f"project:{app}")
    o[root] = {"isa": "PBXProject", "attributes": {"BuildIndependentTargetsInParallel": "1", "LastSwiftUpdateCheck": "1500",
                                                   "LastUpgradeCheck": "1500"},
               "buildConfigurationList": lists["project"], "compatibilityVersion": "Xcode 14.0",
               "developmentRegion": "en", "hasScannedForEncodings": "0", "knownRegions": ["en", "Base"],
               "mainGroup": main, "productRefGroup": products, "projectDirPath": "", "projectRoot": "",
               "targets": [target]}
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
      </BuildActionEntries>
   </BuildAction>
   <LaunchAction buildConfiguration="Release" selectedDebuggerIdentifier="Xcode.DebuggerFoundation.Debugger.LLDB" selectedLauncherIdentifier="Xcode.DebuggerFoundation.Launcher.LLDB" launchStyle="0" useCustomWorkingDirectory="NO" ignoresPersistentStateOnLaunch="NO" debugDocumentVersioning="YES" debugServiceExtension="internal" allowLocationSimulation="YES">
      <BuildableProductRunnable runnableDebuggingMode="0">
         <BuildableReference BuildableIdentifier="primary" BlueprintIdentifier="{target}" BuildableName="{app}.app" BlueprintName="{app}" ReferencedContainer="container:{app}.xcodeproj">
         </BuildableReference>
      </BuildableProductRunnable>
   </LaunchAction>
</Scheme>
"""


def write_xcode_project(root: Path, values: dict) -> list[str]:
    """Writes <APP>.xcodeproj (pbxproj + shared scheme) for the rendered sources under root; returns their paths."""
    app, kit = values["APP"], values["KIT"]
    files = sorted(p.name for p in (root / app).iterdir() if p.is_file())
    project = build_project(app, kit, values["APP_ID"], files)
    rel = f"{app}.xcodeproj/project.pbxproj"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(dumps(project), encoding="utf-8")
    scheme = root / f"{app}.xcodeproj/xcshareddata/xcschemes/{app}.xcscheme"
    scheme.parent.mkdir(parents=True, exist_ok=True)
    scheme.write_text(SCHEME.replace("{target}", xid(f"target:{app}")).replace("{app}", app), encoding="utf-8")
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
