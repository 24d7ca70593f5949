"""Face detection with MTCNN: faces with boxes, scores and five landmarks.

    faces = detect_faces(image)            # uint8 H×W×3 RGB -> list[Face]
    draw_faces(image, faces).save("faces.png")

Coordinates are (x, y) pixels, x to the right along a row, y down the rows,
and (x, y) is the *centre* of pixel ``image[y, x]`` (the convention of
:mod:`tinyface.face.alignment`).  ``Face.box`` = (x1, y1, x2, y2) are the centres
of its first and last pixel columns/rows (inclusive), i.e. the reference
implementation's 1-based box minus 1; it spans ``image[y1:y2+1, x1:x2+1]``
when rounded.  ``Face.landmarks`` is 5×2 (x, y): left eye, right eye, nose
tip, left mouth corner, right mouth corner, "left" as seen in the image.

Large photos are searched as if shrunk (``max_side``, default
:data:`MAX_SIDE`): in a photo whose longer side L exceeds ``max_side``, only
faces that a copy shrunk to ``max_side`` would show at ``min_face_size``
pixels or more are looked for, i.e. faces of at least about
``min_face_size · L / max_side`` pixels.  The cascade drops the pyramid
levels that look for smaller faces and works on the photo itself for the
rest (levels and crops resampled from it), so boxes and landmarks are at full
resolution and are those a full-resolution search finds for these faces.
``max_side=None`` looks for faces down to ``min_face_size`` at any size.
Measurements and the choice of the default: ``docs/detection.md``.

The nets are pluggable: anything with attributes ``pnet``, ``rnet``, ``onet``,
each a callable ``f(x) -> {output name: array}`` on a normalised float32
N×3×H×W batch (see ``weights/mtcnn/README.md``).  :func:`default_nets` runs
the bundled ONNX files on tinyface's own engine.
"""
import functools
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tinyface.errors import ImageError, TinyfaceError
from tinyface.face.mtcnn import NMS_THRESHOLDS, run_cascade

#: Default ``max_side``: photos are searched on a copy at most this many pixels on its longer side.
MAX_SIDE = 640


Net = Callable[[np.ndarray], dict]


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face; pixel coordinates as in the module docstring."""
    box: tuple[float, float, float, float]     # (x1, y1, x2, y2), inclusive
    score: float                               # O-Net face probability
    landmarks: np.ndarray                      # 5×2 (x, y) float64

    @property
    def area(self) -> float:
        """(x2 − x1 + 1)·(y2 − y1 + 1), in pixels."""
        x1, y1, x2, y2 = self.box
        return (x2 - x1 + 1) * (y2 - y1 + 1)


@dataclass(frozen=True)
class Nets:
    """The three MTCNN stages as callables ``x -> {output name: array}``."""
    pnet: Net
    rnet: Net
    onet: Net


def onnx_nets(weights_dir, load_model) -> Nets:
    """Build :class:`Nets` from ``{pnet,rnet,onet}.onnx`` in ``weights_dir``.

    ``load_model(path)`` returns a model with ``run(x) -> list[array]``
    (outputs in graph order) and ``output_names``, as
    :meth:`tinyface.runtime.model.Model.load` does.
    """
    def named_outputs(model) -> Net:
        return lambda x: dict(zip(model.output_names, model.run(x)))
    weights_dir = Path(weights_dir)
    return Nets(*(named_outputs(load_model(weights_dir / f"{name}.onnx"))
                  for name in ("pnet", "rnet", "onet")))


@functools.lru_cache(maxsize=1)
def default_nets() -> Nets:
    """The bundled MTCNN nets on tinyface's engine (loaded once, then cached)."""
    from tinyface.paths import weights_dir
    from tinyface.runtime.model import Model
    return onnx_nets(weights_dir() / "mtcnn", Model.load)


def detect_faces(image, nets=None, min_face_size: float = 20,
                 scale_factor: float = 0.709, thresholds=(0.6, 0.7, 0.7),
                 nms_thresholds=NMS_THRESHOLDS, max_side=MAX_SIDE) -> list[Face]:
    """Find the faces in an RGB image, largest box first.

    ``image``: uint8 H×W×3 RGB array (anything else goes through
    :func:`tinyface.face.image.load_rgb`).  ``min_face_size`` ≥ 12 px: the
    smallest face searched for (P-Net sees 12×12 windows; smaller faces
    would need the image enlarged).  ``scale_factor`` in (0, 1): ratio of
    successive pyramid levels.  ``thresholds``: face probability to pass
    P-Net (≥), R-Net (>), O-Net (>).  ``nms_thresholds``: overlaps above
    which a weaker box is dropped, for P-Net within a level, P-Net across
    levels, R-Net, O-Net (the last one over the smaller box's area).
    ``max_side``: an integer ≥ 12, or None; in a photo whose longer side
    is above it, faces are looked for as in a copy shrunk to that side,
    ``min_face_size`` counting the copy's pixels (see the module docstring).
    Images too small for one 12-px window give ``[]``.
    """
    image = _rgb(image)
    _check_parameters(min_face_size, scale_factor, thresholds, nms_thresholds, max_side)
    nets = default_nets() if nets is None else nets
    boxes, scores, points = run_cascade(image, nets, min_face_size, scale_factor,
                                        tuple(thresholds), tuple(nms_thresholds), max_side)
    faces = [Face(tuple(float(v) for v in box - 1.0), float(score), lm.copy())
             for box, score, lm in zip(boxes, scores, points)]
    return sorted(faces, key=lambda f: -f.area)


def draw_faces(image, faces, color=(255, 40, 40), landmark_color=(40, 255, 40)) -> Image.Image:
    """A copy of ``image`` (array or PIL) with each face's box, score and landmarks."""
    canvas = (image.copy() if isinstance(image, Image.Image)
              else Image.fromarray(_rgb(image))).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(1, round(min(canvas.size) / 250))
    font = ImageFont.load_default()
    for face in faces:
        x1, y1, x2, y2 = face.box
        draw.rectangle((x1, y1, x2, y2), outline=color, width=line)
        draw.text((x1, max(0.0, y1 - 12 - line)), f"{face.score:.3f}", fill=color, font=font)
        radius = max(1.5, 0.02 * (x2 - x1))
        for x, y in face.landmarks:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=landmark_color)
    return canvas


def _rgb(image) -> np.ndarray:
    """``image`` as uint8 H×W×3, via load_rgb for anything but such an array."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 \
            and image.ndim == 3 and image.shape[2] == 3:
        return image
    try:
        from tinyface.face.image import load_rgb
    except ImportError:
        raise ImageError("expected a uint8 H×W×3 RGB array, got "
                         + (f"{image.dtype} array of shape {image.shape}"
                            if isinstance(image, np.ndarray) else type(image).__name__)) from None
    return load_rgb(image)


def _check_parameters(min_face_size, scale_factor, thresholds, nms_thresholds, max_side) -> None:
    def real(v) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v)

    if not real(min_face_size) or min_face_size < 12:
        raise TinyfaceError(f"min_face_size must be a number >= 12 (pixels), got {min_face_size!r}")
    if not real(scale_factor) or not 0 < scale_factor < 1:
        raise TinyfaceError(f"scale_factor must be a number in (0, 1), got {scale_factor!r}")
    for name, values, count in (("thresholds", thresholds, 3),
                                ("nms_thresholds", nms_thresholds, 4)):
        try:
            values = tuple(values)
        except TypeError:
            values = (values,)
        if len(values) != count or not all(real(v) and 0 <= v <= 1 for v in values):
            raise TinyfaceError(f"{name} must be {count} numbers in [0, 1], got {values!r}")
    if max_side is not None and (not isinstance(max_side, numbers.Integral)
                                 or isinstance(max_side, bool) or max_side < 12):
        raise TinyfaceError(f"max_side must be None or an integer >= 12 (pixels), got {max_side!r}")
