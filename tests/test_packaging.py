"""The package list in pyproject matches the tree, and the namespace mapping works."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPING = {"devicekit": "devicekit", "converters": "devicekit.converters", "mobile_templates": "devicekit.mobile_templates"}


def test_every_python_package_is_listed():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = set()
    for top, ns in MAPPING.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            if "node_modules" in rel.parts or any(p.startswith(".") for p in rel.parts):
                continue
            found.add(".".join([ns, *rel.parts]))
    assert found == listed


def test_namespace_imports():
    import devicekit.converters
    import devicekit.mobile_templates

    assert Path(devicekit.converters.__file__).parent == ROOT / "converters"
    assert Path(devicekit.mobile_templates.__file__).parent == ROOT / "mobile_templates"
