"""Run a scripts/fetch_*.py once per test session: its folder, or a skip with the reason (offline)."""

from __future__ import annotations

import functools
import importlib.util
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=None)
def _fetch(script: str, function: str) -> Path | str:
    spec = importlib.util.spec_from_file_location(script, ROOT / "scripts" / f"{script}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = getattr(mod, function)
    try:
        return fn(mod.cache_dir()) if "out" in inspect.signature(fn).parameters else fn()
    except Exception as exc:  # noqa: BLE001 - offline: skip with the reason
        return f"{script}.{function} could not fetch its data: {exc}"


def fetched(script: str, function: str = "fetch") -> Path:
    """scripts/<script>.py's ``function()`` result (default ``fetch``); skips the calling test when it failed."""
    d = _fetch(script, function)
    if isinstance(d, str):
        pytest.skip(d)
    return d
