"""tinyface: a small inference engine for face-embedding CNNs, on NumPy and Numba.

    import tinyface
    model = tinyface.load()                       # the bundled MobileFaceNet
    emb = model.embed(["a.jpg", "b.jpg"])         # N x 128 float32
    tinyface.cosine_similarity(emb[0], emb[1])
"""
from tinyface.errors import (TinyfaceError, ModelError, UnsupportedOpError,
                             InputError, ImageError, NoFaceError)
from tinyface.runtime.model import Model, load_model as load
from tinyface.runtime.session import InferenceSession
from tinyface.runtime.threads import set_num_threads, get_num_threads, apply_environment
from tinyface.verify import cosine_similarity
from tinyface.face.pipeline import FacePipeline, detect, align
from tinyface.limits import set_limits, get_limit

__version__ = "0.1.0"
__all__ = ["load", "Model", "InferenceSession", "set_num_threads", "get_num_threads",
           "cosine_similarity", "TinyfaceError", "ModelError", "UnsupportedOpError",
           "InputError", "ImageError", "NoFaceError", "FacePipeline", "detect", "align",
           "set_limits", "get_limit"]

apply_environment()
