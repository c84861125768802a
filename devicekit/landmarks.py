"""Landmark layouts: regions and the points used for normalisation (data, not logic)."""

from __future__ import annotations

# iBUG 300-W 68-point layout, 0-based indices.
IBUG68 = {
    "name": "ibug68",
    "count": 68,
    "regions": {
        "contour": list(range(0, 17)),
        "brows": list(range(17, 27)),
        "nose": list(range(27, 36)),
        "eyes": list(range(36, 48)),
        "mouth": list(range(48, 68)),
    },
    # outer eye corners (inter-ocular normalisation, 300-W convention)
    "outer_eye_corners": [36, 45],
    # the pupils are the centroids of the eye contours (inter-pupil normalisation)
    "left_eye": list(range(36, 42)),
    "right_eye": list(range(42, 48)),
    "source": "300 Faces In-the-Wild Challenge (iBUG), 68-point markup",
}

LAYOUTS = {"ibug68": IBUG68}


def layout_for(count: int) -> dict:
    """The named layout for a landmark count, or a generic one."""
    for layout in LAYOUTS.values():
        if layout["count"] == count:
            return layout
    return {"name": f"generic{count}", "count": count, "regions": {"all": list(range(count))}, "source": "generic"}
