"""Greedy non-maximum suppression over boxes already ranked (MTCNN's NMS, ``face.mtcnn.nms``).

Layout: ``boxes`` is N x 4 float64 (x1, y1, x2, y2) with inclusive corners,
``order`` the N box indices best first (int64), ``keep`` an int64 array of N
that receives the kept indices, best first; the kernel returns how many.  With
a = (x2 - x1 + 1)(y2 - y1 + 1) and the intersection

    |i ∩ j| = max(0, min(x2_i, x2_j) - max(x1_i, x1_j) + 1) · max(0, min(y2_i, y2_j) - max(y1_i, y1_j) + 1)

the overlap of i and j is |i ∩ j| / (a_i + a_j - |i ∩ j|) (IoU), or
|i ∩ j| / min(a_i, a_j) when ``by_min``.  Walking ``order``: the next box not
suppressed is kept, and every box after it whose overlap with it is not
``<= threshold`` (above it, or NaN) is suppressed.  This is the loop of the
NumPy version (one vectorised pass per kept box) with the same float64
operations in the same order, NaN propagated by min and max as NumPy's
``minimum`` and ``maximum`` do, and division by zero giving inf or NaN
(``error_model="numpy"``), so the kept indices are the same.  The caller
checks the shapes; Numba does not bounds-check.
"""
import numba
import numpy as np


@numba.njit(inline="always", cache=True)
def _min(a, b):
    """NumPy's ``minimum`` of two floats: NaN if either is."""
    if a != a or b != b:
        return np.nan
    return a if a < b else b


@numba.njit(inline="always", cache=True)
def _max(a, b):
    """NumPy's ``maximum`` of two floats: NaN if either is."""
    if a != a or b != b:
        return np.nan
    return a if a > b else b


@numba.njit(cache=True, error_model="numpy")
def suppress(boxes, order, threshold, by_min, keep):
    N = order.size
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    gone = np.zeros(N, np.bool_)
    kept = 0
    for a in range(N):
        if gone[a]:
            continue
        best = order[a]
        keep[kept] = best
        kept += 1
        bx1, by1, bx2, by2 = boxes[best, 0], boxes[best, 1], boxes[best, 2], boxes[best, 3]
        for b in range(a + 1, N):
            if gone[b]:
                continue
            r = order[b]
            iw = _max(0.0, _min(bx2, boxes[r, 2]) - _max(bx1, boxes[r, 0]) + 1)
            ih = _max(0.0, _min(by2, boxes[r, 3]) - _max(by1, boxes[r, 1]) + 1)
            inter = iw * ih
            if by_min:
                overlap = inter / _min(area[best], area[r])
            else:
                overlap = inter / (area[best] + area[r] - inter)
            if not overlap <= threshold:
                gone[b] = True
    return kept
