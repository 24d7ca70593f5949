"""tinyface: a small inference engine for face-embedding CNNs, on NumPy and Numba.

    import tinyface
    model = tinyface.load()                       # the bundled MobileFaceNet
    emb = model.embed(["a.jpg", "b.jpg"])         # N x 128 float32
    tinyface.cosine_similarity(emb[0], emb[1])
    gallery = tinyface.Gallery("people.db")       # 1:N search, see tinyface.gallery

Every name here is imported when it is first used (PEP 562), so ``import
tinyface`` costs a few milliseconds and ``tinyface.errors`` loads neither
Numba nor Pillow.  Numba's cache folder (``TINYFACE_CACHE_DIR``) is set when
the first kernel module is imported (``tinyface.kernels``), the thread count
(``TINYFACE_NUM_THREADS``) when ``tinyface.runtime.threads`` is.
"""
import importlib

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS = {
    "load": ("tinyface.face.model", "FaceModel.load"),
    "FaceModel": ("tinyface.face.model", "FaceModel"),
    "Model": ("tinyface.runtime.model", "Model"),
    "InferenceSession": ("tinyface.runtime.session", "InferenceSession"),
    "set_num_threads": ("tinyface.runtime.threads", "set_num_threads"),
    "get_num_threads": ("tinyface.runtime.threads", "get_num_threads"),
    "set_buffer_cache": ("tinyface.runtime.memory", "set_buffer_cache"),
    "cosine_similarity": ("tinyface.verify", "cosine_similarity"),
    "FacePipeline": ("tinyface.face.pipeline", "FacePipeline"),
    "detect": ("tinyface.face.pipeline", "detect"),
    "align": ("tinyface.face.pipeline", "align"),
    "Gallery": ("tinyface.gallery.store", "Gallery"),
    "set_limits": ("tinyface.limits", "set_limits"),
    "get_limit": ("tinyface.limits", "get_limit"),
    **{name: ("tinyface.errors", name) for name in (
        "TinyfaceError", "ModelError", "UnsupportedOpError", "InputError", "ImageError", "NoFaceError",
        "GalleryError")},
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    """A public name, imported now and kept; or a submodule (``tinyface.paths``)."""
    if name.startswith("_"):
        raise AttributeError(f"module 'tinyface' has no attribute {name!r}")
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = importlib.import_module(module)
        for part in attribute.split("."):
            value = getattr(value, part)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'tinyface' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
