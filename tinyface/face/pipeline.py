"""From raw photos to embeddings: detect, align, embed.

    pipeline = FacePipeline()                          # bundled MobileFaceNet + MTCNN
    emb = pipeline.embed_photo("photo.jpg")            # D floats, the largest face
    for face, e in pipeline.embed_photo("group.jpg", all_faces=True):
        print(face.box, face.score, e[:4])

Each photo goes through :func:`~tinyface.face.detection.detect_faces` (MTCNN,
faces largest first), :func:`~tinyface.face.alignment.align` (the five landmarks
onto the template of the model's input size, e.g. the ArcFace 112×112 one)
and :meth:`~tinyface.face.model.FaceModel.embed`.

* No face in a photo: :class:`~tinyface.errors.NoFaceError` naming the photo.
* Several faces when one is wanted: the largest (by box area) is used and a
  :func:`warnings.warn` note says how many were found.
* ``aligned_fallback=True``: a photo of *exactly* the model's input size in
  which no face is found is taken to be an already-aligned crop (with a
  warning) instead of raising.  Aligned crops usually are detected (and are
  then re-aligned, a near no-op), but a tight crop can defeat the detector.

Also here: :func:`detect` and :func:`align`, the public one-call versions
exported as ``tinyface.detect`` and ``tinyface.align``.
"""
import os
import warnings
from typing import NamedTuple, Optional

import numpy as np
from PIL import Image

from tinyface.errors import NoFaceError, TinyfaceError
from tinyface.face import alignment
from tinyface.face.detection import MAX_SIDE, Face, _check_parameters, detect_faces
from tinyface.face.image import load_rgb
from tinyface.face.mtcnn import NMS_THRESHOLDS


class AlignedFace(NamedTuple):
    """A detected face and its aligned crop (uint8 H×W×3)."""
    face: Optional[Face]          # None when the photo was taken as already aligned
    crop: np.ndarray


class FaceEmbedding(NamedTuple):
    """A detected face and the embedding (float32, D) of its aligned crop."""
    face: Optional[Face]          # None when the photo was taken as already aligned
    embedding: np.ndarray


def detect(image, **options) -> list[Face]:
    """The faces in ``image``, largest first (MTCNN on tinyface's engine).

    ``image`` is a path, a PIL image or a uint8 array (H×W×3 RGB, H×W grey,
    H×W×4 RGBA).  ``options`` are those of
    :func:`~tinyface.face.detection.detect_faces`: ``min_face_size`` (20),
    ``scale_factor`` (0.709), ``thresholds``, ``nms_thresholds``,
    ``max_side`` (640: larger photos are searched on a copy of that size,
    None: at full resolution), ``nets``.
    An image without faces gives ``[]``.
    """
    return detect_faces(image, **options)


def align(image, landmarks, size=(112, 112)) -> np.ndarray:
    """The aligned crop (uint8 ``size`` + (3,)) of the face with these landmarks.

    ``landmarks``: 5×2 (x, y) pixels (left eye, right eye, nose, left and
    right mouth corners), or a :class:`~tinyface.face.detection.Face`.
    ``size`` = (height, width): (112, 112) ArcFace, (112, 96) SphereFace,
    (96, 96), or any square size (see :func:`~tinyface.face.alignment.template_for`).
    """
    if isinstance(landmarks, Face):
        landmarks = landmarks.landmarks
    return alignment.align(image, landmarks, size)


def photo_name(image, name=None) -> str:
    """How messages name a photo: ``name``, else its path, else a description."""
    if name is not None:
        return str(name)
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if isinstance(image, Image.Image):
        return getattr(image, "filename", "") or f"PIL image {image.width}x{image.height}"
    if isinstance(image, np.ndarray) and image.ndim >= 2:
        return f"image array {image.shape[1]}x{image.shape[0]}"
    return "image"


class FacePipeline:
    """Detection → alignment → embedding, for one photo or many.

    ``model``: a loaded :class:`~tinyface.face.model.FaceModel` (default: the
    bundled MobileFaceNet, loaded now).  Crops are aligned to the model's
    input size with the matching template.  The detector options are those
    of :func:`~tinyface.face.detection.detect_faces` (``nets`` default: the
    bundled MTCNN on tinyface's engine); they are checked here, once.
    """

    def __init__(self, model=None, *, nets=None, min_face_size: float = 20,
                 scale_factor: float = 0.709, thresholds=(0.6, 0.7, 0.7),
                 nms_thresholds=NMS_THRESHOLDS, max_side=MAX_SIDE):
        if model is None:
            from tinyface.face.model import FaceModel
            model = FaceModel.load()
        size = getattr(getattr(model, "info", None), "input_size", None)
        if size is None:
            raise TinyfaceError("the model's input size is unknown (no metadata and no fixed "
                                "input shape): cannot choose an alignment template")
        _check_parameters(min_face_size, scale_factor, thresholds, nms_thresholds, max_side)
        self.model = model
        self.size = tuple(int(v) for v in size)
        alignment.template_for(self.size)       # fail now if no template fits the model
        self.detector_options = dict(nets=nets, min_face_size=min_face_size,
                                     scale_factor=scale_factor, thresholds=tuple(thresholds),
                                     nms_thresholds=tuple(nms_thresholds), max_side=max_side)

    # ------------------------------------------------------------ steps

    def detect(self, image) -> list[Face]:
        """The faces in ``image`` (path, PIL image or array), largest first."""
        return detect_faces(image, **self.detector_options)

    def align(self, image, face) -> np.ndarray:
        """The crop of ``face`` (a Face or 5×2 landmarks) at the model's input size."""
        return align(image, face, self.size)

    def aligned_faces(self, image, all_faces=False, aligned_fallback=False,
                      name=None) -> list[AlignedFace]:
        """Detect and align: one :class:`AlignedFace` (the largest face), or all of them.

        Raises :class:`NoFaceError` naming the photo (``name``, else its path)
        if no face is found, unless ``aligned_fallback`` and the image is
        exactly the model's input size: then it is taken as aligned (warning;
        ``face`` is None).  Several faces with ``all_faces=False``: the
        largest, and a warning saying how many were found.
        """
        label = photo_name(image, name)
        rgb = load_rgb(image)
        faces = self.detect(rgb)
        if not faces:
            if aligned_fallback and rgb.shape[:2] == self.size:
                h, w = self.size
                warnings.warn(f"{label}: no face detected in this {w}x{h} image (the model's "
                              f"input size); treating it as an already-aligned face",
                              stacklevel=2)
                return [AlignedFace(None, rgb)]
            h, w = rgb.shape[:2]
            raise NoFaceError(f"no face found in '{label}' ({w}x{h} pixels)")
        if len(faces) > 1 and not all_faces:
            warnings.warn(f"{label}: {len(faces)} faces found; using the largest "
                          f"(box {_box_text(faces[0].box)}, score {faces[0].score:.3f})",
                          stacklevel=2)
        chosen = faces if all_faces else faces[:1]
        return [AlignedFace(f, self.align(rgb, f)) for f in chosen]

    # ------------------------------------------------------------ embeddings

    def embed_photo(self, image, all_faces=False, flip=False, aligned_fallback=False,
                    name=None):
        """The embedding of the largest face in a photo, or of every face.

        ``all_faces=False``: float32 array of shape (D,) (warning if several
        faces were found).  ``all_faces=True``: list of :class:`FaceEmbedding`
        ``(face, embedding)``, largest face first.  ``flip`` averages each
        embedding with the mirrored crop's.  Raises :class:`NoFaceError` if
        there is no face (see :meth:`aligned_faces` for ``aligned_fallback``).
        """
        aligned = self.aligned_faces(image, all_faces, aligned_fallback, name)
        emb = self.model.embed([a.crop for a in aligned], flip=flip)
        if not all_faces:
            return emb[0]
        return [FaceEmbedding(a.face, e) for a, e in zip(aligned, emb)]

    def embed_photos(self, images, flip=False, aligned_fallback=False, names=None) -> np.ndarray:
        """Embeddings (float32 N×D) of the largest face in each of N photos.

        One warning per photo with several faces; :class:`NoFaceError` names
        the first photo without one.  The crops are embedded in one batch.
        """
        if isinstance(images, (str, os.PathLike, np.ndarray, Image.Image)):
            images = [images]
        images = list(images)
        names = [None] * len(images) if names is None else list(names)
        if len(names) != len(images):
            raise TinyfaceError(f"{len(images)} photos but {len(names)} names")
        if not images:
            raise TinyfaceError("no photos given")
        crops = [self.aligned_faces(image, False, aligned_fallback, name)[0].crop
                 for image, name in zip(images, names)]
        return self.model.embed(crops, flip=flip)


def _box_text(box) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in box) + ")"
