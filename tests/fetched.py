"""Run a scripts/fetch_*.py once per test session: its folder, or a skip with the reason (offline)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=None)
def _fetch(script: str) -> Path | str:
    spec = importlib.util.spec_from_file_location(script, ROOT / "scripts" / f"{script}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        return mod.fetch(mod.cache_dir()) if hasattr(mod, "cache_dir") else mod.fetch()
    except Exception as exc:  # noqa: BLE001 - offline: skip with the reason
        return f"{script} could not fetch its data: {exc}"


def fetched(script: str) -> Path:
    """scripts/<script>.py's fetch() result; skips the calling test when it failed."""
    d = _fetch(script)
    if isinstance(d, str):
        pytest.skip(d)
    return d
