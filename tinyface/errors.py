"""The exceptions tinyface raises.

Every failure a user can cause (a bad file, a bad image, an unsupported graph,
a wrong input) is a :class:`TinyfaceError` with a one-line message that names
the problem: the file, the node, the op or the shape.  The command line turns
these into a message on stderr and a non-zero exit code.
"""


class TinyfaceError(Exception):
    """Base class of every error tinyface raises on purpose."""


class ModelError(TinyfaceError):
    """A model file cannot be read: missing, empty, truncated, not ONNX, or unsafe."""


class UnsupportedOpError(ModelError):
    """The graph uses an operator (or an attribute of one) that tinyface cannot run."""


class InputError(TinyfaceError):
    """An input tensor has the wrong rank, shape or dtype, or holds NaN/inf."""


class ImageError(TinyfaceError):
    """An image cannot be read or converted to RGB."""


class NoFaceError(TinyfaceError):
    """A photo in which the detector found no face."""


class PairsError(TinyfaceError):
    """A list of labelled face pairs that cannot be read or is not in its format."""
