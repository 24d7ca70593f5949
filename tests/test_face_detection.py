"""detect_faces against facenet-pytorch's MTCNN, and the max_side policy.

Reference data: tests/data/mtcnn/golden.json, made once by
tests/make_mtcnn_golden.py with facenet-pytorch (an independent MTCNN on the
same trained weights) on six collages of the astronaut photo with 1-6 faces
each (crowded, overlapping, 20-180 px, mirrored, rotated by up to 35°),
without and (three of them) with the max_side policy.

Tolerances, with the worst values measured when the data was made: the same
number of faces; each reference face matched (greedily, by IoU) to one of
ours with IoU >= 0.85 (worst 0.867), face probability within 0.01 (worst
0.0044) and every landmark within 0.15 eye distances (worst 0.117).  The two
implementations resample the pyramid and the crops differently, count box
areas differently in NMS and crop boxes at the image border differently
(docs/detection.md), so P-Net's proposals differ a little and R-Net's and
O-Net's regressions carry the difference to the final boxes and landmarks.
The last NMS threshold (0.7, over the smaller box) decides the count on
"nested", where a small face lies on the edge of a large one's box.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyface.face import mtcnn
from tinyface.face.detection import MAX_SIDE, detect_faces

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "mtcnn" / "golden.json").read_text())
CASES = [(name, setting) for name, record in GOLDEN["images"].items()
         for setting in ("full", "max_side") if setting in record]

MIN_IOU, MAX_SCORE_DIFF, MAX_LANDMARK_EYES = 0.85, 0.01, 0.15


def iou(a, b):
    """IoU of (x1, y1, x2, y2) boxes taken as continuous rectangles."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def eye_distance(landmarks):
    return float(np.linalg.norm(np.asarray(landmarks[0]) - np.asarray(landmarks[1])))


def read(name):
    return np.asarray(Image.open(DATA / "mtcnn" / GOLDEN["images"][name]["file"]).convert("RGB"))


@pytest.mark.parametrize("name, setting", CASES)
def test_cascade_matches_facenet_pytorch(name, setting):
    reference = GOLDEN["images"][name][setting]
    max_side = GOLDEN["max_side"] if setting == "max_side" else None
    faces = detect_faces(read(name), max_side=max_side)
    assert len(faces) == len(reference["boxes"])
    unmatched = list(faces)
    for box, score, landmarks in zip(reference["boxes"], reference["scores"], reference["landmarks"]):
        ours = max(unmatched, key=lambda f: iou(np.array(f.box) + 1.0, box))   # its frame is 1-based
        unmatched.remove(ours)
        assert iou(np.array(ours.box) + 1.0, box) >= MIN_IOU
        assert abs(ours.score - score) <= MAX_SCORE_DIFF
        worst = np.linalg.norm(ours.landmarks - np.asarray(landmarks), axis=1).max()
        assert worst <= MAX_LANDMARK_EYES * eye_distance(landmarks)


def test_policy_cases_drop_pyramid_levels():
    """In each max_side case the policy really changes the search: fewer, coarser levels."""
    for name, setting in CASES:
        if setting == "max_side":
            image = GOLDEN["images"][name]
            full = mtcnn.pyramid_scales(image["height"], image["width"], 20, 0.709)
            kept = mtcnn.pyramid_scales(image["height"], image["width"], 20, 0.709, GOLDEN["max_side"])
            assert kept == full[len(full) - len(kept):] and len(kept) < len(full)
            assert 12 / kept[0] == pytest.approx(image["max_side"]["min_face_size"])


@pytest.fixture(scope="module")
def large_photo():
    """The astronaut photo twice as large, on a 1280×960 canvas: 1.2 Mpx, one face of ~200 px."""
    face = Image.open(DATA / "astronaut.png").convert("RGB").resize((1024, 1024), Image.BICUBIC)
    canvas = Image.new("RGB", (1280, 960), (90, 100, 110))
    canvas.paste(face, (128, -20))
    return np.asarray(canvas)


def test_default_policy_finds_what_full_resolution_finds(large_photo):
    full = detect_faces(large_photo, max_side=None)
    shrunk = detect_faces(large_photo)                       # MAX_SIDE: 640 < 1280
    assert MAX_SIDE < max(large_photo.shape) and len(full) == len(shrunk) == 1
    eye = eye_distance(full[0].landmarks)
    assert np.linalg.norm(shrunk[0].landmarks - full[0].landmarks, axis=1).max() <= 0.03 * eye
    assert iou(shrunk[0].box, full[0].box) >= 0.95


def test_small_photos_are_searched_whole(large_photo):
    small = np.ascontiguousarray(large_photo[::2, ::2])       # 640×480: within MAX_SIDE
    a, b = detect_faces(small), detect_faces(small, max_side=None)
    assert len(a) == len(b) == 1
    np.testing.assert_array_equal(a[0].landmarks, b[0].landmarks)


def test_max_side_raises_the_smallest_face_searched(large_photo):
    tiny = np.ascontiguousarray(large_photo[::8, ::8])       # 160×120, the face ~25 px
    assert len(detect_faces(tiny, max_side=None)) == 1
    assert detect_faces(tiny, max_side=40) == []             # only faces of >= 20·160/40 = 80 px
