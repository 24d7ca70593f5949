"""Where the bundled weights live: ``weights/`` at the top of the repository,
or the folder named by the ``TINYFACE_WEIGHTS`` environment variable."""
import os
from pathlib import Path

DEFAULT_MODEL = "mobilefacenet-relu6-opset18.onnx"


def weights_dir():
    env = os.environ.get("TINYFACE_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "weights"


def default_model_path():
    return weights_dir() / DEFAULT_MODEL
