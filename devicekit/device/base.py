"""The device layer's one interface: list / push / install / launch / pull.

Android (adb client or adb-shell), iOS (xcrun devicectl) and the host sit
behind :class:`Device`. The bench runner only talks to this interface.
"""

from __future__ import annotations

import abc
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

RUN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a run id: the folder name under runs/
# what an app leaves in its run directory (DEVICE_PROTOCOL.md; golden_result.json from protocol 2 on)
RESULT_FILES = ("golden_result.json", "frames.csv", "device.json", "done.json")

@dataclass
class DeviceInfo:
    platform: str  # android | ios | host
    id: str  # adb serial, iOS UDID, or "host"
    state: str = "device"  # device | unauthorized | offline | unavailable ...
    model: str | None = None  # ro.product.model, productType, or the CPU
    name: str | None = None  # marketing name when known
    manufacturer: str | None = None
    os: str | None = None  # "android 14", "ios 17.4"
    soc: str | None = None
    transport: str = ""  # adb | adb-shell | devicectl | local
    profile: str | None = None  # matched profile name in devicekit/data/devices.json
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def usable(self) -> bool:
        return self.state in ("device", "available", "connected")


@dataclass(frozen=True)
class RunSpec:
    """One benchmark run, as the protocol's launch parameters."""

    run_id: str
    frames: int
    warmup: int
    threads: int
    delegate: str
    model: Path
    timeout_s: float
    app_id: str = "com.devicekit.bench"
    duration_s: float | None = None
    golden: Path | None = None  # protocol 2: a folder with golden.json + golden_input.bin to put in the run directory
    compute_units: str | None = None  # iOS DEVICEKIT_COMPUTE_UNITS; None: from the delegate

    GOLDEN_FILES = ("golden.json", "golden_input.bin")

    def golden_files(self) -> list[Path]:
        return [self.golden / n for n in self.GOLDEN_FILES] if self.golden else []


class Device(abc.ABC):
    """One attached device. Implementations raise DeviceError for device problems."""

    info: DeviceInfo

    @abc.abstractmethod
    def push(self, local: Path, remote: str) -> None: ...

    @abc.abstractmethod
    def pull(self, remote: str, local: Path) -> bool:
        """Copy one remote file; False when it does not exist."""

    @abc.abstractmethod
    def is_installed(self, app_id: str) -> bool: ...

    @abc.abstractmethod
    def install(self, app: Path) -> None: ...

    @abc.abstractmethod
    def prepare_run(self, spec: RunSpec) -> None:
        """Create the run directory and put the model there."""

    @abc.abstractmethod
    def launch(self, spec: RunSpec) -> None: ...

    @abc.abstractmethod
    def finished(self, spec: RunSpec) -> bool:
        """True once the run directory holds done.json."""

    @abc.abstractmethod
    def collect(self, spec: RunSpec, local_dir: Path) -> None:
        """Copy whatever result files exist (RESULT_FILES) to local_dir."""

    @abc.abstractmethod
    def stop(self, spec: RunSpec) -> None:
        """End the app (timeout or interrupt)."""

    def progress(self, spec: RunSpec, local_dir: Path) -> None:
        """Copy the frames measured so far (kept if the device goes away mid-run). Optional."""
        return None

    def thermal(self) -> int | None:
        return None

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
