"""Make the fixed input image of the golden test (devicekit/app/golden_face/face.png + face.json).

    .venv/bin/python scripts/make_golden_face.py

Source: scikit-image's astronaut.png (Eileen Collins, NASA: public domain), as cached by
scripts/fetch_face_data.py. The 192x192 region around the face is stored as an 8-bit RGB PNG
(no colour profile), with the OpenCV Haar box found on that region (the crop policy's detector).
Every generated project carries this image; devicekit derives each model's golden input from it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "devicekit" / "app" / "golden_face"
REGION = (127, 30, 192, 192)  # x, y, w, h in astronaut.png


def main() -> int:
    import cv2

    from devicekit.face.detect import detect_faces
    from devicekit.face_data import face_data_dir

    base = face_data_dir()
    src = base / "unlabeled" / "skimage-astronaut.png" if base else None
    if src is None or not src.exists():
        print("the face-data cache has no skimage-astronaut.png: run scripts/fetch_face_data.py", file=sys.stderr)
        return 3
    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    x, y, w, h = REGION
    crop = img[y : y + h, x : x + w].copy()
    faces = detect_faces(crop)
    if len(faces) != 1:
        print(f"expected one Haar face in the region, found {len(faces)}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT / "face.png"), crop)
    rgb = crop[..., ::-1].tobytes()
    meta = {
        "image": "face.png",
        "width": w,
        "height": h,
        "channels": 3,
        "source": "scikit-image 0.26.0 skimage/data/astronaut.png (Eileen Collins, NASA), region x,y,w,h = " + ",".join(map(str, REGION)),
        "license": "public domain (NASA photo; skimage.data.astronaut: no known copyright restrictions)",
        "box_xywh": [int(v) for v in faces[0]],
        "box_detector": "opencv-haar-frontalface-default (devicekit.face.detect.detect_faces)",
        "rgb_sha256": hashlib.sha256(rgb).hexdigest(),
        "command": "scripts/make_golden_face.py",
    }
    (OUT / "face.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
