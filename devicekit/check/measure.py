"""Measure what the real LiteRT interpreter allocates for a model, to hold the arena estimate to account.

Runs in a fresh subprocess: loads the model from memory (so the weights are
already resident), then reads glibc's ``mallinfo2`` (bytes in use, heap plus
mmapped blocks) before and after ``allocate_tensors()``. The delta is the
activation arena, the persistent arena (e.g. weights dequantized at load)
and the kernels' scratch. The builtin kernels are used without the XNNPACK
delegate, whose packed weights and workspace live outside the arena.
Also reports RSS growth across allocate + one invoke (pages actually touched).
Linux/glibc only (mallinfo2 needs glibc 2.33).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..errors import EnvironmentMissing, InputError

_SCRIPT = r"""
import ctypes, json, sys
import numpy as np
class MI2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                              "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MI2
def used():
    m = libc.mallinfo2()
    return m.uordblks + m.hblkhd
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096
from ai_edge_litert.interpreter import Interpreter, OpResolverType
data = open(sys.argv[1], "rb").read()
kind = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if sys.argv[2] == "builtin" else OpResolverType.AUTO
it = Interpreter(model_content=data, experimental_op_resolver_type=kind, num_threads=1)
r0, a0, h0 = rss(), used(), libc.mallinfo2().hblkhd
it.allocate_tensors()
a1, h1 = used(), libc.mallinfo2().hblkhd
for d in it.get_input_details():
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
it.invoke()
r1 = rss()
print(json.dumps({"alloc_bytes": a1 - a0, "arena_bytes": h1 - h0, "rss_growth_bytes": r1 - r0}))
"""


MMAP_THRESHOLD = 64 << 10  # fixed: blocks this large are mmapped, so the arenas show up in mallinfo2.hblkhd


def measure_interpreter(path: str | Path, resolver: str = "builtin", timeout: float = 600) -> dict:
    """Bytes allocated by allocate_tensors(): 'alloc_bytes' (everything: arenas, op data, planner bookkeeping),
    'arena_bytes' (only blocks of 64 KiB or more, i.e. the arena buffers; glibc's mmap threshold is pinned so
    they are mmapped and counted apart), and 'rss_growth_bytes' over allocate + one invoke."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    r = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(path), resolver],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin", "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)},
    )
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        if "mallinfo2" in r.stderr:
            raise EnvironmentMissing("measuring the interpreter needs glibc >= 2.33 (mallinfo2)")
        raise InputError(f"{path.name}: the LiteRT interpreter could not run it ({last[:200]})")
    return json.loads(r.stdout.strip().splitlines()[-1])
