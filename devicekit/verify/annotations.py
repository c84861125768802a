"""Landmark annotation readers: iBUG ``.pts`` and a JSON form. Everything returns continuous
image coordinates with pixel centres at ``i + 0.5`` (the manifest convention).

- iBUG ``.pts`` (300-W): ``version: 1`` / ``n_points: 68`` / ``{`` / one ``x y``
  per line / ``}``. Coordinates are 1-BASED (the centre of the top-left pixel
  is (1, 1)), so a value v becomes v - 0.5 here. Found next to each image with
  the same stem (``face.jpg`` + ``face.pts``) or in an ``--annotations`` folder.
- JSON, one file for many images::

      {"coords": "zero_based",            # or "one_based" or "pixel_centers_half"
       "faces": {"face.jpg": [[x, y], ...], ...}}

  ``zero_based``: centre of the top-left pixel is (0, 0) (OpenCV, numpy);
  ``one_based``: as in .pts; ``pixel_centers_half``: already this module's
  convention. Keys are image file names (or stems). A per-image
  ``<stem>.json`` with ``{"coords": ..., "landmarks": [[x, y], ...]}`` works too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError

OFFSETS = {"zero_based": 0.5, "one_based": -0.5, "pixel_centers_half": 0.0}


def read_pts(path: str | Path) -> np.ndarray:
    """An iBUG .pts file -> [L, 2] float32 (continuous coords: value - 0.5)."""
    path = Path(path)
    try:
        text = path.read_text(errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read annotation {path}: {exc}") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    try:
        n = next(int(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("n_points"))
        start = lines.index("{") + 1
        end = lines.index("}", start)
        pts = np.array([[float(v) for v in ln.split()[:2]] for ln in lines[start:end]], np.float64)
    except (StopIteration, ValueError, IndexError):
        raise InputError(f"{path.name}: not an iBUG .pts file (need 'n_points: N' and '{{ x y ... }}')") from None
    if pts.shape != (n, 2):
        raise InputError(f"{path.name}: says n_points {n} but has {len(pts)} points")
    return (pts - 0.5).astype(np.float32)


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Continuous coords -> 1-based iBUG .pts (the inverse of read_pts)."""
    from ..fsutil import atomic_write_text

    pts = np.asarray(points, np.float64) + 0.5
    body = "\n".join(f"{x:.6f} {y:.6f}" for x, y in pts)
    atomic_write_text(path, f"version: 1\nn_points: {len(pts)}\n{{\n{body}\n}}\n")


def _json_points(obj, coords: str, where: str) -> np.ndarray:
    if coords not in OFFSETS:
        raise InputError(f"{where}: 'coords' must be one of {', '.join(OFFSETS)}, got {coords!r}")
    try:
        pts = np.asarray(obj, np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: landmarks must be a list of [x, y]") from None
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise InputError(f"{where}: landmarks must be a list of [x, y], got shape {list(pts.shape)}")
    return (pts + OFFSETS[coords]).astype(np.float32)


def read_json(path: str | Path) -> dict[str, np.ndarray]:
    """A JSON annotation file -> {image name or stem: [L, 2]}."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read annotation JSON {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path.name}: expected a JSON object")
    coords = data.get("coords", "zero_based")
    if "landmarks" in data:
        return {path.stem: _json_points(data["landmarks"], coords, path.name)}
    faces = data.get("faces")
    if not isinstance(faces, dict):
        raise InputError(f"{path.name}: expected 'faces': {{image: [[x, y], ...]}} or 'landmarks': [[x, y], ...]")
    return {str(k): _json_points(v, coords, f"{path.name}:{k}") for k, v in faces.items()}


def find_annotations(images: list[Path], source: str | Path | None) -> dict[Path, np.ndarray]:
    """Annotations for the given images: ``source`` is a folder (.pts/.json by stem), a JSON file, or
    None (look next to each image). Images without an annotation are left out."""
    table: dict[str, np.ndarray] = {}
    folder: Path | None = None
    if source is not None:
        source = Path(source)
        if source.is_dir():
            folder = source
        elif source.is_file():
            if source.suffix.lower() == ".pts":
                table[source.stem] = read_pts(source)
            else:
                table.update(read_json(source))
        else:
            raise InputError(f"annotations not found: {source}")
    out: dict[Path, np.ndarray] = {}
    for img in images:
        for key in (img.name, img.stem):
            if key in table:
                out[img] = table[key]
                break
        else:
            for d in ([folder] if folder else []) + [img.parent]:
                pts, js = d / f"{img.stem}.pts", d / f"{img.stem}.json"
                if pts.is_file():
                    out[img] = read_pts(pts)
                    break
                if js.is_file():
                    out[img] = next(iter(read_json(js).values()))
                    break
    return out
