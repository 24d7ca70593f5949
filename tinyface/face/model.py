"""A face-embedding model: the engine's ``Model`` and what faces need.

:class:`FaceModel` runs like any :class:`~tinyface.runtime.model.Model` and
also knows its :class:`~tinyface.face.metadata.ModelInfo` (input size,
normalisation, embedding size, calibrated threshold), so it turns aligned
faces into embeddings (``embed``) and raw photos too (``embed_photo``,
through :class:`~tinyface.face.pipeline.FacePipeline`).  ``tinyface.load``
is :meth:`FaceModel.load`.
"""
import warnings
from pathlib import Path

import numpy as np

from tinyface.errors import InputError, ModelError, TinyfaceError
from tinyface.face.metadata import read_info
from tinyface.paths import BUNDLED_MODELS, default_model_path
from tinyface.runtime.model import RUN_CHUNK, Model


class FaceModel(Model):
    """A model whose output is a face embedding; ``info`` is what its metadata says."""

    def __init__(self, graph, plan, path=None, chunk=RUN_CHUNK):
        super().__init__(graph, plan, path, chunk)
        self.info = read_info(graph, path)

    @classmethod
    def load(cls, source=None, precision="fp32"):
        """Load an ONNX model from a path, serialized bytes or an ``onnx.ModelProto``
        (default: the bundled MobileFaceNet; ``precision="int8"``: its 8-bit form, see
        docs/int8.md).  A quantised model of your own loads from its file like any other."""
        if precision not in BUNDLED_MODELS:
            raise InputError(f"precision must be one of {', '.join(map(repr, BUNDLED_MODELS))}, got {precision!r}")
        if source is not None and precision != "fp32":
            raise InputError("precision chooses among the bundled models; load a quantised model of your "
                             "own by its path, without precision")
        if source is None:
            source = default_model_path(precision)
            if not source.is_file():
                raise ModelError(f"the bundled model is not at {source}: reinstall tinyface (its wheel and "
                                 f"sdist carry the weights) or set TINYFACE_WEIGHTS to a folder that holds it")
        return super().load(source)

    def preprocess(self, faces):
        """Aligned faces (paths, PIL images, uint8 arrays) -> normalised NCHW float32."""
        from tinyface.face.image import load_rgb, resize_rgb
        if self.info.input_size is None:
            raise TinyfaceError(f"{self.graph.source}: the model's input size is unknown "
                                f"(no metadata and no fixed input shape)")
        if isinstance(faces, (str, Path, np.ndarray)) and not (isinstance(faces, np.ndarray) and faces.ndim == 4):
            faces = [faces]
        h, w = self.info.input_size
        batch = []
        for face in faces:
            img = load_rgb(face)
            if img.shape[:2] != (h, w):
                name = face if isinstance(face, (str, Path)) else "image"
                warnings.warn(f"{name}: {img.shape[1]}x{img.shape[0]} is not the model's input size "
                              f"{w}x{h}; resized (pass aligned {w}x{h} faces for faithful embeddings)",
                              stacklevel=3)
                img = resize_rgb(img, (h, w))
            batch.append(img)
        if not batch:
            raise InputError("no faces given")
        return self.info.normalise(np.stack(batch))

    def embed(self, faces, flip=False):
        """Embeddings (float32 N x D) of aligned faces; ``flip`` averages with the mirror image."""
        x = self.preprocess(faces)
        out = self.embed_tensor(x)
        if flip:
            out = (out + self.embed_tensor(np.ascontiguousarray(x[..., ::-1]))) / 2
        return out

    def embed_tensor(self, x):
        """Embeddings (float32 N x D) of a normalised NCHW batch (``run`` chunks it)."""
        return self.run(x)[0].reshape(len(x), -1).astype(np.float32)

    def embed_photo(self, image, all_faces=False, flip=False, aligned_fallback=False, name=None,
                    **detector_options):
        """:meth:`FacePipeline.embed_photo <tinyface.face.pipeline.FacePipeline.embed_photo>`
        with a pipeline around this model: the embedding of the largest face in a raw
        photo, or of every face.  ``detector_options``: those of ``FacePipeline``."""
        from tinyface.face.pipeline import FacePipeline
        return FacePipeline(self, **detector_options).embed_photo(image, all_faces, flip, aligned_fallback, name)
