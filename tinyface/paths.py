"""Where the bundled weights live.

The repository keeps them in ``weights/`` at its top; a wheel or an sdist
install puts the same files inside the package, as ``tinyface/weights``
(the ``package-dir`` mapping in pyproject.toml).  So the folder is, in order:

1. the one named by the ``TINYFACE_WEIGHTS`` environment variable;
2. ``weights`` inside the installed package (``pip install tinyface-*.whl``);
3. ``weights`` beside the package, in a source checkout (``pip install -e .``).

Everything that reads a bundled file (the MobileFaceNet model, the MTCNN nets
in ``mtcnn/``) goes through :func:`weights_dir`.
"""
import os
from pathlib import Path

DEFAULT_MODEL = "mobilefacenet-relu6-opset18.onnx"
# The bundled model in each precision ``tinyface.load(precision=...)`` takes
BUNDLED_MODELS = {"fp32": DEFAULT_MODEL, "int8": "mobilefacenet-int8.onnx"}

PACKAGE = Path(__file__).resolve().parent


def weights_dir():
    env = os.environ.get("TINYFACE_WEIGHTS")
    if env:
        return Path(env)
    installed = PACKAGE / "weights"
    return installed if installed.is_dir() else PACKAGE.parent / "weights"


def default_model_path(precision="fp32"):
    """The bundled model of ``precision`` ("fp32" or "int8", a key of ``BUNDLED_MODELS``)."""
    return weights_dir() / BUNDLED_MODELS[precision]
