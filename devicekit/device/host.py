"""The host as a device: the frame loop in-process, writing the protocol's files."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from ..fsutil import atomic_write_text
from .base import RESULT_FILES, Device, DeviceInfo, RunSpec
from .loop import device_json, done_json, frames_csv, golden_check, host_facts, load_model, run_loop, runtime_version, write_done


def host_info() -> DeviceInfo:
    f = host_facts()
    return DeviceInfo(platform="host", id="host", state="device", model=f["model"], name="host",
                      manufacturer=f["manufacturer"], os=f["os"], soc=f["soc"], transport="local", profile="host")


class HostDevice(Device):
    def __init__(self, mean=None, std=None):
        self.info = host_info()
        self._root = Path(tempfile.mkdtemp(prefix="devicekit-host-"))
        self.mean, self.std = mean, std
        self.live = None  # set by the bench runner: a LiveRun that gets each measured row as it is made

    def _dir(self, spec: RunSpec) -> Path:
        return self._root / spec.run_id

    def push(self, local: Path, remote: str) -> None:
        dst = self._root / remote
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, dst)

    def pull(self, remote: str, local: Path) -> bool:
        src = self._root / remote
        if not src.exists():
            return False
        shutil.copyfile(src, local)
        return True

    def is_installed(self, app_id: str) -> bool:
        return True  # the host runs the loop in-process: nothing to install

    def install(self, app: Path) -> None:
        return None

    def prepare_run(self, spec: RunSpec) -> None:
        self._dir(spec).mkdir(parents=True, exist_ok=True)
        for f in spec.golden_files():
            shutil.copyfile(f, self._dir(spec) / f.name)

    def launch(self, spec: RunSpec) -> None:
        """Run synchronously. The loop keeps measured frames on interrupt; files are written either way."""
        d = self._dir(spec)
        model, load_us = None, None
        if spec.golden:  # protocol 2: golden_result.json first, from the same loaded model
            t0 = time.perf_counter_ns()
            model = load_model(spec.model, spec.threads, spec.delegate, self.mean, self.std)
            load_us = (time.perf_counter_ns() - t0) // 1000
            golden_check(model, d)
        res = run_loop(spec.model, spec.frames, spec.warmup, spec.threads, spec.delegate, spec.duration_s,
                       mean=self.mean, std=self.std, model=model, on_row=self.live.add if self.live is not None else None)
        if load_us is not None:
            res.load_us = load_us
        atomic_write_text(d / "frames.csv", frames_csv(res.rows))
        atomic_write_text(d / "device.json", json.dumps(device_json(host_facts(), res, spec.delegate, spec.threads,
                                                                    runtime=runtime_version(spec.model))))
        write_done(d, done_json(res))
        if res.status != "ok" and res.error and res.error.startswith("interrupted"):
            raise KeyboardInterrupt

    def finished(self, spec: RunSpec) -> bool:
        return (self._dir(spec) / "done.json").exists()

    def collect(self, spec: RunSpec, local_dir: Path) -> None:
        local_dir.mkdir(parents=True, exist_ok=True)
        for name in RESULT_FILES:
            src = self._dir(spec) / name
            if src.exists():
                shutil.copyfile(src, local_dir / name)

    def stop(self, spec: RunSpec) -> None:
        return None

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)
