"""The MTCNN cascade (Zhang et al. 2016) in NumPy: pyramid, P-Net, R-Net, O-Net.

The three nets are plain callables ``net(x) -> {output name: array}`` taking a
float32 N×3×H×W batch already normalised as (pixel − 127.5)·0.0078125; see
``weights/mtcnn/README.md`` for their contract and ``tinyface.face.detection``
for the public API.  This module does everything around them::

    image ─ pyramid ─► P-Net per level ─ boxes, NMS 0.5 per level, NMS 0.7 ─ regress, square
          ─ 24×24 crops ─► R-Net ─ p > 0.7, NMS 0.7 ─ regress, square
          ─ 48×48 crops ─► O-Net ─ p > 0.7, landmarks ─ regress, NMS 0.7 "min"

Coordinates.  Inside the cascade a box is (x1, y1, x2, y2) as the reference
implementations (MATLAB, facenet, facenet-pytorch) keep it: 1-based inclusive
corners, so it covers the 0-based pixel columns x1−1 … x2−1 and is
w = x2 − x1 + 1 pixels wide.  Landmarks come out 0-based: (x, y) is the centre
of pixel ``image[y, x]``.  :mod:`tinyface.face.detection` moves boxes to that
frame too (subtracts 1).

Resampling.  Pixels are unit squares: pixel k covers [k, k+1).  Every resize
here (pyramid levels and crops) is *exact area averaging*: an output pixel is
the mean of the image over its footprint, pixels cut by the footprint's edge
counted by the fraction covered.  When shrinking this is OpenCV's
``INTER_AREA`` (which the original Python MTCNN used) up to rounding: we keep
floats where OpenCV would round to uint8.  facenet-pytorch uses torch's
``area`` mode, i.e. adaptive average pooling, which averages whole pixels with
equal weights (windows ⌊kL/n⌋ … ⌈(k+1)L/n⌉), so its levels differ from ours
by a fraction of a grey level.  When enlarging (crops of faces smaller than
24 or 48 px) exact area is a nearest-neighbour copy blended at pixel seams,
where OpenCV would switch to bilinear.  Crops use area averaging, not
bilinear, because bilinear sampling aliases when a 200-pixel face is shrunk
to 48 pixels, and area is what the references use for crops as for levels
(on the tests' transformed photos, plain bilinear crops moved the landmarks
no less: worst 0.091 against 0.073 eye distances).  The kernel
(:mod:`tinyface.kernels.area`) is separable, one output row at a time, so a
level costs about one pass over the image and a crop one over its box.

Choices the README leaves open, made as the original MTCNN code makes them:
every IoU counts inclusive corners (area (x2 − x1 + 1)(y2 − y1 + 1); facenet-
pytorch's torchvision NMS omits the +1); before R-Net and O-Net the boxes are
truncated towards zero and the truncated box is the one that is cropped,
refined and used for landmarks (facenet-pytorch crops the truncated box but
refines the untruncated one); crops are zero-padded where a box leaves the
image (facenet-pytorch clips the box instead).
"""
import numpy as np

from tinyface.errors import TinyfaceError
from tinyface.kernels.area import area_resample
from tinyface.kernels.nms import suppress

#: NMS thresholds: P-Net within a level, P-Net across levels, R-Net, O-Net ("min").
NMS_THRESHOLDS = (0.5, 0.7, 0.7, 0.7)

_STRIDE, _CELL = 2, 12          # P-Net: one output cell per 2 px, seeing 12×12 px
_WIDTH = {"prob": 2, "reg": 4, "landmarks": 10}     # R-Net / O-Net output widths


# ---------------------------------------------------------------- resampling

def _resample(image, regions, size, offset, factor, dtype):
    """``area_resample`` of ``regions`` of the uint8 image to N×C×rows×cols of ``dtype``."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise TinyfaceError(f"area resampling takes uint8 H×W×C images, got {image.dtype} {image.shape}")
    rows, cols = (size, size) if np.ndim(size) == 0 else size
    regions = np.ascontiguousarray(regions, dtype=np.float64).reshape(-1, 4)
    out = np.empty((len(regions), image.shape[2], rows, cols), dtype)
    area_resample(image, regions, offset, factor, out)
    return out


def crop_area(image: np.ndarray, regions: np.ndarray, size) -> np.ndarray:
    """Resample regions of the image to float64 N×rows×cols×C, zero outside the image.

    ``image`` is H×W×C uint8; ``regions`` is N×4 (left, top,
    right, bottom) in continuous pixel coordinates (pixel k covers [k, k+1)),
    each of positive area; ``size`` is ``rows`` or (rows, cols).  Output
    pixel (r, c) of region n is the mean of the image over its footprint
    (see :mod:`tinyface.kernels.area`).
    """
    return _resample(image, regions, size, 0.0, 1.0, np.float64).transpose(0, 2, 3, 1)


def net_input(image: np.ndarray, regions: np.ndarray, size) -> np.ndarray:
    """The nets' input: :func:`crop_area`'s means m as float32 N×3×rows×cols, (m − 127.5)·0.0078125.

    The same bits as normalising ``crop_area``'s float64 means, in one pass.
    """
    return _resample(image, regions, size, 127.5, 0.0078125, np.float32)


def level_input(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The whole image at height×width as the nets' input (1×3×height×width, see :func:`net_input`)."""
    whole = [[0.0, 0.0, float(image.shape[1]), float(image.shape[0])]]
    return net_input(image, np.array(whole), (height, width))


# ---------------------------------------------------------------- boxes

def pyramid_scales(height: int, width: int, min_face_size: float,
                   scale_factor: float, max_side=None) -> list[float]:
    """Scales m, m·f, m·f², … (m = 12 / min_face_size) while min(H, W)·s ≥ 12.

    With ``max_side`` and max(H, W) = L > max_side, only the scales
    s ≤ m·r, r = max_side / L: the pyramid of the photo shrunk by r, whose
    first level would be at m·r, on the photo's own grid of scales (the
    finest levels dropped).  The smallest face looked for is then
    min_face_size / f^j pixels (j levels dropped, f^j ≤ r), between
    min_face_size / r and min_face_size / (r·f).
    """
    scale = 12.0 / min_face_size
    side = min(height, width) * scale
    finest = scale
    if max_side is not None and max(height, width) > max_side:
        finest *= max_side / max(height, width) * (1 + 1e-9)    # f^j == r is kept
    scales = []
    while side >= _CELL:
        if scale <= finest:
            scales.append(scale)
        scale *= scale_factor
        side *= scale_factor
    return scales


def level_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """Size of the pyramid level at ``scale``: (⌊H·s + 1⌋, ⌊W·s + 1⌋)."""
    return int(height * scale + 1), int(width * scale + 1)


def generate_boxes(prob: np.ndarray, reg: np.ndarray, scale: float,
                   threshold: float):
    """P-Net output map -> candidate boxes in original-image pixels.

    ``prob`` is the H'×W' face probability, ``reg`` the 4×H'×W' regression.
    Cell (r, c) with prob ≥ threshold sees the 12×12 window at (2c, 2r) of
    the level, 1-based pixels 2c+1 … 2c+12, so in the image
        x1 = ⌊(2c + 1)/s⌋,  y1 = ⌊(2r + 1)/s⌋,  x2 = ⌊(2c + 12)/s⌋,  y2 = ⌊(2r + 12)/s⌋.
    Returns boxes N×4, scores N, reg N×4, cells in row-major order.
    """
    rows, cols = np.nonzero(prob >= threshold)
    cells = np.stack([cols, rows, cols, rows], axis=1).astype(np.float64)
    offset = np.array([1.0, 1.0, _CELL, _CELL])
    boxes = np.floor((_STRIDE * cells + offset) / scale)
    return boxes, prob[rows, cols].astype(np.float64), reg[:, rows, cols].T.astype(np.float64)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float,
        method: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept boxes, best first.

    Take the best remaining box, drop every other box whose overlap with it
    exceeds ``threshold``, repeat.  Areas count inclusive corners,
    a = (x2 − x1 + 1)(y2 − y1 + 1), and the overlap o of boxes i, j is
        "union": |i ∩ j| / (a_i + a_j − |i ∩ j|)      (IoU)
        "min":   |i ∩ j| / min(a_i, a_j).
    Equal scores are taken in index order.  The loop is
    :func:`tinyface.kernels.nms.suppress`.
    """
    if method not in ("union", "min"):
        raise ValueError(f"nms method must be 'union' or 'min', got {method!r}")
    boxes = np.ascontiguousarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise TinyfaceError(f"nms got {len(boxes)} boxes and {len(scores)} scores")
    order = np.argsort(-scores, kind="stable").astype(np.int64)
    keep = np.empty(len(boxes), np.int64)
    kept = suppress(boxes, order, float(threshold), method == "min", keep)
    return keep[:kept].astype(np.intp)


def regress(boxes: np.ndarray, reg: np.ndarray, inclusive: bool) -> np.ndarray:
    """Refine boxes: (x1, y1, x2, y2) += (d0·w, d1·h, d2·w, d3·h).

    w = x2 − x1 and h = y2 − y1, plus 1 each if ``inclusive`` (R-Net, O-Net;
    P-Net's boxes are refined without the +1, as in the reference).
    """
    extra = 1.0 if inclusive else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    return boxes + reg * np.stack([w, h, w, h], axis=1)


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square of side l = max(w, h) about the same centre."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + (w - side) / 2
    y1 = boxes[:, 1] + (h - side) / 2
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


# ---------------------------------------------------------------- the cascade

def _outputs(net, x: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
    """Run ``net`` and return the named outputs as float64 arrays."""
    out = net(x)
    missing = [n for n in names if n not in out]
    if missing:
        raise TinyfaceError(f"MTCNN net returned outputs {sorted(out)}, missing {missing}")
    return [np.asarray(out[n], dtype=np.float64) for n in names]


def propose(image: np.ndarray, pnet, scales, threshold: float, nms_level: float, nms_all: float):
    """Stage 1: P-Net over the pyramid levels at ``scales`` -> (boxes N×4, scores N), refined and squared."""
    height, width = image.shape[:2]
    found = []
    for scale in scales:
        level = level_input(image, *level_size(height, width, scale))
        reg, prob = _outputs(pnet, level, ("reg", "prob"))
        boxes, scores, deltas = generate_boxes(prob[0, 1], reg[0], scale, threshold)
        pick = nms(boxes, scores, nms_level)
        found.append((boxes[pick], scores[pick], deltas[pick]))
    if not found:
        return np.zeros((0, 4)), np.zeros(0)
    boxes, scores, deltas = (np.concatenate(parts) for parts in zip(*found))
    pick = nms(boxes, scores, nms_all)
    return square(regress(boxes[pick], deltas[pick], inclusive=False)), scores[pick]


def refine(image: np.ndarray, net, boxes: np.ndarray, size: int, threshold: float,
           names: tuple[str, ...], chunk: int = 256):
    """Run R-Net or O-Net on crops of ``boxes``; keep boxes with p > threshold.

    Boxes are first truncated to integers, as the reference does before
    cropping, and the truncated box is the one the net's outputs refer to;
    boxes with no pixel or non-finite corners are dropped.  A box
    (x1, y1, x2, y2) is cropped as the region [x1 − 1, x2)×[y1 − 1, y2)
    of pixel squares (zero outside the image) resampled to size×size.
    Returns (boxes, scores, [named outputs]) of the kept boxes.
    """
    boxes = boxes[np.all(np.isfinite(boxes), axis=1)]
    boxes = np.trunc(boxes)
    boxes = boxes[(boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])]
    regions = boxes - np.array([1.0, 1.0, 0.0, 0.0])
    parts = []
    for start in range(0, len(boxes), chunk):
        crops = net_input(image, regions[start:start + chunk], size)
        parts.append(_outputs(net, crops, ("prob",) + names))
    if not parts:
        return boxes, np.zeros(0), [np.zeros((0, _WIDTH[n])) for n in names]
    prob, *outputs = (np.concatenate(p) for p in zip(*parts))
    keep = prob[:, 1] > threshold
    return boxes[keep], prob[keep, 1], [o[keep] for o in outputs]


def landmarks_from(boxes: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """O-Net's 10-vector L -> N×5×2 points: x = w·L[i] + x1 − 1, y = h·L[5+i] + y1 − 1."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    xs = w[:, None] * marks[:, :5] + boxes[:, :1] - 1
    ys = h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1
    return np.stack([xs, ys], axis=2)


def run_cascade(image: np.ndarray, nets, min_face_size: float = 20,
                scale_factor: float = 0.709, thresholds=(0.6, 0.7, 0.7),
                nms_thresholds=NMS_THRESHOLDS, max_side=None, chunk: int = 256):
    """The whole cascade on a uint8 H×W×3 RGB image (parameters unchecked).

    ``max_side``: drop the pyramid levels finer than those of the photo
    shrunk to that longer side (see :func:`pyramid_scales`).  Returns
    (boxes N×4 with 1-based inclusive corners, scores N, landmarks N×5×2
    0-based), best score first.
    """
    scales = pyramid_scales(*image.shape[:2], min_face_size, scale_factor, max_side)
    boxes, _ = propose(image, nets.pnet, scales, thresholds[0], nms_thresholds[0], nms_thresholds[1])

    boxes, scores, (reg,) = refine(image, nets.rnet, boxes, 24, thresholds[1], ("reg",), chunk)
    pick = nms(boxes, scores, nms_thresholds[2])
    boxes = square(regress(boxes[pick], reg[pick], inclusive=True))

    boxes, scores, (reg, marks) = refine(image, nets.onet, boxes, 48, thresholds[2],
                                         ("reg", "landmarks"), chunk)
    points = landmarks_from(boxes, marks)
    boxes = regress(boxes, reg, inclusive=True)
    pick = nms(boxes, scores, nms_thresholds[3], method="min")
    return boxes[pick], scores[pick], points[pick]
