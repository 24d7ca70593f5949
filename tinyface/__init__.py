"""tinyface: a small inference engine for face-embedding CNNs, on NumPy and Numba."""
from tinyface.errors import (TinyfaceError, ModelError, UnsupportedOpError,
                             InputError, ImageError, NoFaceError)
