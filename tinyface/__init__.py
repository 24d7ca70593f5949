"""tinyface: a small inference engine for face-embedding CNNs, on NumPy and Numba.

    import tinyface
    model = tinyface.load()                       # the bundled MobileFaceNet
    emb = model.embed(["a.jpg", "b.jpg"])         # N x 128 float32
    tinyface.cosine_similarity(emb[0], emb[1])
    gallery = tinyface.Gallery("people.db")       # 1:N search, see tinyface.gallery
"""
from tinyface import jit_cache

jit_cache.apply_environment()        # TINYFACE_CACHE_DIR: before anything imports Numba

from tinyface.errors import (TinyfaceError, ModelError, UnsupportedOpError,
                             InputError, ImageError, NoFaceError, GalleryError)
from tinyface.runtime.model import Model, load_model as load
from tinyface.runtime.session import InferenceSession
from tinyface.runtime.threads import set_num_threads, get_num_threads, apply_environment
from tinyface.verify import cosine_similarity
from tinyface.face.pipeline import FacePipeline, detect, align
from tinyface.gallery.store import Gallery
from tinyface.limits import set_limits, get_limit

__version__ = "0.1.0"
__all__ = ["load", "Model", "InferenceSession", "set_num_threads", "get_num_threads",
           "cosine_similarity", "TinyfaceError", "ModelError", "UnsupportedOpError",
           "InputError", "ImageError", "NoFaceError", "GalleryError", "FacePipeline", "detect",
           "align", "Gallery", "set_limits", "get_limit"]

apply_environment()
