"""iOS through ``xcrun devicectl`` (Xcode 15+): argument lists, JSON parsed.

Every devicectl call lives in this module (like coremltools' remote_device.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import DeviceError, EnvironmentMissing
from .base import RESULT_FILES, Device, DeviceInfo, RunSpec

# --delegate on iOS -> DEVICEKIT_COMPUTE_UNITS when --compute-units is not given: cpu = CPU only, gpu = CPU+GPU,
# npu and nnapi (the NPU routes on Android) = CPU+Neural Engine, xnnpack (the default) = all units, CoreML's own default.
COMPUTE_UNITS = {"cpu": "cpuOnly", "gpu": "cpuAndGPU", "nnapi": "cpuAndNeuralEngine", "npu": "cpuAndNeuralEngine", "xnnpack": "all"}


def xcrun_path() -> str | None:
    return shutil.which("xcrun")


def devicectl(args: list[str], timeout: float = 120.0) -> dict:
    """Run ``xcrun devicectl ARGS --json-output TMP`` and return the parsed JSON."""
    xcrun = xcrun_path()
    if not xcrun:
        raise EnvironmentMissing("xcrun is not on PATH (iOS devices need Xcode 15+ on macOS)")
    with tempfile.TemporaryDirectory(prefix="devicekit-devicectl-") as td:
        out = Path(td) / "out.json"
        try:
            r = subprocess.run(
                [xcrun, "devicectl", *args, "--json-output", str(out)], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise DeviceError(f"xcrun devicectl {' '.join(args[:3])} did not finish within {timeout:.0f} s") from None
        data = None
        if out.exists():
            try:
                data = json.loads(out.read_text(encoding="utf-8"))
            except ValueError:
                data = None
        if r.returncode != 0 or not data or data.get("info", {}).get("outcome") not in (None, "success"):
            msg = _error_text(data) or (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit {r.returncode}"]
            raise DeviceError(f"xcrun devicectl {' '.join(args[:3])} failed ({msg if isinstance(msg, str) else msg[0]})")
        return data


def _error_text(data: dict | None) -> str | None:
    err = (data or {}).get("error")
    if not err:
        return None
    ui = err.get("userInfo", {})
    desc = ui.get("NSLocalizedDescription", {})
    return desc.get("string") if isinstance(desc, dict) else str(desc) or err.get("domain")


def list_ios() -> list[DeviceInfo]:
    if not xcrun_path():
        return []
    data = devicectl(["list", "devices"])
    out = []
    for d in data.get("result", {}).get("devices", []):
        hw, dp, cp = d.get("hardwareProperties", {}), d.get("deviceProperties", {}), d.get("connectionProperties", {})
        if hw.get("platform", "iOS") != "iOS":
            continue
        state = "device"
        if cp.get("pairingState") not in (None, "paired"):
            state = "unauthorized"
        elif cp.get("tunnelState") == "unavailable" or dp.get("bootState") not in (None, "booted"):
            state = "offline"
        from .profiles import match_model

        prof = match_model("ios", hw.get("productType"))
        out.append(
            DeviceInfo(
                platform="ios",
                id=hw.get("udid") or d.get("identifier"),
                state=state,
                model=hw.get("productType"),
                name=hw.get("marketingName") or dp.get("name"),
                manufacturer="Apple",
                os=f"ios {dp['osVersionNumber']}" if dp.get("osVersionNumber") else None,
                soc=(prof or {}).get("soc"),
                transport="devicectl",
                profile=prof["id"] if prof else None,
                extra={"identifier": d.get("identifier"), "name": dp.get("name")},
            )
        )
    return out


class IOSDevice(Device):
    def __init__(self, info: DeviceInfo):
        self.info = info
        self.udid = info.id
        self._launched_pid = None

    def _container(self, app_id: str) -> list[str]:
        return ["--device", self.udid, "--domain-type", "appDataContainer", "--domain-identifier", app_id]

    def push(self, local: Path, remote: str, app_id: str = "com.devicekit.bench") -> None:
        devicectl(["device", "copy", "to", *self._container(app_id), "--source", str(local), "--destination", remote], 600)

    def pull(self, remote: str, local: Path, app_id: str = "com.devicekit.bench") -> bool:
        try:
            devicectl(["device", "copy", "from", *self._container(app_id), "--source", remote, "--destination", str(local)], 600)
        except DeviceError:
            return False
        return Path(local).exists()

    def is_installed(self, app_id: str) -> bool:
        data = devicectl(["device", "info", "apps", "--device", self.udid, "--bundle-id", app_id])
        return any(a.get("bundleIdentifier") == app_id for a in data.get("result", {}).get("apps", []))

    def install(self, app: Path) -> None:
        devicectl(["device", "install", "app", "--device", self.udid, str(app)], 600)

    def prepare_run(self, spec: RunSpec) -> None:
        name = "model" + Path(spec.model).suffix.lower()  # model.mlpackage/ or model.mlmodelc/
        self.push(spec.model, f"Documents/devicekit/{spec.run_id}/{name}", spec.app_id)
        for f in spec.golden_files():  # protocol 2's golden check
            self.push(f, f"Documents/devicekit/{spec.run_id}/{f.name}", spec.app_id)

    def launch(self, spec: RunSpec) -> None:
        env = {
            "DEVICEKIT_RUN": spec.run_id,
            "DEVICEKIT_FRAMES": str(spec.frames),
            "DEVICEKIT_WARMUP": str(spec.warmup),
            "DEVICEKIT_COMPUTE_UNITS": spec.compute_units or COMPUTE_UNITS.get(spec.delegate, "all"),
        }
        if spec.golden:
            env["DEVICEKIT_GOLDEN"] = "1"
        data = devicectl(
            ["device", "process", "launch", "--device", self.udid, "--terminate-existing", "--environment-variables", json.dumps(env), spec.app_id]
        )
        self._launched_pid = data.get("result", {}).get("process", {}).get("processIdentifier")

    def finished(self, spec: RunSpec) -> bool:
        with tempfile.TemporaryDirectory(prefix="devicekit-ios-") as td:
            return self.pull(f"Documents/devicekit/{spec.run_id}/done.json", Path(td) / "done.json", spec.app_id)

    def collect(self, spec: RunSpec, local_dir: Path) -> None:
        local_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="devicekit-ios-") as td:
            try:
                devicectl(
                    ["device", "copy", "from", *self._container(spec.app_id), "--source", f"Documents/devicekit/{spec.run_id}", "--destination", td],
                    600,
                )
            except DeviceError:
                return
            for name in RESULT_FILES:
                hits = list(Path(td).rglob(name))
                if hits:
                    shutil.copyfile(hits[0], local_dir / name)

    def stop(self, spec: RunSpec) -> None:
        if self._launched_pid is not None:
            try:
                devicectl(["device", "process", "signal", "--device", self.udid, "--pid", str(self._launched_pid), "--signal", "SIGKILL"])
            except DeviceError:
                pass
