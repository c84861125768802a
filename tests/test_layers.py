"""The import contract: devicekit's parts import one way only (docs/architecture.md).

The graph is measured from the source with ``ast`` (scripts/import_graph.py), converters/ and mobile_templates/
under their installed names, because pyproject's package-dir mapping hides their arrows from tools that read
the folder tree. Every import counts, lazy ones inside functions too: a lazy back-import is still a
back-import, it only fails later.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# bottom -> top; a part imports only parts of lower rank (never its own rank: converters and mobile_templates
# know nothing of each other)
LAYERS = [
    ("devicekit", "errors"),
    ("fsutil", "registry", "config", "landmarks"),
    ("fetch",),
    ("manifest",),
    ("modelfile", "face", "zoo", "face_data"),
    ("milref",),
    ("runtime",),
    ("app", "check"),
    ("device",),
    ("web",),
    ("bench",),
    ("report",),
    ("verify",),
    ("converters", "mobile_templates"),  # the two plug-in layers: they may import the core, never the reverse
    ("pipeline",),  # wires convert -> check -> verify
    ("cli",),
    ("__main__",),
]
RANK = {p: i for i, layer in enumerate(LAYERS) for p in layer}
# the light commands: what they reach (module-level and lazy imports alike) never imports these
LIGHT = ("devicekit.check", "devicekit.bench", "devicekit.report", "devicekit.device", "devicekit.cli.check",
         "devicekit.cli.bench", "devicekit.cli.report", "devicekit.cli.devices")
HEAVY = ("torch", "tensorflow")


def _graph_module():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def violations(root: Path) -> list[str]:
    g = _graph_module()
    out = []
    for name, targets in g.module_edges(root).items():
        src = g.part(name)
        if src not in RANK:
            out.append(f"{name}: part {src!r} has no layer (add it to LAYERS)")
            continue
        for target, where in targets:
            dst = g.part(target)
            if dst is None or dst == src:
                continue
            if dst not in RANK:
                out.append(f"{name} imports {target}: part {dst!r} has no layer")
            elif RANK[dst] >= RANK[src]:
                out.append(f"{name} imports {target} ({where}): {src} may not import {dst}")
    return sorted(set(out))


def heavy_reached(root: Path) -> dict[str, list[str]]:
    """{heavy package: [chain of modules from a light command to it]} over every import, lazy ones included."""
    g = _graph_module()
    edges = g.module_edges(root)
    known = set(edges)
    found: dict[str, list[str]] = {}
    for start in LIGHT:
        seen, stack = {start: [start]}, [start]
        while stack:
            mod = stack.pop()
            for target, _ in edges.get(mod, []):
                top = target.split(".")[0]
                if top in HEAVY and top not in found:
                    found[top] = seen[mod] + [target]
                # a module and the packages above it (importing a.b.c runs a/__init__ and a/b/__init__)
                parts = target.split(".")
                for i in range(2, len(parts) + 1):
                    t = ".".join(parts[:i])
                    if t in known and t not in seen:
                        seen[t] = seen[mod] + [t]
                        stack.append(t)
    return found


def test_parts_import_one_way():
    assert violations(ROOT) == []


def test_the_light_commands_reach_neither_torch_nor_tensorflow():
    assert heavy_reached(ROOT) == {}


def test_every_part_has_a_layer():
    g = _graph_module()
    parts = {g.part(name) for name in g.module_edges(ROOT)}
    assert parts <= set(RANK), sorted(parts - set(RANK))


@pytest.fixture()
def tree_copy(tmp_path):
    for d in ("devicekit", "converters", "mobile_templates"):
        shutil.copytree(ROOT / d, tmp_path / d, ignore=shutil.ignore_patterns("*.pyc", "__pycache__", "android", "ios",
                                                                                  "web", "golden_face", "data"))
    return tmp_path


@pytest.mark.parametrize("where,line,needle", [
    # the core reaching up into a plug-in layer, lazily (the arrow the package-dir mapping used to hide)
    ("devicekit/bench/runner.py", "def _planted():\n    from ..mobile_templates import render\n",
     "devicekit.bench.runner imports devicekit.mobile_templates (lazy): bench may not import mobile_templates"),
    ("devicekit/verify/core.py", "from devicekit.converters import load_model\n",
     "devicekit.verify.core imports devicekit.converters (top): verify may not import converters"),
    # a cycle inside the core: device below bench
    ("devicekit/device/host.py", "from ..bench import results\n",
     "devicekit.device.host imports devicekit.bench.results (top): device may not import bench"),
    # the two plug-in layers know nothing of each other
    ("converters/calibration.py", "from devicekit.mobile_templates import render\n",
     "devicekit.converters.calibration imports devicekit.mobile_templates (top): converters may not import mobile_templates"),
])
def test_a_planted_back_import_fails(tree_copy, where, line, needle):
    assert violations(tree_copy) == []
    path = tree_copy / where
    path.write_text(path.read_text() + "\n" + line)
    assert needle in violations(tree_copy)


def test_a_planted_torch_import_in_a_light_command_fails(tree_copy):
    path = tree_copy / "devicekit" / "report" / "svg.py"
    path.write_text(path.read_text() + "\n\ndef _planted():\n    import torch\n")
    chain = heavy_reached(tree_copy)["torch"]
    assert chain[-2:] == ["devicekit.report.svg", "torch"]


def test_the_graph_tool_runs():
    import subprocess

    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_graph.py"), "--cycles"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "all imports: []" in out.stdout
