"""Rule tables (budgets, op support per runtime and delegate) loaded from devicekit/data/rules/*.json.

Every table carries a ``source`` (document and version); checks read them here
and never hard-code support lists.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..errors import InputError, UsageError

RULES_DIR = Path(__file__).resolve().parent.parent / "data" / "rules"


@lru_cache(maxsize=None)
def load(name: str) -> dict:
    p = RULES_DIR / f"{name}.json"
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"rule table {name!r} missing from {RULES_DIR}") from None
    if "source" not in data and name != "budgets":
        raise InputError(f"rule table {name} has no source")
    return data


def source(name: str) -> str:
    s = load(name).get("source", {})
    return f"{s.get('document', '?')} ({s.get('version', '?')})"


def budgets(specs: list[str] | None) -> dict[str, int]:
    """Resolve ``--budget`` values: ``NAME`` (a known budget) or ``NAME=BYTES`` (custom, suffixes K/M/G/MB/MiB)."""
    table = load("budgets")["budgets"]
    names = specs if specs else list(load("budgets")["default"])
    out: dict[str, int] = {}
    for spec in names:
        name, sep, val = spec.partition("=")
        name = name.strip()
        if not name:
            raise UsageError(f"bad budget {spec!r}", hint="use NAME or NAME=BYTES, e.g. play-apk or mybudget=50MB")
        if sep:
            out[name] = parse_bytes(val)
        elif name in table:
            out[name] = int(table[name]["bytes"])
        else:
            import difflib

            close = difflib.get_close_matches(name, table, n=1)
            raise UsageError(f"unknown budget {name!r}", hint=f"did you mean {close[0]}?" if close else f"known: {', '.join(table)}; or NAME=BYTES")
    return out


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 10**6, "mb": 10**6, "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30}


def parse_bytes(text: str) -> int:
    import re

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"bad size {text!r}", hint="a number of bytes, optionally with K/M/G, KB/MB/GB or KiB/MiB/GiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
