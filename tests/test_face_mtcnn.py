"""MTCNN: the geometry against loop references, the cascade on a photo, metamorphic checks.

The nets run on tinyface's engine when ``tinyface.runtime.model`` imports,
otherwise on onnxruntime (a test-only dependency); the fixture says which.
"""
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from tinyface.errors import ImageError, TinyfaceError
from tinyface.face import mtcnn
from tinyface.face.detection import Face, Nets, detect_faces, draw_faces, onnx_nets
from tinyface.paths import weights_dir

WEIGHTS_DIR = weights_dir() / "mtcnn"

PHOTO = Path(__file__).parent / "data" / "astronaut.png"   # NASA, public domain, 512×512


class OrtModel:
    """onnxruntime behind the engine's interface: run(x) -> list, output_names."""

    def __init__(self, path):
        import onnxruntime
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x):
        return self.session.run(None, {self.input_name: x})


def _engine_loader():
    try:
        from tinyface.runtime.model import Model
    except ImportError:
        return None
    return Model.load


@pytest.fixture(scope="module")
def nets():
    load_model = _engine_loader()
    print("MTCNN nets run on", "tinyface engine" if load_model else "onnxruntime (engine not importable)")
    return onnx_nets(WEIGHTS_DIR, load_model or OrtModel)


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.open(PHOTO).convert("RGB"))


@pytest.fixture(scope="module")
def face(photo, nets):
    faces = detect_faces(photo, nets)
    assert len(faces) == 1
    return faces[0]


# ---------------------------------------------------------------- resampling

def area_reference(image, regions, rows, cols):
    """Loop definition of area resampling: overlap-weighted mean, zero outside."""
    def overlap(a, b, k):
        return max(0.0, min(b, k + 1) - max(a, k))
    h, w, _ = image.shape
    out = np.zeros((len(regions), rows, cols, image.shape[2]))
    for n, (left, top, right, bottom) in enumerate(regions):
        dy, dx = (bottom - top) / rows, (right - left) / cols
        for r in range(rows):
            for c in range(cols):
                y0, x0 = top + r * dy, left + c * dx
                acc = np.zeros(image.shape[2])
                for i in range(max(0, math.floor(y0)), min(h, math.ceil(y0 + dy))):
                    for j in range(max(0, math.floor(x0)), min(w, math.ceil(x0 + dx))):
                        acc += overlap(y0, y0 + dy, i) * overlap(x0, x0 + dx, j) * image[i, j]
                out[n, r, c] = acc / (dy * dx)
    return out


def test_crop_area_matches_loop_reference_inside_and_outside_the_image():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (13, 17, 3)).astype(np.uint8)
    regions = np.array([[0, 0, 17, 13], [2.5, 1.25, 11.75, 9.5], [-4, -3.5, 6, 8.5],
                        [12.2, 9.9, 21.7, 19.4], [20, 20, 25, 25], [5, 5, 6.5, 6.5]])
    got = mtcnn.crop_area(image, regions, (5, 7))
    np.testing.assert_allclose(got, area_reference(image, regions, 5, 7), atol=1e-9)


def overlap_matrix(start, step, count, limit):
    """M[k, i]: how much of source pixel i the k-th footprint [start + k·step, start + (k+1)·step) covers."""
    a = start + step * np.arange(count)[:, None]
    i = np.arange(limit)[None, :]
    return np.clip(np.minimum(a + step, i + 1) - np.maximum(a, i), 0, None)


def test_crop_area_matches_float64_matrix_reference_on_a_large_image():
    """The kernel sums in int32 and float32: within 1e-4 grey levels of float64 on a 640x480 image."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (480, 640, 3)).astype(np.uint8)
    regions = np.array([[0, 0, 640, 480], [13.3, 7.9, 412.6, 351.2], [-50.5, 300.25, 200.75, 530.5]])
    got = mtcnn.crop_area(image, regions, (24, 31))
    for n, (left, top, right, bottom) in enumerate(regions):
        wy = overlap_matrix(top, (bottom - top) / 24, 24, 480)
        wx = overlap_matrix(left, (right - left) / 31, 31, 640)
        area = (bottom - top) / 24 * (right - left) / 31
        want = np.einsum("ri,ijc,sj->rsc", wy, image.astype(np.float64), wx) / area
        np.testing.assert_allclose(got[n], want, atol=1e-4)


def test_whole_image_is_block_mean_for_integer_factors_and_keeps_constants():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (12, 18, 3)).astype(np.uint8)
    blocks = image.reshape(4, 3, 6, 3, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(mtcnn.crop_area(image, [[0, 0, 18, 12]], (4, 6))[0], blocks, atol=1e-9)
    grey = np.full((37, 23, 3), 77, np.uint8)
    np.testing.assert_allclose(mtcnn.crop_area(grey, [[0, 0, 23, 37]], (13, 10)), 77, atol=1e-9)


def test_net_input_is_the_normalised_means_bit_for_bit():
    """One pass from the photo to the nets' float32 planes: the bits of normalising crop_area's means."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (61, 47, 3)).astype(np.uint8)
    regions = np.array([[0, 0, 47, 61], [3.5, -2.25, 40.75, 30.5], [30.0, 50.0, 58.0, 78.0]])
    means = mtcnn.crop_area(image, regions, (24, 24))
    want = ((means - 127.5) * 0.0078125).transpose(0, 3, 1, 2).astype(np.float32)
    got = mtcnn.net_input(image, regions, 24)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(mtcnn.level_input(image, 20, 15), mtcnn.net_input(image, regions[:1], (20, 15)))


# ---------------------------------------------------------------- boxes

def test_pyramid_scales_and_level_sizes():
    scales = mtcnn.pyramid_scales(512, 400, 20, 0.709)
    assert scales[0] == pytest.approx(0.6) and len(scales) == 9    # 240·0.709⁸ ≈ 15.3, ⁹ ≈ 10.9 < 12
    assert all(min(mtcnn.level_size(512, 400, s)) >= 12 for s in scales)
    assert mtcnn.level_size(512, 400, 0.6) == (308, 241)
    assert mtcnn.pyramid_scales(19, 500, 20, 0.709) == []          # 19·0.6 < 12
    # max_side 256 on L = 512: r = 0.5, levels at most 0.6·0.5; 0.709² = 0.503 > 0.5: three dropped
    assert mtcnn.pyramid_scales(512, 400, 20, 0.709, 256) == scales[3:]
    assert mtcnn.pyramid_scales(512, 400, 20, 0.709, 512) == scales              # L <= max_side
    assert mtcnn.pyramid_scales(512, 400, 20, 0.5, 256) == mtcnn.pyramid_scales(512, 400, 20, 0.5)[1:]


def test_generate_boxes_matches_loop_reference():
    rng = np.random.default_rng(3)
    prob, reg, scale = rng.random((7, 9)), rng.normal(size=(4, 7, 9)), 0.6 * 0.709 ** 2
    boxes, scores, deltas = mtcnn.generate_boxes(prob, reg, scale, 0.6)
    expected = [((math.floor((2 * c + 1) / scale), math.floor((2 * r + 1) / scale),
                  math.floor((2 * c + 12) / scale), math.floor((2 * r + 12) / scale)),
                 prob[r, c], reg[:, r, c])
                for r in range(7) for c in range(9) if prob[r, c] >= 0.6]
    assert len(boxes) == len(expected) > 0
    for box, score, delta, (b, s, d) in zip(boxes, scores, deltas, expected):
        assert tuple(box) == b and score == s and np.array_equal(delta, d)


def nms_reference(boxes, scores, threshold, method):
    """Keep a box unless a better-ranked kept box overlaps it by more than threshold."""
    def overlap(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
        area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
        area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
        inter = iw * ih
        return inter / (min(area_a, area_b) if method == "min" else area_a + area_b - inter)
    keep = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        if all(overlap(boxes[k], boxes[i]) <= threshold for k in keep):
            keep.append(i)
    return keep


box_strategy = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 20),
                         st.integers(0, 20), st.sampled_from([0.0, 0.25, 0.5])).map(
    lambda t: (t[0] + t[4], t[1], t[0] + t[2] + t[4], t[1] + t[3]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(box_strategy, st.sampled_from([0.1, 0.5, 0.7, 0.9, 0.95])), max_size=25),
       st.floats(0, 1), st.sampled_from(["union", "min"]))
def test_nms_matches_plain_python_reference(items, threshold, method):
    boxes = np.array([b for b, _ in items], dtype=np.float64).reshape(-1, 4)
    scores = np.array([s for _, s in items])
    got = mtcnn.nms(boxes, scores, threshold, method)
    assert got.tolist() == nms_reference(boxes.tolist(), scores.tolist(), threshold, method)


def test_nms_rejects_unknown_method():
    with pytest.raises(ValueError):
        mtcnn.nms(np.zeros((1, 4)), np.ones(1), 0.5, "Union")


def test_regress_and_square():
    boxes = np.array([[10.0, 20.0, 30.0, 60.0]])
    reg = np.array([[0.1, -0.1, 0.2, 0.0]])
    np.testing.assert_allclose(mtcnn.regress(boxes, reg, inclusive=False), [[12, 16, 34, 60]])
    np.testing.assert_allclose(mtcnn.regress(boxes, reg, inclusive=True), [[12.1, 15.9, 34.2, 60]])
    np.testing.assert_allclose(mtcnn.square(boxes), [[0, 20, 40, 60]])     # centre (20, 40), side 40


# ---------------------------------------------------------------- the photo

def test_astronaut_has_one_face_with_plausible_landmarks(face):
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    x1, y1, x2, y2 = face.box
    assert face.score > 0.9
    assert lx < nx < rx and mlx < mrx and lx < rx
    assert max(ly, ry) < ny < min(mly, mry)
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)
    # regression pin (measured with onnxruntime; the engine may move them by ~1 px)
    expected = [[203.9, 101.3], [246.4, 103.2], [224.3, 128.9], [201.8, 139.8], [244.9, 142.0]]
    np.testing.assert_allclose(face.landmarks, expected, atol=2.0)
    np.testing.assert_allclose(face.box, [178.8, 59.1, 267.1, 172.9], atol=3.0)


class Spy:
    """Wraps a net and records the batches it is given."""

    def __init__(self, net):
        self.net, self.batches = net, []

    def __call__(self, x):
        self.batches.append((x.shape, x.dtype, float(x.min()), float(x.max())))
        return self.net(x)


def test_nets_see_normalised_float32_batches(photo, nets):
    spies = Nets(Spy(nets.pnet), Spy(nets.rnet), Spy(nets.onet))
    detect_faces(photo, spies)
    assert all(s[0][0] == 1 for s in spies.pnet.batches)            # one pyramid level per call
    assert len({s[0] for s in spies.pnet.batches}) == len(spies.pnet.batches)
    assert spies.pnet.batches[0][0] == (1, 3, 308, 308)              # 512·0.6 + 1
    for spy, size in ((spies.rnet, 24), (spies.onet, 48)):
        assert len(spy.batches) == 1 and spy.batches[0][0][1:] == (3, size, size)
    for shape, dtype, low, high in spies.pnet.batches + spies.rnet.batches + spies.onet.batches:
        assert dtype == np.float32 and -1.0 <= low and high <= 1.0


def test_chunking_does_not_change_the_result(photo, nets):
    one = mtcnn.run_cascade(photo, nets, chunk=5)
    many = mtcnn.run_cascade(photo, nets)
    for a, b in zip(one, many):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_missing_net_output_is_a_clear_error(photo, nets):
    broken = Nets(lambda x: {"prob": nets.pnet(x)["prob"]}, nets.rnet, nets.onet)
    with pytest.raises(TinyfaceError, match="missing"):
        detect_faces(photo, broken)


def test_draw_faces(photo, face):
    drawn = draw_faces(photo, [face])
    assert drawn.mode == "RGB" and drawn.size == (512, 512)
    x1, y1, _, y2 = (round(v) for v in face.box)
    assert np.asarray(drawn)[(y1 + y2) // 2, x1].tolist() == [255, 40, 40]
    assert np.array_equal(np.asarray(draw_faces(Image.fromarray(photo), [])), photo)


@pytest.mark.skipif(_engine_loader() is None, reason="tinyface.runtime.model not importable yet")
def test_engine_and_onnxruntime_find_the_same_face(photo):
    ort_face = detect_faces(photo, onnx_nets(WEIGHTS_DIR, OrtModel))[0]
    engine_face = detect_faces(photo)[0]                   # default_nets(): the engine
    assert abs(ort_face.score - engine_face.score) < 1e-3
    np.testing.assert_allclose(engine_face.landmarks, ort_face.landmarks, atol=0.5)
    np.testing.assert_allclose(engine_face.box, ort_face.box, atol=1.0)


# ---------------------------------------------------------------- metamorphic
# Each variant moves the landmarks by a known map T; the landmarks found on
# the variant must be T(landmarks of the photo) within 0.1 × eye distance
# (4.3 px at 512 px; worst measured with onnxruntime: 0.073, at +10°), and
# the box corners (where T keeps boxes axis-aligned) within 0.15 × box width
# (worst measured: 0.086, mirror).  Points are pixel centres.

def rotated(image, degrees):
    """PIL's counter-clockwise rotation with expand, and its map on points."""
    h, w = image.shape[:2]
    out = Image.fromarray(image).rotate(degrees, resample=Image.Resampling.BICUBIC,
                                        expand=True, fillcolor=(128, 128, 128))
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))

    def move(p):
        x, y = p[:, 0] + 0.5 - w / 2, p[:, 1] + 0.5 - h / 2
        return np.stack([c * x + s * y + out.width / 2 - 0.5,
                         -s * x + c * y + out.height / 2 - 0.5], axis=1)
    return np.asarray(out), move


def padded(image, left, top, right, bottom):
    h, w = image.shape[:2]
    out = np.empty((h + top + bottom, w + left + right, 3), np.uint8)
    out[:] = (90, 120, 150)
    out[top:top + h, left:left + w] = image
    return out, lambda p: p + [left, top]


def scaled(image, factor):
    h, w = image.shape[:2]
    size = (round(w * factor), round(h * factor))
    out = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    return out, lambda p: (p + 0.5) * [size[0] / w, size[1] / h] - 0.5


def mirrored(image):
    w = image.shape[1]
    return image[:, ::-1].copy(), lambda p: np.stack([w - 1 - p[:, 0], p[:, 1]], axis=1)


VARIANTS = {
    "mirror": mirrored,
    "pad-top": lambda im: padded(im, 0, 53, 0, 0),
    "pad-all": lambda im: padded(im, 40, 25, 100, 60),
    "scale-0.75": lambda im: scaled(im, 0.75),
    "scale-1.5": lambda im: scaled(im, 1.5),
    "rotate+10": lambda im: rotated(im, 10),
    "rotate-10": lambda im: rotated(im, -10),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_landmarks_follow_the_transform(name, photo, face, nets):
    variant, move = VARIANTS[name](photo)
    faces = detect_faces(variant, nets)
    assert len(faces) == 1 and faces[0].score > 0.9
    expected = move(face.landmarks)
    if name == "mirror":              # left/right eyes and mouth corners trade places
        expected = expected[[1, 0, 2, 4, 3]]
    eye_distance = np.linalg.norm(expected[1] - expected[0])
    error = np.linalg.norm(faces[0].landmarks - expected, axis=1)
    print(f"{name}: landmark error {error.max():.2f} px = {error.max() / eye_distance:.3f} eye distances")
    assert error.max() <= 0.1 * eye_distance
    if not name.startswith("rotate"):
        x1, y1, x2, y2 = face.box
        corners = move(np.array([[x1, y1], [x2, y2], [x2, y1], [x1, y2]]))
        box = [corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max()]
        np.testing.assert_allclose(faces[0].box, box, atol=0.15 * (box[2] - box[0]))


# ---------------------------------------------------------------- no faces, bad input

@pytest.mark.parametrize("shape", [(10, 10), (11, 400), (12, 12), (19, 19), (20, 20), (1, 1), (0, 0)])
def test_tiny_images_give_no_faces(shape, nets):
    assert detect_faces(np.zeros(shape + (3,), np.uint8), nets) == []


def test_faceless_images_give_no_faces(nets):
    grey = np.full((300, 400, 3), 128, np.uint8)
    noise = np.random.default_rng(4).integers(0, 256, (256, 320, 3), dtype=np.uint8)
    assert detect_faces(grey, nets) == [] and detect_faces(noise, nets) == []


@pytest.mark.parametrize("kwargs", [
    {"min_face_size": 11}, {"min_face_size": 0}, {"min_face_size": float("nan")},
    {"min_face_size": True}, {"min_face_size": "20"},
    {"scale_factor": 0}, {"scale_factor": 1}, {"scale_factor": 1.2},
    {"thresholds": (0.6, 0.7)}, {"thresholds": (0.6, 0.7, 1.5)}, {"thresholds": 0.5},
    {"nms_thresholds": (0.5, 0.7, 0.7)}, {"nms_thresholds": (0.5, 0.7, -0.1, 0.7)},
    {"max_side": 11}, {"max_side": 640.0}, {"max_side": True}, {"max_side": "640"},
])
def test_bad_parameters_are_clear_errors(kwargs, nets):
    name = next(iter(kwargs))
    with pytest.raises(TinyfaceError, match=name):
        detect_faces(np.zeros((20, 20, 3), np.uint8), nets, **kwargs)


@pytest.mark.parametrize("image", [np.zeros((20, 20, 3), np.float32), [[0, 0, 0]], np.zeros((20, 20, 2), np.uint8)])
def test_bad_images_are_image_errors(image, nets):
    with pytest.raises(ImageError):
        detect_faces(image, nets)


def test_face_area():
    assert Face((0.0, 0.0, 9.0, 19.0), 0.9, np.zeros((5, 2))).area == 200.0
