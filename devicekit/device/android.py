"""Android over ADB, exactly as DEVICE_PROTOCOL.md says (protocol 2; results of protocol 1 apps are read too)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..errors import DeviceError
from .adb import AdbClient, AdbShellDirect, adb_path, client_connect, client_devices, is_tcp_serial
from .base import RESULT_FILES, Device, DeviceInfo, RunSpec

ACTIVITY = ".DevicekitBenchmarkActivity"
PROPS = {
    "model": "ro.product.model",
    "manufacturer": "ro.product.manufacturer",
    "release": "ro.build.version.release",
    "sdk": "ro.build.version.sdk",
    "soc": "ro.soc.model",
    "abi": "ro.product.cpu.abi",
}


def run_dir(app_id: str, run_id: str) -> str:
    return f"/sdcard/Android/data/{app_id}/files/devicekit/{run_id}"


def launch_argv(spec: RunSpec) -> list[str]:
    return [
        "am",
        "start",
        "-W",
        "-S",
        "-n",
        f"{spec.app_id}/{ACTIVITY}",
        "--es",
        "devicekit.run",
        spec.run_id,
        "--ei",
        "devicekit.frames",
        str(spec.frames),
        "--ei",
        "devicekit.warmup",
        str(spec.warmup),
        "--es",
        "devicekit.delegate",
        spec.delegate,
        "--ei",
        "devicekit.threads",
        str(spec.threads),
    ] + (["--ez", "devicekit.golden", "true"] if spec.golden else [])


def parse_thermal(text: str) -> int | None:
    m = re.search(r"Thermal Status:\s*(\d)", text)
    return int(m.group(1)) if m else None


def choose_transport(mode: str | None = None) -> str:
    """``client`` when the adb client is on PATH (or asked for), else ``direct`` (adb-shell)."""
    import os

    mode = (mode or os.environ.get("DEVICEKIT_ADB") or "auto").lower()
    if mode not in ("auto", "client", "direct"):
        raise DeviceError(f"DEVICEKIT_ADB must be auto, client or direct, not {mode!r}")
    if mode == "auto":
        return "client" if adb_path() else "direct"
    return mode


class AndroidDevice(Device):
    def __init__(self, serial: str, transport: str | None = None):
        kind = choose_transport(transport)
        if kind == "client":
            self.t = AdbClient(serial)
        else:
            self.t = AdbShellDirect(serial)
        self.serial = serial
        self.info = self._query_info()

    def _sh(self, *argv: str, timeout: float = 60.0) -> tuple[int, str]:
        return self.t.shell(list(argv), timeout)

    def _query_info(self) -> DeviceInfo:
        vals = {}
        for key, prop in PROPS.items():
            rc, out = self._sh("getprop", prop)
            vals[key] = out.strip() or None if rc == 0 else None
        from .profiles import match_model

        prof = match_model("android", vals.get("model"))
        return DeviceInfo(
            platform="android",
            id=self.serial,
            state="device",
            model=vals["model"],
            name=prof["name"] if prof else vals["model"],
            manufacturer=vals["manufacturer"],
            os=f"android {vals['release']}" if vals.get("release") else None,
            soc=vals["soc"],
            transport=self.t.name,
            profile=prof["id"] if prof else None,
            extra={"sdk": vals["sdk"], "abi": vals["abi"]},
        )

    def thermal(self) -> int | None:
        rc, out = self._sh("dumpsys", "thermalservice")
        return parse_thermal(out) if rc == 0 else None

    def push(self, local: Path, remote: str) -> None:
        self.t.push(Path(local), remote)

    def pull(self, remote: str, local: Path) -> bool:
        return self.t.pull(remote, Path(local))

    def is_installed(self, app_id: str) -> bool:
        rc, out = self._sh("pm", "path", app_id)
        return rc == 0 and "package:" in out

    def install(self, app: Path) -> None:
        digest = hashlib.sha256(Path(app).read_bytes()).hexdigest()[:12]
        remote = f"/data/local/tmp/devicekit-{digest}.apk"
        self.push(app, remote)
        rc, out = self._sh("pm", "install", "-r", "-t", remote, timeout=300)
        self._sh("rm", "-f", remote)
        if rc != 0 or "Success" not in out:
            raise DeviceError(f"{self.serial}: pm install {Path(app).name} failed ({out.strip()[-200:] or f'exit {rc}'})")

    def prepare_run(self, spec: RunSpec) -> None:
        d = run_dir(spec.app_id, spec.run_id)
        rc, out = self._sh("mkdir", "-p", d)
        if rc != 0:
            raise DeviceError(f"{self.serial}: mkdir -p {d} failed ({out.strip() or f'exit {rc}'})")
        self.push(spec.model, f"{d}/model.tflite")
        for f in spec.golden_files():  # protocol 2's golden check: the reference outputs and the input tensor
            self.push(f, f"{d}/{f.name}")

    def launch(self, spec: RunSpec) -> None:
        rc, out = self._sh(*launch_argv(spec), timeout=120)
        if rc != 0 or re.search(r"^Error", out, re.M):
            err = next((ln for ln in out.splitlines() if ln.startswith("Error")), out.strip()[-200:])
            raise DeviceError(f"{self.serial}: am start failed ({err or f'exit {rc}'})", hint=f"is {spec.app_id} installed? pass --apk FILE")

    def finished(self, spec: RunSpec) -> bool:
        return self.t.stat(f"{run_dir(spec.app_id, spec.run_id)}/done.json") is not None

    def collect(self, spec: RunSpec, local_dir: Path) -> None:
        local_dir.mkdir(parents=True, exist_ok=True)
        d = run_dir(spec.app_id, spec.run_id)
        for name in RESULT_FILES:
            self.pull(f"{d}/{name}", local_dir / name)

    def progress(self, spec: RunSpec, local_dir: Path) -> None:
        local_dir.mkdir(parents=True, exist_ok=True)
        self.pull(f"{run_dir(spec.app_id, spec.run_id)}/frames.csv", local_dir / "frames.csv")

    def stop(self, spec: RunSpec) -> None:
        self._sh("am", "force-stop", spec.app_id)

    def close(self) -> None:
        self.t.close()


def list_android(direct_serials: list[str] | None = None, transport: str | None = None) -> list[DeviceInfo]:
    """Attached Android devices with model/OS/SoC; unauthorized/offline ones with their state."""
    out: list[DeviceInfo] = []
    serials = list(direct_serials or [])
    if choose_transport(transport) == "client":
        failed = {s: msg for s, msg in zip(serials, _each(_try_connect, serials)) if msg}
        listed = client_devices()
        for s, msg in failed.items():
            if s not in {row[0] for row in listed}:
                state = "unauthorized" if "unauthorized" in msg else "offline"
                out.append(DeviceInfo("android", s, state=state, transport="adb", extra={"error": msg}))
        ready = [serial for serial, state, _ in listed if state == "device"]
        described = dict(zip(ready, _each(lambda serial: _describe(serial, "client"), ready)))
        for serial, state, props in listed:
            if state != "device":
                out.append(DeviceInfo("android", serial, state=state, model=props.get("model"), transport="adb"))
                continue
            out.append(described[serial])
        return out
    return out + _each(lambda serial: _describe(serial, "direct"), serials)


def _try_connect(serial: str) -> str | None:
    try:
        client_connect(serial)
    except DeviceError as exc:
        return exc.message
    return None


def _each(fn, items: list) -> list:
    """``[fn(x) for x in items]``, the phones asked at once: listing fifty phones one after another took seconds
    (benchmarks/fleet_scale.md); each answer is mostly waiting on its own socket."""
    if len(items) < 2:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(32, len(items)), thread_name_prefix="devices") as pool:
        return list(pool.map(fn, items))


def _describe(serial: str, transport: str) -> DeviceInfo:
    try:
        dev = AndroidDevice(serial, transport)
    except DeviceError as exc:
        state = "unauthorized" if "unauthorized" in exc.message else "offline"
        return DeviceInfo("android", serial, state=state, transport="adb" if transport == "client" else "adb-shell", extra={"error": exc.message})
    try:
        return dev.info
    finally:
        dev.close()


def parse_serials(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip() and is_tcp_serial(s.strip())]
