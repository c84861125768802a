"""A fleet over the wire: `devicekit bench --device all | --device A --device B | --fleet TAG` against several
simulated phones at once (device_tests/simphone.py, the real ADB protocol), concurrency measured, failures
reported one line each while the other phones complete."""

from __future__ import annotations

import json
from pathlib import Path

from device_tests.conftest import no_app_processes, run_cli
from tests.cli_run import BLOCK_HEAVY, cli, one_line_error

PHONES = [("Pixel 7", "pixel7"), ("SM-S911B", "galaxy-s23"), ("Pixel 8", "pixel8")]


def _runs(fleet_dir: Path, doc: dict) -> dict:
    """Each device's summary.json (for those that got a run directory), by device."""
    out = {}
    for e in doc["devices"]:
        p = fleet_dir.parent / e["run_id"] / "summary.json"
        if p.exists():
            out[e["device"]] = json.loads(p.read_text())
    return out


def test_device_all_runs_phones_concurrently_and_reports_the_one_that_drops(phone_factory, model, tmp_path):
    # frames paced by the phone (25 ms each, as a real phone's own CPU would): the harness waits, so runs overlap
    good = [phone_factory(model=m, faults=("slow",), slow_ms=25.0) for m, _ in PHONES]
    bad = phone_factory(model="Pixel 7a", faults=("drop", "slow"), slow_ms=25.0, drop_after=20)
    env = {"DEVICEKIT_ADB": "direct", "DEVICEKIT_ADB_HOSTS": ",".join(p.address for p in [*good, bad])}
    r = run_cli(
        "bench",
        str(model),
        "--device",
        "all",
        "--frames",
        "60",
        "--warmup",
        "2",
        "--threads",
        "1",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "fleet1",
        env_extra=env,
        timeout=240,
    )
    msg = one_line_error(r, 3, "1 of 4 devices failed; the others ran", "fleet summary")
    fleet_dir = tmp_path / "runs" / "fleet1"
    doc = json.loads((fleet_dir / "fleet.json").read_text())
    status = {e["device"]: e for e in doc["devices"]}
    assert {p.address for p in [*good, bad]} == set(status)
    assert [status[p.address]["status"] for p in good] == ["ok"] * 3 and status[bad.address]["status"] == "failed"
    assert "connection lost" in status[bad.address]["error"] and "measured frames kept" in status[bad.address]["error"]
    assert f"failed: Pixel 7a ({bad.address}): device fault" in msg  # one line for the one that failed, saying why
    runs = _runs(fleet_dir, doc)
    for p, (_, profile) in zip(good, PHONES):  # every good phone complete, in its own run directory, its own profile
        s = runs[p.address]
        assert s["complete"] and s["stats"]["frames"] == 60 and s["profile"] == profile and s["device_id"] == p.address
        assert (fleet_dir.parent / status[p.address]["run_id"] / "frames.csv").read_text().count("\n") == 61
    lost = runs[bad.address]  # the phone that went away: its frames up to the drop kept, run marked incomplete
    assert not lost["complete"] and lost["stats"]["frames"] >= 1 and bad.dropped
    # concurrency, measured: the fleet took well under the sum of its runs (each run's own wall time, in its summary)
    walls = [s["wall_s"] for s in runs.values()]
    assert len(walls) == 4 and doc["wall_s"] < 0.7 * sum(walls), (doc["wall_s"], walls)
    spans = [(status[p.address]["start_s"], status[p.address]["start_s"] + status[p.address]["wall_s"]) for p in good]
    assert max(a for a, _ in spans) < min(b for _, b in spans), spans  # the good phones' runs were all under way at once
    # the side-by-side table on stderr: a row per phone with its p50 and status
    for name in ("Pixel 7", "Galaxy S23", "Pixel 8", "Pixel 7a"):
        assert name in r.stderr
    assert "accelerator" in r.stderr and "litert 2.1.0" in r.stderr
    # the report takes the fleet and shows the devices side by side, the failed one included
    rep = run_cli("report", str(fleet_dir), "--format", "md")
    assert rep.returncode == 0, rep.stderr
    fleet_md = rep.stdout.split("## fleet fleet1\n\n")[1].split("\n\n")[0].splitlines()
    assert fleet_md[0].startswith("| device | p50 ms | p90 ms | p99 ms | jank >33.3ms | thermal | accelerator | runtime | golden")
    rows = fleet_md[2:]
    assert len(rows) == 4 and sum("| ok |" in ln for ln in rows) == 3 and "| failed | device fault" in rows[3]
    html = run_cli("report", str(fleet_dir), "-o", str(tmp_path / "f.html"))
    assert html.returncode == 0 and "3 of 4 devices ran" in (tmp_path / "f.html").read_text()
    for p in good:
        p.stop()
    bad.stop()
    assert no_app_processes()


def test_several_devices_one_unauthorized_and_fleet_by_tag(phone_factory, model, tmp_path, monkeypatch):
    a = phone_factory(model="Pixel 7")
    b = phone_factory(model="SM-S911B")
    locked = phone_factory(faults=("unauthorized",))
    monkeypatch.setenv("DEVICEKIT_ADB", "direct")
    monkeypatch.setenv("DEVICEKIT_ADB_AUTH_TIMEOUT", "2")
    (tmp_path / "devicekit.toml").write_text(
        f'[[fleet]]\ndevice = "{a.address}"\nname = "desk-pixel"\ntags = ["ci"]\n\n'
        f'[[fleet]]\ndevice = "{b.address}"\nname = "desk-s23"\ntags = ["ci", "samsung"]\n\n'
        f'[[fleet]]\ndevice = "{locked.address}"\nname = "locked"\n'
    )
    r = cli(
        "bench",
        model,
        "--device",
        a.address,
        "--device",
        locked.address,
        "--frames",
        "20",
        "--runs-dir",
        "runs",
        "--run-id",
        "two",
        "--json",
        cwd=tmp_path,
        timeout=240,
    )
    one_line_error(r, 3, "1 of 2 devices failed", f"failed: {locked.address} ({locked.address}): {locked.address}: unauthorized")
    doc = json.loads(r.stdout)
    assert [e["status"] for e in doc["devices"]] == ["ok", "failed"] and doc["devices"][1]["run_dir"] is None
    assert json.loads((tmp_path / "runs/two/fleet.json").read_text()) == doc  # the file is what was printed
    # --fleet TAG: the [[fleet]] entries tagged ci, by name, both complete
    r = cli("bench", model, "--fleet", "ci", "--frames", "20", "--runs-dir", "runs", "--run-id", "ci", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [(e["label"], e["status"]) for e in doc["devices"]] == [("desk-pixel", "ok"), ("desk-s23", "ok")] and doc["complete"]
    # --device all: the attached phone that is unauthorized is listed as refused with its reason, not left out
    monkeypatch.setenv("DEVICEKIT_ADB_HOSTS", f"{a.address},{locked.address}")
    r = cli("bench", model, "--device", "all", "--frames", "20", "--runs-dir", "runs", "--run-id", "all", "--json", cwd=tmp_path, timeout=240)
    one_line_error(r, 3, "1 of 2 devices failed", f"({locked.address}): unauthorized")
    doc = json.loads(r.stdout)
    assert [(e["device"], e["status"]) for e in doc["devices"]] == [(a.address, "ok"), (locked.address, "refused")]
    monkeypatch.delenv("DEVICEKIT_ADB_HOSTS")
    # bad usage: one line, exit 2, nothing run
    one_line_error(cli("bench", model, "--fleet", "nokia", cwd=tmp_path), 2, "--fleet nokia: no [[fleet]] entry")
    one_line_error(cli("bench", model, "--fleet", "ci", "--device", "all", cwd=tmp_path), 2, "give --device or --fleet, not both")
    one_line_error(cli("bench", model, "--device", a.address, "--device", a.address, cwd=tmp_path), 2, "is given twice")
    one_line_error(cli("bench", model, "--device", "all", "--device", a.address, cwd=tmp_path), 2, "give it alone")
    one_line_error(
        cli("bench", model, "--device", a.address, "--device", b.address, "--run-id", "x" * 41, cwd=tmp_path),
        2,
        "--run-id of a fleet is at most 40 characters",
    )
    (tmp_path / "devicekit.toml").write_text('[[fleet]]\ndevice = "10.0.0.1:70000"\n')
    one_line_error(cli("bench", model, "--fleet", "x", cwd=tmp_path), 2, "is not host:port")
    # every run in its own directory beside the fleet's; the unauthorized phone never got one
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "all",
        "all-01-Pixel-7",
        "ci",
        "ci-01-desk-pixel",
        "ci-02-desk-s23",
        "two",
        f"two-01-127-0-0-1-{a.port}",
    ]


def test_remote_adb_through_the_adb_client_reconnects_and_disconnects(adb_client, phone_factory, model, tmp_path):
    """host:port phones through the adb server: connected, checked, used, disconnected; the one whose connection
    resets mid-run (at the first poll) is reconnected and the run goes on to every frame."""
    steady = phone_factory(model="Pixel 7")
    flaky = phone_factory(model="SM-S911B", faults=("flaky",))
    r = run_cli(
        "bench",
        str(model),
        "--device",
        steady.address,
        "--device",
        flaky.address,
        "--frames",
        "30",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "remote",
        env_extra={"DEVICEKIT_ADB": "client"},
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [e["status"] for e in doc["devices"]] == ["ok", "ok"] and flaky.flaked
    runs = _runs(tmp_path / "runs" / "remote", doc)
    assert [(s["transport"], s["stats"]["frames"], s["complete"]) for s in runs.values()] == [("adb", 30, True)] * 2
    listed = adb_client("devices").stdout
    assert steady.address not in listed and flaky.address not in listed  # devicekit disconnected what it connected


def test_ctrl_c_stops_every_phone_and_keeps_their_frames(phone_factory, model, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from device_tests.conftest import ROOT

    phones = [phone_factory(model=m, faults=("slow",), slow_ms=20.0) for m in ("Pixel 7", "Pixel 8")]
    env = dict(os.environ, DEVICEKIT_ADB="direct", PYTHONPATH=str(ROOT))
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devicekit",
            "bench",
            str(model),
            *sum((["--device", ph.address] for ph in phones), []),
            "--frames",
            "2000",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--run-id",
            "cc",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(ROOT),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )
    on_phone = [ph.root / "sdcard/Android/data/com.devicekit.bench/files/devicekit" for ph in phones]
    deadline = time.time() + 60
    while time.time() < deadline and not all(
        len(list(d.glob("*/frames.csv"))) and len(next(d.glob("*/frames.csv")).read_text().splitlines()) > 60 for d in on_phone
    ):
        time.sleep(0.2)
    time.sleep(1.5)  # let devicekit copy the frames measured so far
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=90)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    doc = json.loads((tmp_path / "runs/cc/fleet.json").read_text())
    assert [e["status"] for e in doc["devices"]] == ["interrupted", "interrupted"] and not doc["complete"]
    for s in _runs(tmp_path / "runs/cc", doc).values():
        assert s["complete"] is False and s["error"] == "interrupted" and s["stats"]["frames"] >= 20
    assert all(not ph.children for ph in phones) and no_app_processes()  # am force-stop ended both apps


def test_a_fleet_and_its_report_stay_light(phone_factory, model, tmp_path):
    """The fleet path and the fleet report in a process where importing torch/tensorflow fails: the host and a
    simulated phone side by side, an address nothing listens on reported as the one failure."""
    import os
    import subprocess
    import sys

    from device_tests.conftest import ROOT, free_port

    phone = phone_factory(model="Pixel 7")
    runs, gone = tmp_path / "runs", f"127.0.0.1:{free_port()}"
    commands = [
        [
            "bench",
            str(model),
            "--device",
            "host",
            "--device",
            phone.address,
            "--device",
            gone,
            "--frames",
            "10",
            "--runs-dir",
            str(runs),
            "--run-id",
            "light",
        ],
        ["report", str(runs / "light"), "-o", str(tmp_path / "r.html")],
    ]
    code = (
        BLOCK_HEAVY
        + f"""
from devicekit.cli import app
codes = []
for args in {commands!r}:
    codes.append(app(args, standalone_mode=False) or 0)  # click returns the exit code of typer.Exit here
bad = [m for m in sys.modules if m.split(".")[0] in ("torch", "tensorflow")]
assert not bad, bad
print("LIGHT", codes)
"""
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(ROOT),
        env=dict(os.environ, DEVICEKIT_ADB="direct", PYTHONPATH=str(ROOT)),
    )
    assert "LIGHT [3, 0]" in r.stdout, r.stderr[-2000:]
    msg = " ".join(r.stderr.split())
    assert "1 of 3 devices failed" in msg and f"failed: {gone} ({gone}): {gone}: cannot connect" in msg
    doc = json.loads((runs / "light" / "fleet.json").read_text())
    assert [e["status"] for e in doc["devices"]] == ["ok", "ok", "failed"]
    html = (tmp_path / "r.html").read_text()
    assert "2 of 3 devices ran" in html and f"Pixel 7 ({phone.address})" in html and "cannot connect" in html


def test_golden_gate_failing_on_one_phone_exits_1_with_the_error_side_by_side(phone_factory, tmp_path):
    from device_tests.models import tiny_landmark_tflite

    art = tiny_landmark_tflite(tmp_path / "m")
    good, drift = phone_factory(model="Pixel 7"), phone_factory(model="Pixel 8", faults=("golden-drift",))
    r = run_cli(
        "bench",
        str(art),
        "--device",
        good.address,
        "--device",
        drift.address,
        "--frames",
        "15",
        "--golden",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "gold",
        env_extra={"DEVICEKIT_ADB": "direct"},
    )
    msg = one_line_error(r, 1, "1 of 2 devices failed", f"failed: {drift.address} ({drift.address}): golden check on the device failed")
    assert "0 px mean, pass" in msg and "FAIL" in msg  # the golden column: each phone's error and verdict
    doc = json.loads((tmp_path / "runs/gold/fleet.json").read_text())
    assert [(e["status"], e["exit_code"]) for e in doc["devices"]] == [("ok", None), ("golden-failed", 1)]
    runs = _runs(tmp_path / "runs/gold", doc)
    assert runs[drift.address]["complete"] and runs[drift.address]["stats"]["frames"] == 15  # the run itself is kept whole
