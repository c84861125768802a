"""Getting the benchmark app onto a phone: a given --apk/--app, or render + build + cache.

Rendering is ``devicekit.mobile_templates``'s job; this module calls its ``render``, builds the
rendered project with its Gradle wrapper (``:app:assembleBenchmark``: the release configuration,
minified and not debuggable, signed with the debug key, plus the benchmark activity) or ``xcodebuild``
(Release, ``DEVELOPMENT_TEAM`` from ``--team``) when an SDK / Xcode is present, and caches the result
by model sha256 + template version. Without an SDK it raises one EnvironmentMissing that says what is
missing and how to pass a prebuilt app.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import DeviceError, EnvironmentMissing, InputError, UsageError
from ..fsutil import cache_root, sha256_file


def apps_cache() -> Path:
    """Built benchmark apps, by model sha256 + template version."""
    return cache_root() / "apps"


def android_sdk() -> str | None:
    for var in ("ANDROID_HOME", "ANDROID_SDK_ROOT"):
        v = os.environ.get(var)
        if v and Path(v).is_dir():
            return v
    return None


def xcode_dir() -> str | None:
    exe = shutil.which("xcode-select")
    if not exe:
        return None
    try:
        r = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def gradle_command(project: Path) -> list[str]:
    """The project's Gradle wrapper when it has one, else ``gradle`` from PATH."""
    wrapper = project / ("gradlew.bat" if os.name == "nt" else "gradlew")
    exe = str(wrapper) if wrapper.exists() else shutil.which("gradle")
    if not exe:
        raise EnvironmentMissing(
            f"the rendered project {project} has no Gradle wrapper and `gradle` is not on PATH",
            hint="install Gradle (or open the project once in Android Studio), or pass a prebuilt --apk FILE",
        )
    # the "benchmark" build type: release (R8, not debuggable) + debug signing + DevicekitBenchmarkActivity
    return [exe, "-p", str(project), "--no-daemon", ":app:assembleBenchmark"]


def gradle_output(project: Path) -> Path:
    return project / "app" / "build" / "outputs" / "apk" / "benchmark" / "app-benchmark.apk"


def xcodebuild_command(project: Path, scheme: str, udid: str, derived: Path, team: str) -> list[str]:
    return [
        "xcodebuild",
        "-project",
        str(project),
        "-scheme",
        scheme,
        "-configuration",
        "Release",
        "-destination",
        f"platform=iOS,id={udid}",
        "-derivedDataPath",
        str(derived),
        "-allowProvisioningUpdates",
        f"DEVELOPMENT_TEAM={team}",
        "CODE_SIGN_STYLE=Automatic",
        "build",
    ]


def xcode_output(derived: Path, scheme: str) -> Path:
    return derived / "Build" / "Products" / "Release-iphoneos" / f"{scheme}.app"


def template_version(platform: str = "android") -> str:
    """The template tree's own content hash (so any template edit invalidates cached builds)."""
    from ..registry import PLATFORMS

    p = PLATFORMS.get(platform)
    tree = p.template if p is not None else None
    return sha256_file(tree)[:12] if tree is not None and tree.is_dir() else "none"


def cache_key(model: Path, platform: str = "android") -> str:
    return f"{sha256_file(model)[:16]}-t{template_version(platform)}"


def _missing(platform: str, device_id: str, app_id: str) -> EnvironmentMissing:
    if platform == "android":
        return EnvironmentMissing(
            f"the benchmark app {app_id} is not installed on {device_id} and no Android SDK is here to build it "
            "(ANDROID_HOME / ANDROID_SDK_ROOT is not set)",
            hint="pass a prebuilt app with --apk FILE (build it where the SDK is: devicekit package MODEL --platform android, "
            "then ./gradlew :app:assembleBenchmark)",
        )
    return EnvironmentMissing(
        f"the benchmark app {app_id} is not on {device_id} and Xcode is not here to build it (xcode-select -p failed)",
        hint="pass a prebuilt app with --app App.app (devicekit package MODEL --platform ios, then build it in Xcode)",
    )


def _render(model: Path, platform: str, out: Path, app_id: str) -> Path:
    """The benchmark app's project for ``model``, rendered by the platform's packager (devicekit.mobile_templates
    attaches it to the registry; the command line imports it)."""
    from ..registry import packager

    return Path(packager(platform)(model, out, app_id=app_id, force=True).out_dir)


def build_app(platform: str, model: Path, device_id: str, app_id: str, log=None, team: str | None = None) -> Path:
    """Render and build the benchmark app for ``model`` (cached). Returns the .apk or .app."""
    if platform == "android" and not android_sdk():
        raise _missing(platform, device_id, app_id)
    if platform == "ios" and not xcode_dir():
        raise _missing(platform, device_id, app_id)
    if platform == "ios" and not team:
        raise UsageError(
            "building the iOS benchmark app for a device needs your Apple development team (code signing)",
            hint="pass --team TEAMID (Xcode > Settings > Accounts, or the Membership page) or set team in [bench] of "
            "devicekit.toml; or build the app yourself and pass --app App.app",
        )
    key = cache_key(model, platform)
    slot = apps_cache() / f"{platform}-{app_id}-{key}"
    built = slot / ("app-benchmark.apk" if platform == "android" else "Benchmark.app")
    if built.exists():
        return built
    project = _render(model, platform, slot / "project", app_id)
    if platform == "android":
        cmd, out = gradle_command(project), gradle_output(project)
    else:
        xcodeproj = next(iter(sorted(project.rglob("*.xcodeproj"))), None)
        if xcodeproj is None:
            raise EnvironmentMissing(
                f"the rendered iOS project in {project} has no .xcodeproj to build", hint="open it in Xcode and build it, then pass --app App.app"
            )
        scheme = xcodeproj.stem
        cmd, out = xcodebuild_command(xcodeproj, scheme, device_id, slot / "derived", team), xcode_output(slot / "derived", scheme)
    if log:
        log(f"building the benchmark app: {' '.join(cmd)}")
    r = subprocess.run(cmd, cwd=project, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0 or not out.exists():
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit {r.returncode}"]
        raise DeviceError(f"building the benchmark app failed ({tail[0]})", hint=f"see {project}; or pass a prebuilt app")
    if out.is_dir():
        shutil.copytree(out, built)
    else:
        shutil.copyfile(out, built)
    return built


def ensure_app(device, model: Path, app: Path | None, app_id: str, reinstall: bool = False, log=None, team: str | None = None) -> str:
    """Install the benchmark app when needed. Returns what happened: present | installed | built."""
    platform = device.info.platform
    if platform == "host":
        return "present"
    if app is not None:
        app = Path(app)
        if not app.exists():
            raise InputError(f"{'--apk' if platform == 'android' else '--app'} file not found: {app}")
        if platform == "android" and app.suffix.lower() != ".apk":
            raise InputError(f"--apk expects an .apk file, got {app.name}")
        if reinstall or not device.is_installed(app_id):
            device.install(app)
            return "installed"
        return "present"
    if device.is_installed(app_id):
        return "present"
    built = build_app(platform, Path(model), device.info.id, app_id, log, team)
    device.install(built)
    return "built"
