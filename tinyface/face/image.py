"""Reading, resizing and writing RGB images.

Every image inside tinyface is a NumPy array of ``uint8``, shape ``H×W×3``,
C-contiguous, channels in RGB order.  :func:`load_rgb` turns whatever the user
hands over (a path, a PIL image or an array) into that layout, or raises an
:class:`~tinyface.errors.ImageError` with a one-line message naming the file
and the problem.

Conversions, for PIL modes other than RGB:

* ``1``, ``L``, ``LA``, ``La``: grey replicated into R, G and B (``La``, alpha
  premultiplied, is divided by its alpha first, as PIL's conversion to ``LA`` does).
* ``RGBA``, ``LA``, ``PA`` and ``P`` with a transparent colour: the alpha
  channel is **dropped** (the stored colour is kept, not composited onto a
  background), as OpenCV's ``imread`` does.
* ``P``: palette looked up.  ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: PIL's
  ``convert("RGB")`` (no colour management).
* ``I;16``, ``I;16B``, ``I;16L`` and ``I`` (16/32-bit integer grey): samples are
  taken to be 16-bit, clipped to 0..65535 and scaled by 255/65535 with rounding
  (so ``257·k`` becomes ``k``).  PIL's own ``convert`` clips at 255 instead.
* ``F`` (32-bit float grey): taken to be on PIL's 0..255 scale, as PIL's
  ``convert("L")`` assumes; values are rounded and clipped, NaN becomes 0.

EXIF orientation is applied (:func:`PIL.ImageOps.exif_transpose`), and only
the first frame of an animated or multi-page file is read.

An image of more than ``MAX_IMAGE_PIXELS`` pixels (:mod:`tinyface.limits`) by
its header is refused before it is decoded.  Pillow's own limit on files,
``PIL.Image.MAX_IMAGE_PIXELS`` (about 89 Mpx), applies too: to read larger
files, raise both.  A PNG file whose pixel data ends early is refused
(:mod:`tinyface.face.png`: Pillow would zero the missing rows).  Pillow's other warnings about a file (corrupt EXIF data,
odd TIFF tags) are not passed on, nor what libtiff prints to stderr about a
corrupt TIFF: the image is either read or refused with an ``ImageError``.
"""
import contextlib
import os
import sys
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps

from tinyface.errors import ImageError
from tinyface.face.png import check_png_data
from tinyface.limits import check_limit

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def load_rgb(source) -> np.ndarray:
    """Return ``source`` as a new ``uint8`` H×W×3 C-contiguous RGB array.

    ``source`` is a path (``str`` or :class:`os.PathLike`), a
    :class:`PIL.Image.Image`, or a ``uint8`` array of shape H×W×3 (RGB),
    H×W (grey) or H×W×4 (RGBA, alpha dropped).  Raises :class:`ImageError`.
    """
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source)
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source, "<PIL image>")
    if isinstance(source, (str, os.PathLike)):
        return _read_file(os.fspath(source))
    raise ImageError(f"cannot read an image from type {type(source).__name__}: "
                     "expected a path, a PIL image or a uint8 numpy array")


def resize_rgb(image, size_hw) -> np.ndarray:
    """Resize to ``size_hw = (height, width)`` with PIL's bilinear filter.

    ``image`` is anything :func:`load_rgb` accepts.  PIL treats pixels as unit
    squares (pixel centres at half-integers of the edge grid) and, when
    shrinking, widens the triangle filter by the scale factor, so downscaling
    is anti-aliased.  Returns ``uint8`` H×W×3.
    """
    height, width = check_size_hw(size_hw)
    rgb = load_rgb(image)
    if rgb.shape[:2] == (height, width):
        return rgb
    resized = Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR)
    return np.array(resized, dtype=np.uint8, order="C")


def save_rgb(image, path) -> None:
    """Write ``image`` (anything :func:`load_rgb` accepts) to ``path``.

    The format follows the file extension (``.png``, ``.jpg``, ...); JPEG is
    written at quality 95.  Raises :class:`ImageError` if it cannot be written.
    """
    rgb = load_rgb(image)
    path = os.fspath(path)
    options = {"quality": 95} if path.lower().endswith((".jpg", ".jpeg")) else {}
    try:
        Image.fromarray(rgb).save(path, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageError(f"cannot write image '{path}': {_one_line(exc)}") from exc


def check_size_hw(size_hw) -> tuple[int, int]:
    """Validate an output size ``(height, width)`` of positive integers."""
    try:
        height, width = (int(v) for v in size_hw)
        ok = (height, width) == tuple(size_hw) and height > 0 and width > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ImageError(f"size must be (height, width) of positive integers, got {size_hw!r}")
    return height, width


def _read_file(path: str) -> np.ndarray:
    """Open, fully decode and convert one image file."""
    if not os.path.exists(path):
        raise ImageError(f"cannot read image '{path}': no such file")
    if os.path.isdir(path):
        raise ImageError(f"cannot read image '{path}': is a directory")
    if os.path.getsize(path) == 0:
        raise ImageError(f"cannot read image '{path}': empty file")
    try:
        with warnings.catch_warnings(), _quiet_if_tiff(path):
            warnings.simplefilter("ignore")
            # Between PIL.Image.MAX_IMAGE_PIXELS and twice that, PIL only warns: refuse.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open(path, "rb") as f, Image.open(f) as im:
                rgb = _pil_to_rgb(im, path, owned=True)
                if im.format == "PNG":
                    check_png_data(f, path)
                return rgb
    except ImageError:
        raise
    except Exception as exc:
        raise _read_error(path, exc) from exc


_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
_stderr_lock = threading.Lock()
_quiet = {"depth": 0, "saved": None}


@contextlib.contextmanager
def _quiet_if_tiff(path):
    """While a TIFF file is read, send file descriptor 2 to /dev/null.

    libtiff prints its complaints about a corrupt file ("TIFFFetchNormalTag:
    Incorrect count for ...") straight to the process's stderr, and Pillow's TIFF
    reader logs some ("More samples per pixel than can be decoded"), which
    logging's last-resort handler writes to stderr too; the command line allows one
    line per error, and Pillow raises an exception for the same problem, which
    becomes the ImageError.  Threads reading TIFFs at once share the redirection (a
    count under a lock), so the last one out restores stderr.
    """
    with open(path, "rb") as f:
        tiff = f.read(4) in _TIFF_MAGIC
    if not tiff:
        yield
        return
    with _stderr_lock:
        if _quiet["depth"] == 0:
            sys.stderr.flush()
            _quiet["saved"] = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0:
                os.dup2(_quiet["saved"], 2)
                os.close(_quiet["saved"])


def _pil_to_rgb(im: Image.Image, name: str, owned=False) -> np.ndarray:
    """Decode a PIL image (``name`` is for messages) and convert it to RGB.

    An image tinyface ``owned`` (opened from a file) is turned upright in place
    rather than copied: a photo's decoded pixels are the largest array here.
    """
    check_limit("MAX_IMAGE_PIXELS", im.width * im.height, ImageError,
                f"cannot read image '{name}': {im.width}x{im.height}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # about the file: it is read or refused
        try:
            im.load()  # decode the pixels now, so that bad data fails here
            if owned:
                ImageOps.exif_transpose(im, in_place=True)
            else:
                im = ImageOps.exif_transpose(im)
        except Exception as exc:  # PIL's decoders raise many types on bad data
            raise _read_error(name, exc) from exc
        if im.width == 0 or im.height == 0:
            raise ImageError(f"cannot read image '{name}': zero-size image "
                             f"({im.width}x{im.height})")
        return _convert(im, name)


def _read_error(name: str, exc: Exception) -> ImageError:
    """The one-line ImageError for an exception raised by PIL."""
    if isinstance(exc, Image.UnidentifiedImageError):
        reason = "not an image (unknown or unsupported format)"
    elif isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        reason = f"too many pixels, possible decompression bomb ({_one_line(exc)})"
    elif isinstance(exc, MemoryError):
        reason = "too large to decode (out of memory)"
    elif isinstance(exc, OSError) and exc.strerror:  # from the OS: permission, I/O
        reason = exc.strerror
    else:
        reason = f"truncated or corrupt image data ({_one_line(exc)})"
    return ImageError(f"cannot read image '{name}': {reason}")


def _convert(im: Image.Image, name: str) -> np.ndarray:
    """PIL image of any mode -> uint8 H×W×3 RGB (see the module docstring)."""
    if im.mode in _SIXTEEN_BIT_MODES:        # int32 holds 65535 * 255 + 32767
        v = np.clip(np.asarray(im), 0, 65535).astype(np.int32)
        return _grey_to_rgb(((v * 255 + 32767) // 65535).astype(np.uint8))
    if im.mode == "F":
        v = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0)
        return _grey_to_rgb(np.clip(np.rint(v), 0, 255).astype(np.uint8))
    if im.mode == "La":
        im = im.convert("LA")    # PIL converts premultiplied grey to RGB only through LA
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")  # PIL's P->RGB warns about palette transparency
    try:
        im = im if im.mode == "RGB" else im.convert("RGB")
    except ValueError as exc:
        raise ImageError(f"cannot read image '{name}': cannot convert "
                         f"mode {im.mode} to RGB") from exc
    return np.array(im, dtype=np.uint8, order="C")


def _array_to_rgb(a: np.ndarray) -> np.ndarray:
    """uint8 H×W, H×W×3 or H×W×4 array -> new uint8 H×W×3 array."""
    ok_shape = a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))
    if a.dtype != np.uint8 or not ok_shape:
        raise ImageError(f"image array must be uint8 of shape HxW, HxWx3 or HxWx4; "
                         f"got shape {a.shape} and dtype {a.dtype}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"image array is empty: shape {a.shape}")
    if a.ndim == 2:
        return _grey_to_rgb(a)
    return np.array(a[:, :, :3], dtype=np.uint8, order="C")


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
