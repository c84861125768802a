"""What a format's own tools say about an .onnx or .mlpackage, asked in a child process.

- .onnx: the onnx checker with ``full_check=True`` (the spec's rules plus strict shape inference), then, when
  onnxruntime is installed, a session and one run on zeros. Both are C++ and a hostile graph can crash them
  (a Conv whose shape inference divides by zero ended devicekit with SIGFPE), so neither runs in the caller.
- .mlpackage: coremltools' own loader of the ML program (``milproto.load``: every op rebuilt and type-checked,
  every weight blob read), with torch and tensorflow kept out of the child (coremltools imports them when
  present, which costs seconds and is not needed to read a program).

``ask(path)`` -> ``{"ok": bool, "stage": "checker" | "session" | "run" | "loader", "error": str | None,
"runtime": "onnxruntime 1.23.0" | None}``; ``{"ok": False, "stage": "crashed" | "timeout", ...}`` when the
child died or hung. Run as ``python -m devicekit.runtime.verdict FILE``: one JSON object on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..errors import first_line

TIMEOUT_S = 120


def _onnx(path: str) -> dict:
    import numpy as np
    import onnx

    try:
        model = onnx.load(path, load_external_data=False)
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001 - the checker's verdict, whatever it raises
        return {"ok": False, "stage": "checker", "error": first_line(exc, typed=True), "runtime": None}
    try:
        import onnxruntime as ort
    except ImportError:
        return {"ok": True, "stage": "checker", "error": None, "runtime": None}
    runtime = f"onnxruntime {ort.__version__}"
    try:
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "stage": "session", "error": first_line(exc, typed=True), "runtime": runtime}
    types = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
             "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
             "tensor(bool)": np.bool_}
    try:
        feeds = {i.name: np.zeros([d if isinstance(d, int) and d > 0 else 1 for d in i.shape], types.get(i.type, np.float32))
                 for i in sess.get_inputs()}
        sess.run(None, feeds)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "stage": "run", "error": first_line(exc, typed=True), "runtime": runtime}
    return {"ok": True, "stage": "run", "error": None, "runtime": runtime}


def _mlpackage(path: str) -> dict:
    import logging
    import warnings

    for name in ("torch", "tensorflow", "sklearn"):  # not needed to read a program; importing them costs seconds
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None blocks the import
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    try:
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto.load import load
    except Exception as exc:  # noqa: BLE001
        return {"ok": True, "stage": "loader", "error": None, "runtime": None, "note": f"coremltools unavailable ({first_line(exc, typed=True)})"}
    try:
        m = ct.models.MLModel(path, skip_model_load=True)
        spec = m.get_spec()
        if spec.WhichOneof("Type") == "mlProgram":
            entry = spec.description.defaultFunctionName or "main"  # the function CoreML runs
            if entry not in spec.mlProgram.functions:
                raise ValueError(f"the ML program has no function {entry!r} (CoreML runs main, or the description's "
                                 "defaultFunctionName)")
            load(spec, spec.specificationVersion, m.weights_dir)
    except Exception as exc:  # noqa: BLE001 - coremltools' verdict, whatever it raises
        return {"ok": False, "stage": "loader", "error": first_line(exc, typed=True), "runtime": f"coremltools {ct.__version__}"}
    return {"ok": True, "stage": "loader", "error": None, "runtime": f"coremltools {ct.__version__}"}


def judge(path: str) -> dict:
    return (_mlpackage if Path(path).suffix.lower() == ".mlpackage" else _onnx)(path)


def _remembered(fn):
    from .asked import remembered

    return remembered("tools", keep=lambda res: res.get("stage") != "timeout")(fn)


def remember(path: str | Path, result: dict) -> None:
    """Record the tools' verdict on these bytes (the fuzz harness's oracle runs ``judge`` itself)."""
    from .asked import remember as keep

    keep("tools", path, result)


@_remembered
def ask(path: str | Path, timeout: float = TIMEOUT_S) -> dict:
    """The format tools' verdict on ``path`` from a child process (see the module docstring)."""
    cmd = [sys.executable, "-m", "devicekit.runtime.verdict", str(path)]
    name = Path(path).name
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"ok": False, "stage": "timeout", "error": f"the format's own checker did not finish {name} in {timeout:.0f} s"}
    if r.returncode != 0:
        how = f"signal {-r.returncode}" if r.returncode < 0 else f"exit code {r.returncode}"
        return {"ok": False, "stage": "crashed", "error": f"the format's own checker crashed on {name} ({how})"}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "stage": "crashed", "error": f"the format's own checker printed no result for {name}"}


if __name__ == "__main__":
    import os

    from .probe import limit_memory

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    limit_memory(sys.argv[1])  # a graph that asks for terabytes fails here instead of eating the machine
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the tools' own prints go to stderr; stdout carries only the JSON
    out.write(json.dumps(judge(sys.argv[1])) + "\n")
    out.flush()
