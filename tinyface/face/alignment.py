"""Five-point face alignment: fit a similarity transform, then warp.

Points are (x, y) in pixels, x along a row (to the right), y down the rows.
Integer coordinates are pixel centres: (x, y) is the centre of ``image[y, x]``,
the convention of OpenCV's ``warpAffine`` with which the ArcFace templates
below were made (the top-left corner of the image is at (-0.5, -0.5)).

The five landmarks, in order: left eye, right eye, nose tip, left mouth
corner, right mouth corner ("left" as seen in the image).
"""
import numpy as np

from tinyface.errors import ImageError, InputError
from tinyface.face.image import check_size_hw, load_rgb
from tinyface.kernels.warp import warp_affine_bilinear

_ARCFACE_112 = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
])


def _scaled_square(side: int) -> np.ndarray:
    """The 112x112 template rescaled as if resizing the crop to side x side.

    Resizing maps edge coordinates by ``side/112``; with pixel centres at
    integers that is ``x' = (x + 0.5) * side / 112 - 0.5`` (same for y).
    """
    return (_ARCFACE_112 + 0.5) * (side / 112.0) - 0.5


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


#: Landmark templates (5 x 2, (x, y) pixels), keyed by crop size (height, width).
#: (112, 112): ArcFace/insightface.  (112, 96): SphereFace/ArcFace, the central
#: 96 columns of the 112 x 112 crop, i.e. x - 8.  (96, 96): the 112 x 112
#: template rescaled by 96/112 about the image corner (see ``template_for``).
TEMPLATES = {
    (112, 112): _frozen(_ARCFACE_112),
    (112, 96): _frozen(_ARCFACE_112 - [8.0, 0.0]),
    (96, 96): _frozen(_scaled_square(96)),
}


def template_for(size_hw) -> np.ndarray:
    """The 5 x 2 landmark template (a new float64 array) for a crop size.

    Sizes in :data:`TEMPLATES` are looked up.  Any other square size s x s
    gets the 112 x 112 template rescaled so that the crop is the 112 x 112
    crop resized to s x s: ``x' = (x + 0.5) * s / 112 - 0.5``.  Other sizes
    raise :class:`InputError`.
    """
    height, width = check_size_hw(size_hw)
    if (height, width) in TEMPLATES:
        return TEMPLATES[(height, width)].copy()
    if height == width:
        return _scaled_square(height)
    raise InputError(f"no landmark template for size {height}x{width} (HxW); "
                     f"known: {sorted(TEMPLATES)} or any square size")


def similarity_transform(src, dst) -> np.ndarray:
    """Least-squares similarity mapping points ``src`` onto ``dst`` (Umeyama 1991).

    ``src`` and ``dst`` are N x 2 (x, y), N >= 2.  Finds rotation R
    (det R = +1, no reflection), scale c >= 0 and translation t minimising
    ``sum_i |dst_i - (c R src_i + t)|^2``:  with centred points
    ``a_i = src_i - mean(src)``, ``b_i = dst_i - mean(dst)``, the covariance
    ``S = (1/N) sum_i b_i a_i^T = U diag(d) V^T`` (SVD),
    ``D = diag(1, det(U) det(V))``, ``R = U D V^T``,
    ``c = trace(diag(d) D) / ((1/N) sum_i |a_i|^2)``, ``t = mean(dst) - c R mean(src)``.

    Returns the 2 x 3 float64 matrix ``[c R | t]``.
    """
    src = _points(src, "src")
    dst = _points(dst, "dst")
    if src.shape != dst.shape:
        raise InputError(f"src and dst must have the same shape, got {src.shape} and {dst.shape}")
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mean_src, dst - mean_dst
    var_src = (a * a).sum() / len(a)
    if var_src <= 1e-12 * max(1.0, np.abs(src).max() ** 2):
        raise InputError("src points all coincide: the transform is undefined")
    U, d, Vt = np.linalg.svd(b.T @ a / len(a))
    D = np.diag([1.0, np.sign(np.linalg.det(U) * np.linalg.det(Vt))])
    R = U @ D @ Vt
    c = np.trace(np.diag(d) @ D) / var_src
    t = mean_dst - c * R @ mean_src
    return np.hstack([c * R, t[:, None]])


def warp_affine(image, matrix, size_hw) -> np.ndarray:
    """Warp ``image`` by the 2 x 3 affine ``matrix`` into a ``size_hw`` canvas.

    ``image`` is a uint8 H x W x C (or H x W) array; ``matrix`` maps input
    (x, y) to output (x, y), integer coordinates being pixel centres.  Each
    output pixel is mapped back through the inverse of ``matrix`` and the input
    is sampled there bilinearly, with zeros outside the image (see
    :mod:`tinyface.kernels.warp`).  Returns uint8 of shape size_hw (+ C).
    """
    height, width = check_size_hw(size_hw)
    if not isinstance(image, np.ndarray):
        raise ImageError(f"warp_affine needs a numpy array, got a {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ImageError("warp_affine needs a uint8 HxW or HxWxC array, "
                         f"got shape {image.shape} and dtype {image.dtype}")
    src = np.ascontiguousarray(image if image.ndim == 3 else image[:, :, None])
    out = np.empty((height, width, src.shape[2]), dtype=np.uint8)
    warp_affine_bilinear(src, invert_affine(matrix), out)
    return out if image.ndim == 3 else out[:, :, 0]


def invert_affine(matrix) -> np.ndarray:
    """Inverse of a 2 x 3 affine matrix ``[A | t]``: ``[A^-1 | -A^-1 t]``."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3) or not np.isfinite(m).all():
        raise InputError(f"affine matrix must be a finite 2x3 array, got shape {m.shape}")
    A, t = m[:, :2], m[:, 2]
    if np.linalg.cond(A) > 1e12:
        raise InputError("affine matrix is singular: it cannot be inverted")
    with np.errstate(over="ignore", invalid="ignore"):
        A_inv = np.linalg.inv(A)
        inverse = np.hstack([A_inv, (-A_inv @ t)[:, None]])
    if not np.isfinite(inverse).all():      # e.g. subnormal entries: well conditioned, yet it overflows
        raise InputError("affine matrix is singular: it cannot be inverted")
    return np.ascontiguousarray(inverse)


def align(image, landmarks, size_hw=(112, 112)) -> np.ndarray:
    """Crop an aligned face: uint8 ``size_hw`` x 3.

    ``image`` is anything :func:`~tinyface.face.image.load_rgb` accepts;
    ``landmarks`` are the 5 x 2 (x, y) points in it (order in the module
    docstring).  The least-squares similarity taking them onto
    :func:`template_for` ``(size_hw)`` is applied with :func:`warp_affine`.
    """
    points = _points(landmarks, "landmarks")
    if points.shape != (5, 2):
        raise InputError(f"landmarks must be 5x2 (x, y), got shape {points.shape}")
    matrix = similarity_transform(points, template_for(size_hw))
    return warp_affine(load_rgb(image), matrix, size_hw)


def _points(p, name: str) -> np.ndarray:
    """Validate an N x 2 (N >= 2) array of finite coordinates; return float64."""
    try:
        a = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be an Nx2 array of numbers") from exc
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] < 2:
        raise InputError(f"{name} must be Nx2 (x, y) with N >= 2, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(f"{name} holds NaN or infinite values")
    return a
