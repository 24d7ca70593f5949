"""Size limits: the largest tensor, run and image tinyface agrees to allocate.

A model file or an image header can claim any size (a weight of 2^40
elements, pads of a billion pixels, a PNG of 100000 x 100000) in a few bytes.
Every size such a file implies is compared with a limit *before* anything of
that size is allocated, and a size over its limit is refused with the error
of the thing that implied it (a ``ModelError`` naming the node or tensor, an
``InputError`` naming the step, an ``ImageError`` naming the file).

``MAX_TENSOR_ELEMENTS``
    Elements in any one tensor: a constant of the model (initialiser,
    ``Constant`` node, or one folded at load time), a declared input, or a
    value a step computes.  Checked at load time for one image (the batch
    left out) wherever the shapes are known then, and at run time for the
    images run at once.  Default 2^28 (1 GiB as float32).
``MAX_RUN_BYTES``
    Bytes of the float32 values one run keeps alive at its largest moment
    (the images run at once together, see ``Model.run``), plus the outputs
    for the whole batch.  Checked before a run binds its buffers.  Default
    2^31 (2 GiB).
``MAX_IMAGE_PIXELS``
    Width x height of an image to decode, from its header, before decoding
    (files and PIL images; a NumPy array already exists), and of a model's
    input size as its metadata states it.  Default 2^26 (about 67 Mpx,
    8192 x 8192).

Each is set by the environment variable of its name with a ``TINYFACE_``
prefix (e.g. ``TINYFACE_MAX_IMAGE_PIXELS=200000000``), read at every check,
or by :func:`set_limits`, which takes precedence.  See docs/limits.md.
"""
import os

from tinyface.errors import TinyfaceError

DEFAULTS = {
    "MAX_TENSOR_ELEMENTS": 2**28,
    "MAX_RUN_BYTES": 2**31,
    "MAX_IMAGE_PIXELS": 2**26,
}

_overrides = {}


def set_limits(**values):
    """Set limits by name, e.g. ``set_limits(MAX_IMAGE_PIXELS=10**8)``; ``None``
    goes back to the environment variable or the default."""
    for name, value in values.items():
        if name not in DEFAULTS:
            raise TinyfaceError(f"unknown limit {name!r}; the limits are {', '.join(DEFAULTS)}")
        if value is None:
            _overrides.pop(name, None)
        else:
            _overrides[name] = positive_int(value, name)


def get_limit(name):
    """The limit in force: set by ``set_limits``, else ``TINYFACE_<name>``, else the default."""
    if name in _overrides:
        return _overrides[name]
    text = os.environ.get(f"TINYFACE_{name}")
    return DEFAULTS[name] if text is None else positive_int(text, f"TINYFACE_{name}")


def current_limits():
    """Every limit in force, in the order of ``DEFAULTS`` (to tell when one changes)."""
    return tuple(get_limit(name) for name in DEFAULTS)


def check_limit(name, amount, error, what):
    """Raise ``error`` (a TinyfaceError class) when ``amount`` exceeds the limit ``name``.

    ``what`` starts the message, e.g. "model.onnx: Conv node 'c1' output (N, 8, 2^40, 1)".
    """
    limit = get_limit(name)
    if amount > limit:
        unit = "bytes" if name.endswith("BYTES") else "pixels" if name.endswith("PIXELS") else "elements"
        raise error(f"{what} needs {amount:,} {unit}, more than {name} = {limit:,} "
                    f"(set TINYFACE_{name} to allow more)")


def positive_int(value, name):
    """``value`` (an int or its text) as a positive int, else a TinyfaceError naming ``name``."""
    try:
        number = int(value)
        ok = number > 0 and (not isinstance(value, float) or number == value) and not isinstance(value, bool)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise TinyfaceError(f"{name} must be a positive integer, got {value!r}")
    return number
