"""Device profiles (devicekit/data/devices.json): names like ``pixel7`` and the model strings behind them."""

from __future__ import annotations

import difflib
import functools
import json
from importlib import resources


@functools.lru_cache(maxsize=1)
def profiles() -> dict[str, dict]:
    text = resources.files("devicekit").joinpath("data/devices.json").read_text(encoding="utf-8")
    return {p["id"]: p for p in json.loads(text)["profiles"]}


def normalize(name: str) -> str:
    return name.strip().lower().replace(" ", "").replace("_", "-")


def get_profile(name: str) -> dict | None:
    key = normalize(name)
    p = profiles()
    if key in p:
        return p[key]
    # tolerate "galaxys23" for "galaxy-s23"
    for pid, prof in p.items():
        if pid.replace("-", "") == key.replace("-", ""):
            return prof
    return None


def suggest(name: str) -> list[str]:
    return difflib.get_close_matches(normalize(name), list(profiles()), n=3, cutoff=0.6)


def match_model(platform: str, model: str | None) -> dict | None:
    """The profile whose model strings identify ``model`` (exact, case-insensitive; Samsung by prefix)."""
    if not model:
        return None
    m = model.strip().lower()
    best = None
    for prof in profiles().values():
        if prof["platform"] != platform:
            continue
        if any(m == s.lower() for s in prof["models"]):
            return prof
        if any(m.startswith(pfx.lower()) for pfx in prof.get("model_prefixes", [])):
            best = prof
    return best
