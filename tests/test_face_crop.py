"""Face front-end: crop geometry (exact inverse, pixel-centre convention), policy contract, Haar on real faces."""

from __future__ import annotations

import numpy as np
import pytest

from devicekit.face import CROP_POLICY, CropBox, box_from_detection, box_from_landmarks, crop_image, detect_crop_box, to_crop, to_image


def test_policy_is_the_manifest_contract():
    assert set(CROP_POLICY) == {"detector", "enlarge", "square", "shift_y", "rotation", "detector_maps"}
    assert CROP_POLICY["detector"] == "opencv-haar-frontalface-default"
    assert CROP_POLICY["square"] is True and CROP_POLICY["rotation"] is False
    assert isinstance(CROP_POLICY["enlarge"], float) and isinstance(CROP_POLICY["shift_y"], float)
    # other detectors' keypoints -> this detector's box (the apps' ML Kit / Vision crops), as measured and written
    # by benchmarks/detector_maps.py; it travels in every manifest with the rest of the policy
    from devicekit.face.boxmap import load_maps

    kp = CROP_POLICY["detector_maps"]["keypoints"]
    assert CROP_POLICY["detector_maps"] == load_maps() and kp["kind"] == "keypoints" and kp["fit"]["images"] > 50
    assert kp["k"] > 0 and all(isinstance(kp[k], float) for k in ("k", "dx", "dy"))


def test_box_from_detection_follows_policy():
    b = box_from_detection((100, 50, 80, 80), {"enlarge": 1.5, "square": True, "shift_y": 0.25})
    assert (b.cx, b.cy, b.size) == (140.0, 110.0, 120.0)


@pytest.mark.parametrize("angle", [0.0, 0.3, -1.0])
def test_to_image_inverts_to_crop(angle):
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 500, (68, 2))
    box = CropBox(250.0, 240.0, 173.0, angle)
    np.testing.assert_allclose(to_image(to_crop(pts, box, 128), box, 128), pts, atol=1e-3)


@pytest.mark.parametrize("size,angle", [(180.0, 0.0), (600.0, 0.0), (180.0, 0.4)])
def test_crop_puts_a_pixel_where_to_crop_says(size, angle):
    """A smooth blob centred on pixel (301, 207) must land at to_crop(301.5, 207.5) (pixel centres at i+0.5),
    also through the anti-aliased path (size 600 -> 128 shrinks by 4.7x) and with rotation."""
    yy, xx = np.mgrid[0:480, 0:640]
    img = (255 * np.exp(-((xx - 301) ** 2 + (yy - 207) ** 2) / (2 * 6.0**2))).astype(np.float32)
    box = CropBox(320.3, 230.7, size, angle)
    crop = crop_image(img, box, 128).astype(np.float64)
    ys, xs = np.mgrid[0:128, 0:128]
    w = crop / crop.sum()
    got = np.array([(w * (xs + 0.5)).sum(), (w * (ys + 0.5)).sum()])
    want = to_crop(np.array([[301.5, 207.5]]), box, 128)[0]
    np.testing.assert_allclose(got, want, atol=0.05)


def test_box_from_landmarks_is_stable_on_its_own_output():
    from devicekit.face.crop import detection_from_landmarks

    rng = np.random.default_rng(3)
    pts = rng.uniform(100, 200, (68, 2))
    x, y, w, h = detection_from_landmarks(pts)
    assert w == h > 0
    assert box_from_landmarks(pts) == box_from_detection((x, y, w, h))


def test_haar_finds_real_faces_and_crop_box():
    import cv2
    from verify_fixtures import face_data

    from devicekit.face import detect_faces

    d = face_data()
    img = cv2.imread(str(d / "unlabeled" / "multi_face.jpg"))
    assert len(detect_faces(img)) >= 3  # a group photo
    one = cv2.imread(str(d / "unlabeled" / "single_face.jpg"))
    faces = detect_faces(one)
    assert len(faces) == 1
    x0, y0, x1, y1 = detect_crop_box(one)
    fx, fy, fw, fh = faces[0]
    assert x1 - x0 == pytest.approx(CROP_POLICY["enlarge"] * fw)
    # no face in a landscape picture
    assert detect_crop_box(np.full((200, 300, 3), 128, np.uint8)) is None


@pytest.mark.parametrize("size,color,mean_tol", [(128, "rgb", 0.5), (80, "gray", 0.5), (64, "bgr", 2.5), (32, "rgb", 2.5)])
def test_the_apps_crop_is_this_crop(size, color, mean_tol):
    """The generated apps crop with CropBox.fromDetection + Preprocessor.sample (Kotlin and Swift; devicekit.app.port
    is their line-by-line port, checked against the compiled Kotlin): the same box as box_from_detection to the
    last bit, and the same pixels as crop_image within the two arithmetics' rounding (bilinear in float32 vs
    OpenCV's fixed point; n x n supersampling vs area pre-reduction when the face shrinks more than 2x)."""
    from devicekit.app import golden, port
    from devicekit.config import InputSpec

    img, meta = golden.face()  # RGB
    x, y, w, h = meta["box_xywh"]
    spec = InputSpec(shape=(1, 1 if color == "gray" else 3, size, size), color=color)
    box = box_from_detection((x, y, w, h), CROP_POLICY)
    app_spec = {"inputWidth": size, "inputHeight": size, "color": color, "cropEnlarge": CROP_POLICY["enlarge"],
                "cropShiftY": CROP_POLICY["shift_y"], "cropSquare": CROP_POLICY.get("square", True)}
    app_box = port.crop_from_detection(app_spec, x, y, w, h)
    assert app_box == (box.cx, box.cy, box.size, box.angle)
    from devicekit.face.crop import model_pixels

    ours = model_pixels(np.ascontiguousarray(img[..., ::-1]), box, spec)
    theirs = port.sample(app_spec, img, app_box)
    assert ours.shape == theirs.shape
    assert float(np.abs(ours - theirs).mean()) < mean_tol
