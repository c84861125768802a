"""Which part of devicekit imports which, measured from the source with ``ast`` (docs/architecture.md).

Parts: each subpackage and top-level module of ``devicekit/`` (``devicekit.bench``, ``devicekit.errors``, ...)
plus ``converters/`` and ``mobile_templates/``, which install as ``devicekit.converters`` and
``devicekit.mobile_templates`` (pyproject's package-dir mapping). An import at module level counts as
``top``; one inside a function or class body as ``lazy`` (it runs only when that code runs).

    python scripts/import_graph.py            # the edges, part by part
    python scripts/import_graph.py --cycles   # the strongly connected parts (all edges, then top-level only)
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "tensorflow", "coremltools", "onnx2tf", "cv2", "onnxruntime")


def trees(root: Path = ROOT) -> dict[str, Path]:
    return {"devicekit": root / "devicekit", "devicekit.converters": root / "converters", "devicekit.mobile_templates": root / "mobile_templates"}


def modules(root: Path = ROOT):
    """(module name, path) for every .py file, converters/ and mobile_templates/ under their installed names."""
    for prefix, tree in trees(root).items():
        for path in sorted(tree.rglob("*.py")):
            if prefix == "devicekit" and path.relative_to(tree).parts[0] in ("converters", "mobile_templates"):
                continue
            parts = list(path.relative_to(tree).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join([prefix, *parts]), path


def part(name: str) -> str | None:
    """``devicekit.bench.runner`` -> ``bench``; ``devicekit.converters.x`` -> ``converters``; outside -> None."""
    bits = name.split(".")
    if bits[0] != "devicekit":
        return None
    return bits[1] if len(bits) > 1 else "devicekit"


def imports(name: str, path: Path, known: set[str]):
    """(imported module, top or lazy) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    top = {id(n) for n in tree.body} | {id(c) for n in tree.body if isinstance(n, (ast.If, ast.Try)) for c in ast.walk(n)}
    for node in ast.walk(tree):
        where = "top" if id(node) in top else "lazy"
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, where
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for a in node.names:  # ``from . import zoo`` imports a module: name it
                yield (f"{base}.{a.name}" if f"{base}.{a.name}" in known else base), where


def module_edges(root: Path = ROOT) -> dict[str, list[tuple[str, str]]]:
    """module -> [(imported module, top or lazy)], for every module of the three trees."""
    mods = list(modules(root))
    known = {name for name, _ in mods}
    return {name: list(imports(name, path, known)) for name, path in mods}


def graph(root: Path = ROOT):
    edges, heavy = defaultdict(dict), defaultdict(dict)
    for name, targets in module_edges(root).items():
        src = part(name)
        for target, where in targets:
            dst = part(target)
            if dst and dst != src and edges[src].get(dst) != "top":
                edges[src][dst] = where
            root = target.split(".")[0]
            if root in HEAVY and heavy[src].get(root) != "top":
                heavy[src][root] = where
    return edges, heavy


def sccs(edges: dict, keep) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one part, over the edges ``keep`` accepts."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    nodes = sorted(set(edges) | {d for e in edges.values() for d in e})

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w, where in sorted(edges.get(v, {}).items()):
            if not keep(where):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def main(argv: list[str]) -> None:
    edges, heavy = graph()
    if "--cycles" in argv:
        print("all imports:", sccs(edges, lambda w: True))
        print("top-level only:", sccs(edges, lambda w: w == "top"))
        return
    for src in sorted(edges):
        deps = ", ".join(f"{d}{'' if w == 'top' else ' (lazy)'}" for d, w in sorted(edges[src].items()))
        hv = ", ".join(f"{d}{'' if w == 'top' else ' (lazy)'}" for d, w in sorted(heavy[src].items()))
        print(f"{src}: {deps}" + (f"  | heavy: {hv}" if hv else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
