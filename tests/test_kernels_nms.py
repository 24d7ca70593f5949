"""kernels.nms: the suppression loop against a NumPy reference (one vectorised pass per kept box).

Boxes are drawn by hypothesis from small grids (so overlaps tie with the
threshold), with fractional corners, empty and inverted boxes (zero and
negative areas: overlaps of inf and NaN), and NaN or infinite corners; scores
from a few values (ties keep index order).  The kept indices must be the same
list.  (tests/test_face_mtcnn.py checks ``mtcnn.nms`` against a plain Python
loop of the definition.)
"""
import numpy as np
from hypothesis import example, given, settings, strategies as st

from kernel_testing import examples
from tinyface.kernels.nms import suppress


def nms_numpy(boxes, order, threshold, by_min):
    """The greedy loop in NumPy, as ``face.mtcnn.nms`` ran it before the kernel."""
    x1, y1, x2, y2 = boxes.T
    keep = []
    with np.errstate(all="ignore"):
        area = (x2 - x1 + 1) * (y2 - y1 + 1)
        while order.size:
            best, rest = order[0], order[1:]
            keep.append(best)
            iw = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
            ih = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
            inter = iw * ih
            if by_min:
                overlap = inter / np.minimum(area[best], area[rest])
            else:
                overlap = inter / (area[best] + area[rest] - inter)
            order = rest[overlap <= threshold]
    return [int(k) for k in keep]


def run_suppress(boxes, order, threshold, by_min):
    keep = np.empty(len(order), np.int64)
    kept = suppress(boxes, order, threshold, by_min, keep)
    return keep[:kept].tolist()


corner = st.one_of(st.integers(0, 24).map(float), st.sampled_from([0.5, 7.25, np.nan, np.inf, -np.inf]))
box = st.tuples(corner, corner, st.integers(-2, 14), st.integers(-2, 14)).map(
    lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.tuples(box, st.sampled_from([0.1, 0.5, 0.7, 0.9])), max_size=30),
       st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]), st.booleans())
@example([((0.0, 0.0, 9.0, 9.0), 0.9), ((0.0, 0.0, 9.0, 9.0), 0.9), ((-1.0, 0.0, -1.0, 0.0), 0.5)], 0.5, True)
def test_suppress_matches_numpy(items, threshold, by_min):
    boxes = np.array([b for b, _ in items], np.float64).reshape(-1, 4)
    scores = np.array([s for _, s in items], np.float64)
    order = np.argsort(-scores, kind="stable").astype(np.int64)
    assert run_suppress(boxes, order, threshold, by_min) == nms_numpy(boxes, order, threshold, by_min)


def test_a_worked_example():
    """Two boxes of 10x10 px sharing 5 columns: IoU 50/150, over the smaller area 50/100."""
    boxes = np.array([[0, 0, 9, 9], [5, 0, 14, 9], [30, 30, 39, 39]], np.float64)
    order = np.array([0, 1, 2], np.int64)
    assert run_suppress(boxes, order, 0.4, False) == [0, 1, 2]
    assert run_suppress(boxes, order, 0.3, False) == [0, 2]
    assert run_suppress(boxes, order, 0.4, True) == [0, 2]
    assert run_suppress(boxes, order, 0.5, True) == [0, 1, 2]      # an overlap equal to the threshold stays
