"""What LiteRT itself says about a .tflite, asked in a child process (a broken file cannot crash the caller).

``probe(path)`` loads the file twice in a fresh interpreter process: with the
builtin kernels only, and with the default resolver a phone's LiteRT CPU path
uses (XNNPACK applied). For each: does it allocate, does it invoke on zeros.
For XNNPACK also which ops the delegate took: every DELEGATE node replaces a
closed subgraph of the original ops, found by walking back from the node's
outputs to its inputs. The verdict is ``delegated`` (every op taken),
``partly`` (some ops run on the builtin kernels between partitions) or
``fails`` (XNNPACK refused the model at prepare time: a phone's default
interpreter does not load it); ``unloadable`` when even the builtin kernels
cannot allocate it (custom ops the app must register, a broken file).

Run as ``python -m devicekit.runtime.probe FILE``: one JSON object on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..errors import first_line

TIMEOUT_S = 120


def delegated_ops(ops: list[dict]) -> tuple[list[int], list[int], int]:
    """(original op indices the delegate took, those it left, DELEGATE node count) from ``_get_ops_details()``."""
    orig = [o for o in ops if o["op_name"] != "DELEGATE"]
    dels = [o for o in ops if o["op_name"] == "DELEGATE"]
    producer = {int(t): i for i, o in enumerate(orig) for t in o["outputs"]}
    covered: set[int] = set()
    for d in dels:
        stop = {int(t) for t in d["inputs"]}
        stack, seen = [int(t) for t in d["outputs"]], set()
        while stack:
            t = stack.pop()
            if t in stop or t in seen or t not in producer:
                continue
            seen.add(t)
            i = producer[t]
            if i not in covered:
                covered.add(i)
                stack += [int(x) for x in orig[i]["inputs"] if int(x) >= 0]
    return sorted(covered), [i for i in range(len(orig)) if i not in covered], len(dels)


def _run(path: str) -> dict:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    out: dict = {}
    for key, resolver in (("builtin", OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES), ("xnnpack", OpResolverType.AUTO)):
        res: dict = {}
        out[key] = res
        try:
            it = Interpreter(model_path=path, num_threads=1, experimental_op_resolver_type=resolver)
        except Exception as exc:  # noqa: BLE001 - LiteRT raises ValueError / RuntimeError
            res.update(load=False, error=first_line(exc))
            continue
        res["load"] = True
        try:
            it.allocate_tensors()
        except Exception as exc:  # noqa: BLE001
            res.update(allocate=False, error=first_line(exc))
            continue
        res["allocate"] = True
        ops = it._get_ops_details()
        if key == "xnnpack":
            taken, left, n = delegated_ops(ops)
            names = [o["op_name"] for o in ops if o["op_name"] != "DELEGATE"]
            res.update(partitions=n, taken=len(taken), left=[{"index": i, "op": names[i]} for i in left])
        try:
            for d in it.get_input_details():
                it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
            it.invoke()
            res["invoke"] = True
        except Exception as exc:  # noqa: BLE001
            res.update(invoke=False, error=first_line(exc))
    out["verdict"] = verdict(out["builtin"], out.get("xnnpack", {}))
    return out


def verdict(builtin: dict, xnnpack: dict) -> str:
    """delegated | partly | fails | unloadable, from what the two interpreters did.

    XNNPACK comes first: it can run what the builtin kernels cannot (MediaPipe's
    Convolution2DTransposeBias is an XNNPACK op), and a phone applies it.
    ``unloadable`` when neither allocates (unregistered custom ops, a broken file).
    """
    if xnnpack.get("allocate"):
        return "delegated" if not xnnpack.get("left") else "partly"
    return "fails" if builtin.get("allocate") else "unloadable"


def remember(path: str | Path, result: dict) -> None:
    """Record LiteRT's verdict on the file's current bytes (a caller that already asked a child process, such as
    the fuzz harness's oracle running ``_run`` itself), so ``probe`` does not ask again for the same bytes."""
    from .asked import remember as keep

    keep("litert", path, result)


def _remembered(fn):
    """One child per distinct file content and process: check, bench and verify validate the same bytes once
    (a timeout is not kept: a slow machine may answer next time)."""
    from .asked import remembered

    return remembered("litert", keep=lambda res: res.get("verdict") != "timeout")(fn)


@_remembered
def probe(path: str | Path, timeout: float = TIMEOUT_S) -> dict:
    """LiteRT's own verdict on ``path``, from a child process; ``crashed`` / ``timeout`` when the child died."""
    cmd = [sys.executable, "-m", "devicekit.runtime.probe", str(path)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"verdict": "timeout", "error": f"LiteRT did not finish loading {Path(path).name} in {timeout:.0f} s"}
    if r.returncode != 0:
        how = f"signal {-r.returncode}" if r.returncode < 0 else f"exit code {r.returncode}"
        return {"verdict": "crashed", "error": f"the LiteRT interpreter crashed on {Path(path).name} ({how})"}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"verdict": "crashed", "error": "the LiteRT probe printed no result"}


MEMORY_BASE = 4 << 30  # address space of the child: this plus 8x the file (a phone could not load more anyway)


def limit_memory(path: str | Path) -> None:
    """Cap this (child) process's address space before LiteRT reads ``path``. LiteRT's Python interpreter runs
    no flatbuffer verifier: a file whose operator lists 2**32 outputs made it allocate 16 GB resident for 35 s
    before it died with SIGSEGV; under the cap the same file fails at once with std::bad_alloc."""
    import resource

    try:
        size = Path(path).stat().st_size
    except OSError:
        size = 0
    limit = MEMORY_BASE + 8 * size
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


if __name__ == "__main__":
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    limit_memory(sys.argv[1])
    # LiteRT logs "Created TensorFlow Lite XNNPACK delegate" on stderr; stdout carries only the JSON
    print(json.dumps(_run(sys.argv[1])))
