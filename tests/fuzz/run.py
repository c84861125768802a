"""Run ``devicekit check``, ``verify`` and ``bench`` on mutants and judge each outcome against the oracle.

Two ways to run the commands:

- ``subprocess``: a fresh ``python -m devicekit ...`` per command and mutant (what a user runs; slowest).
- ``worker``: a fork server (``forkserver.py``) with devicekit, torch, cv2 and LiteRT imported once forks one
  throw-away child per mutant, which runs the commands one after the other in-process (``devicekit.cli.app``,
  the same code a user runs) and records each exit code before starting the next, so a crash is charged to
  the command that was running. ``check`` gets LiteRT's verdict from the oracle's own run of
  ``devicekit.runtime.probe._run`` (``probe.remember``) instead of asking a second child for the same bytes.

Outcome of one command on one mutant (``classify``): ``crash`` (killed by a signal), ``hang`` (timeout),
``traceback`` (a Python traceback or "internal error" on stderr), ``silent-accept`` (exit 0 although the runtime
refuses, crashes on, or cannot allocate / run the file), ``false-refusal`` (exit 2 from check or bench on a
structurally sound file the runtime runs), ``wrong-code`` (exit 3, the device/environment code, for a bad
file), else ``ok``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .oracle import BAD, ROOT

TIMEOUTS = {"check": 120.0, "bench": 120.0, "verify": 300.0}
COMMANDS = ("check", "verify", "bench")
PROBLEMS = ("crash", "hang", "traceback", "silent-accept", "false-refusal", "wrong-code")


@dataclass
class Record:
    mutant: str
    seed: str
    format: str
    how: str
    oracle: dict
    outcomes: dict = field(default_factory=dict)  # command -> {rc, seconds, verdict, message}


def argv(command: str, path: Path, seed, faces: Path, runs: Path, frames: int = 3) -> list[str]:
    if command == "check":
        return ["check", str(path), "--json"]
    if command == "bench":
        return ["bench", str(path), "--device", "host", "--frames", str(frames), "--warmup", "1", "--threads", "1",
                "--runs-dir", str(runs), "--json"]
    return ["verify", str(path), "--reference", seed.reference, "--images", str(faces), "--json"]


def classify(command: str, rc: int | None, stderr: str, oracle: dict, fmt: str = "tflite") -> str:
    """One outcome against the oracle's verdict (see the module docstring)."""
    if rc is None:
        return "hang"
    if rc < 0 or rc > 130:
        return "crash"
    if "Traceback (most recent call last)" in stderr or "internal error" in stderr:
        return "traceback"
    verdict = oracle.get("verdict")
    runs = verdict == "runs"
    if command == "bench" and oracle.get("xnnpack") is not None:
        runs = oracle["xnnpack"] == "runs"  # bench's default delegate is XNNPACK, as on a phone
    if rc == 0 and (verdict in BAD or (command == "bench" and not runs)):
        return "silent-accept"
    if rc == 3 and not runs:
        return "wrong-code"
    if rc == 2 and runs and not oracle.get("unsound") and (command == "check" or (command == "bench" and fmt != "mlpackage")):
        return "false-refusal"  # (the host benches .tflite and .onnx; an .mlpackage is for an iPhone)
    return "ok"


def last_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith("INFO:")]
    return lines[-1][:300] if lines else ""


def run_subprocess(args: list[str], timeout: float, devicekit_root: Path | None = None) -> tuple[int | None, str]:
    env = dict(os.environ, PYTHONPATH=str(devicekit_root or ROOT), TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="200")
    p = subprocess.Popen([sys.executable, "-m", "devicekit", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=env, cwd=str(devicekit_root or ROOT), stdin=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout)
        return p.returncode, err
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the command and anything it started
        p.communicate()
        return None, ""


# ------------------------------------------------------------------------------------------------ worker

CLI_WARM = ["fuzz.run:warm"]
_COMMAND = None


def warm() -> None:
    """Run once in the fork server: import what the commands import and fill the caches they fill (rule tables,
    the schema's enums, the click command tree), so a forked child starts with them."""
    global _COMMAND
    import importlib

    import typer

    for mod in ("numpy", "rich.table", "ai_edge_litert.interpreter", "ai_edge_litert.schema_py_generated", "onnx",
                "torch", "cv2", "devicekit.converters", "devicekit.verify.run", "devicekit.bench.runner",
                "devicekit.check", "devicekit.runtime.validate", "devicekit.face.detect"):
        try:
            importlib.import_module(mod)
        except ImportError:  # (another checkout may lack a module)
            pass
    from devicekit.check import rules
    from devicekit.cli import app
    from devicekit.modelfile.tflite import _enums

    _enums()
    for name in ("budgets", "litert_builtin", "xnnpack", "gpu", "nnapi", "flex", "coreml_ane", "arena"):
        try:
            rules.load(name)
        except Exception:  # noqa: BLE001 - a checkout without that table
            pass
    _COMMAND = typer.main.get_command(app)


def handle(req: dict) -> tuple[int, dict]:
    """The fork server's ``run`` role: the mutant's commands in this throw-away child, each with its own stderr
    file; after each one the exit codes so far are left in the partial result (a crash kills the child)."""
    import importlib

    import typer

    from devicekit.cli import app
    from devicekit.cli._common import state
    from devicekit.runtime import probe as probe_mod

    try:
        tools_mod = importlib.import_module("devicekit.runtime.verdict")
    except ImportError:  # a devicekit without it (main before issue 17): nothing to remember
        tools_mod = None

    known = req.get("known")
    mod = probe_mod if req["path"].endswith(".tflite") else tools_mod
    if known is not None and hasattr(mod, "remember"):  # the oracle's answer, from the code devicekit would ask
        mod.remember(req["path"], known)
    command = _COMMAND or typer.main.get_command(app)
    done: list[dict] = []
    for name, args, err_file in req["commands"]:
        _note(req, {"done": done, "running": name})
        fd = os.open(err_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 2)
        os.close(fd)
        t0 = time.monotonic()
        try:
            command.main(args, prog_name="devicekit", standalone_mode=True)
            rc = 0
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - what a user would see as a traceback
            import traceback

            traceback.print_exc()
            rc = 1
        sys.stderr.flush()
        state.json_mode, state.quiet = False, False
        if state.stdout is not None:
            sys.stdout, state.stdout = state.stdout, None
        done.append({"command": name, "rc": rc, "seconds": round(time.monotonic() - t0, 2)})
    _note(req, {"done": done, "running": None})
    return 0, {"done": done, "running": None}


def _note(req: dict, obj: dict) -> None:
    with open(req["_partial"], "w") as fh:
        json.dump(obj, fh)


# ------------------------------------------------------------------------------------------------ driver

def fuzz(plan: list[tuple], work: Path, faces: Path, mode: str = "worker", commands=COMMANDS, log=None,
         frames: int = 3, devicekit_root: Path | None = None) -> list[Record]:
    """``plan``: [(Seed, Mutant)]. Writes each mutant under ``work``, judges it, runs the commands, deletes it.

    ``devicekit_root``: run the commands from another checkout (the oracle always uses this one's code)."""
    from .forkserver import ForkServer
    from .oracle import Oracle

    work.mkdir(parents=True, exist_ok=True)
    runs = work / "runs"
    records: list[Record] = []
    worker = ForkServer(devicekit_root=devicekit_root) if mode == "worker" else None
    try:
        with Oracle() as oracle:
            for k, (seed, mutant) in enumerate(plan):
                path, how = mutant.write(work / f"m{k:05d}")
                if seed.manifest is not None:
                    shutil.copyfile(seed.manifest, path.with_name(path.name + ".json"))
                verdict = oracle.judge(path)
                rec = Record(mutant.name, seed.path.name, path.suffix.lstrip("."), how,
                             {k: v for k, v in verdict.items() if k != "raw"})
                todo = [(c, argv(c, path, seed, faces, runs, frames)) for c in commands]
                if worker is not None:
                    results = _in_worker(worker, todo, path, verdict, work)
                else:
                    results = {}
                    for c, args in todo:
                        t0 = time.monotonic()
                        rc, err = run_subprocess(args, TIMEOUTS[c], devicekit_root)
                        results[c] = (rc, err, round(time.monotonic() - t0, 2))
                for c, (rc, err, secs) in results.items():
                    rec.outcomes[c] = {"rc": rc, "seconds": secs, "verdict": classify(c, rc, err, verdict, rec.format),
                                       "message": last_line(err)}
                records.append(rec)
                if log:
                    log(k, rec)
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                path.with_name(path.name + ".json").unlink(missing_ok=True)
                shutil.rmtree(runs, ignore_errors=True)
    finally:
        if worker is not None:
            worker.close()
    return records


def _in_worker(worker, todo: list, path: Path, verdict: dict, work: Path) -> dict:
    """Run the commands in one forked child; a crash or timeout is charged to the command that was running,
    and the commands after it run in a fresh child."""
    results: dict = {}
    known = _known(verdict, path.suffix)
    while todo:
        cmds = [(c, args, str(work / f"{c}.err")) for c, args in todo]
        t0 = time.monotonic()
        status, res, _ = worker.call("run", {"commands": cmds, "path": str(path), "known": known},
                                     sum(TIMEOUTS[c] for c, _ in todo), CLI_WARM)
        res = res or {"done": [], "running": todo[0][0]}
        for d in res["done"]:
            results[d["command"]] = (d["rc"], _read(work / f"{d['command']}.err"), d["seconds"])
        todo = [(c, a) for c, a in todo if c not in results]
        if status == 0 or not todo:
            break
        dead = res.get("running") or todo[0][0]
        secs = round(time.monotonic() - t0 - sum(d["seconds"] for d in res["done"]), 2)
        results[dead] = (None if status is None else (status if status < 0 else 128 + 9),
                         _read(work / f"{dead}.err"), secs)
        todo = [(c, a) for c, a in todo if c != dead]
    return results


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")[-6000:]
    except OSError:
        return ""


def _known(verdict: dict, suffix: str) -> dict | None:
    """What devicekit's own child would have answered: the oracle's raw result, or, when the oracle's child died,
    what ``probe`` / ``verdict.ask`` report for a dead child."""
    v = verdict.get("verdict")
    if v in ("crashed", "timeout"):
        if suffix == ".tflite":
            return {"verdict": v, "error": f"the LiteRT interpreter {'crashed' if v == 'crashed' else 'timed out'} on it "
                                          f"({verdict.get('error')})"}
        return {"ok": False, "stage": v, "error": f"the format's own checker {v} on it ({verdict.get('error')})"}
    return verdict.get("raw")


def summarize(records: list[Record]) -> dict:
    """Counts per format and command: outcome classes, oracle verdicts, exit codes."""
    out: dict = {"mutants": len(records), "formats": {}}
    for r in records:
        f = out["formats"].setdefault(r.format, {"mutants": 0, "oracle": {}, "commands": {}})
        f["mutants"] += 1
        v = r.oracle.get("verdict")
        f["oracle"][v] = f["oracle"].get(v, 0) + 1
        for c, o in r.outcomes.items():
            cc = f["commands"].setdefault(c, {"verdicts": {}, "exit_codes": {}, "seconds": 0.0})
            cc["verdicts"][o["verdict"]] = cc["verdicts"].get(o["verdict"], 0) + 1
            key = "timeout" if o["rc"] is None else str(o["rc"])
            cc["exit_codes"][key] = cc["exit_codes"].get(key, 0) + 1
            cc["seconds"] = round(cc["seconds"] + o["seconds"], 1)
    return out


def problems(records: list[Record]) -> list[dict]:
    return [{"mutant": r.mutant, "how": r.how, "oracle": r.oracle.get("verdict"), "command": c, **o}
            for r in records for c, o in r.outcomes.items() if o["verdict"] in PROBLEMS]


def as_json(records: list[Record]) -> list[dict]:
    return [asdict(r) for r in records]


def make_plan(counts: dict[str, int], seed: int) -> list[tuple]:
    """[(Seed, Mutant)] for ``{seed file stem: how many mutants}``, deterministic for ``seed``."""
    from .mutate import mutants
    from .seeds import all_seeds

    by_stem = {s.path.stem: s for group in all_seeds().values() for s in group}
    return [(by_stem[stem], m) for stem, n in counts.items() for m in mutants(by_stem[stem].path, n, seed)]
