"""Fan-out at scale, on simulated phones: `devicekit bench --device all` over N phones, wall time and the harness's own CPU.

Each simulated phone (device_tests/simphone.py, the real ADB wire protocol on 127.0.0.1) runs in its own process
with `--fault slow` (40 ms per frame: the phone, not this CPU, paces the frames, as a real phone would). The
harness is the `devicekit bench` process and its children (the model check's LiteRT probe); its CPU time is
getrusage(RUSAGE_CHILDREN) around it, which excludes the phones (separate processes, reaped at the end) and their
app processes. A baseline runs one phone alone, three times. Writes the Markdown and JSON given with --out.

    nice .venv/bin/python benchmarks/fleet_scale.py --counts 4 8 16 --out benchmarks/fleet_scale.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, machine, run_record  # noqa: E402
from device_tests.models import tiny_tflite  # noqa: E402

MODELS = ("Pixel 7", "SM-S911B", "Pixel 8", "Pixel 7a")


def start_phones(n: int, work: Path) -> list[tuple[subprocess.Popen, str]]:
    phones = []
    for k in range(n):
        p = subprocess.Popen([sys.executable, "-m", "device_tests.simphone", "--port", "0", "--model", MODELS[k % 4],
                              "--root", str(work / f"phone{k}"), "--fault", "slow"],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()  # "simphone (SIMULATION): ... listening on 127.0.0.1:PORT, ..."
        phones.append((p, line.split("listening on ")[1].split(",")[0]))
    return phones


def stop_phones(phones) -> None:
    for p, _ in phones:
        p.send_signal(signal.SIGTERM)
    for p, _ in phones:
        p.wait(timeout=60)


def harness(args: list[str], env: dict) -> dict:
    """Run the CLI; wall, CPU (user + sys of it and its children), peak RSS and threads of the CLI process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "devicekit", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    proc, rss, threads = psutil.Process(p.pid), 0, 0
    while p.poll() is None:
        try:
            rss, threads = max(rss, proc.memory_info().rss), max(threads, proc.num_threads())
        except psutil.Error:
            pass
        time.sleep(0.1)
    out, err = p.communicate()
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"rc": p.returncode, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mib": round(rss / 2**20, 1),
            "peak_threads": threads, "stdout": out, "stderr": err}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "fleet_scale.md")
    a = ap.parse_args()
    model = tiny_tflite()
    t_start = time.monotonic()
    load0 = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="fleet-scale-"))
    env = dict(os.environ, HOME=str(work / "home"), DEVICEKIT_ADB="direct", PYTHONPATH=str(ROOT),
               TF_CPP_MIN_LOG_LEVEL="3")
    (work / "home").mkdir()
    common = [str(model), "--frames", str(a.frames), "--warmup", "2", "--threads", "1", "--json"]
    phones = start_phones(1, work / "single")
    try:
        singles = [harness(["bench", *common, "--device", phones[0][1], "--runs-dir", str(work / "runs")], env)
                   for _ in range(3)]
    finally:
        stop_phones(phones)
    assert all(s["rc"] == 0 for s in singles), [s["stderr"][-400:] for s in singles]
    single_wall = sum(s["wall_s"] for s in singles) / 3
    single_cpu = sum(s["cpu_s"] for s in singles) / 3
    rows = []
    for n in a.counts:
        phones = start_phones(n, work / f"n{n}")
        try:
            fenv = dict(env, DEVICEKIT_ADB_HOSTS=",".join(addr for _, addr in phones))
            h = harness(["bench", *common, "--device", "all", "--runs-dir", str(work / "runs"), "--run-id", f"scale{n}"],
                        fenv)
        finally:
            stop_phones(phones)
        doc = json.loads(h["stdout"]) if h["stdout"].strip() else {"devices": [], "wall_s": None}
        ok = sum(e["status"] == "ok" for e in doc["devices"])
        run_walls = [e["wall_s"] for e in doc["devices"] if e.get("wall_s")]
        rows.append({"phones": n, "ok": ok, "rc": h["rc"], "cli_wall_s": h["wall_s"], "fleet_wall_s": doc["wall_s"],
                     "sum_single_s": round(n * single_wall, 1), "speedup": round(n * single_wall / h["wall_s"], 2),
                     "mean_device_run_s": round(sum(run_walls) / max(1, len(run_walls)), 2),
                     "cpu_s": h["cpu_s"], "cpu_per_device_s": round(h["cpu_s"] / n, 2),
                     "cpu_marginal_s": round((h["cpu_s"] - single_cpu) / max(1, n - 1), 3), "peak_rss_mib": h["peak_rss_mib"],
                     "peak_threads": h["peak_threads"],
                     "errors": [e["error"] for e in doc["devices"] if e["status"] != "ok"][:3] or
                               ([h["stderr"].strip().splitlines()[-1]] if h["rc"] else [])})
        print(json.dumps(rows[-1]), flush=True)
    rec = run_record(f"nice .venv/bin/python benchmarks/fleet_scale.py --counts {' '.join(map(str, a.counts))} "
                     f"--frames {a.frames}", time.monotonic() - t_start)
    rec["load"] = [round(v, 1) for v in load0]
    result = {**rec, "frames": a.frames, "single": {"wall_s": round(single_wall, 2), "cpu_s": round(single_cpu, 2),
                                                      "runs": [{k: s[k] for k in ("wall_s", "cpu_s", "peak_rss_mib")}
                                                               for s in singles]}, "fleets": rows}
    a.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    a.out.write_text(render(result))
    return 0


def render(r: dict) -> str:
    lines = [
        "# Fleet fan-out on simulated phones: wall time and the harness's own CPU",
        "",
        f"Command: `{r['cmd']}`  ",
        f"Machine: {r['machine']}; shared with other jobs, 1-min load average {r['load'][0]} at the start  ",
        f"Date: {r['date']} ({r['minutes']} min)",
        "",
        "**Simulated phones only** (device_tests/simphone.py: the real ADB wire protocol over 127.0.0.1, adb-shell "
        "transport, no adb server). Each phone is its own process and runs its app (device_tests/simapp.py: the real "
        f"LiteRT interpreter on the pushed model) on this same 2-core machine, {r['frames']} frames at 40 ms extra each "
        "(`--fault slow`: the phone paces its frames). So the phones' own CPU competes with the harness here, which "
        "a real fleet's phones do not.",
        "",
        f"One phone alone (`--device HOST:PORT`, mean of 3): **{r['single']['wall_s']} s wall, "
        f"{r['single']['cpu_s']} s harness CPU**.",
        "",
        "| phones | ok | exit | CLI wall s | fleet wall s | N x single s | speed-up | mean device run s | harness CPU s | "
        "CPU per device s | CPU per extra device s | peak RSS MiB | peak threads | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in r["fleets"]:
        lines.append(f"| {f['phones']} | {f['ok']} | {f['rc']} | {f['cli_wall_s']} | {f['fleet_wall_s']} | {f['sum_single_s']} | "
                     f"{f['speedup']}x | {f['mean_device_run_s']} | {f['cpu_s']} | {f['cpu_per_device_s']} | "
                     f"{f['cpu_marginal_s']} | {f['peak_rss_mib']} | {f['peak_threads']} | {'; '.join(f['errors'])[:200] or '-'} |")
    lines += [
        "",
        "Harness CPU = user + system time of the `devicekit bench` process and its children (the model check's LiteRT "
        "probe), from getrusage(RUSAGE_CHILDREN); the phones and their apps are not in it. CPU per extra device = (fleet "
        "CPU - single-phone CPU) / (N - 1): what one more phone costs once the process has started and imported. N x single = N times the "
        "single-phone wall: what running the phones one after another would take. Mean device run = each device's "
        "own wall time in the fleet (connect, push, launch, poll, pull), from fleet.json.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
