"""MTCNN's three nets on tinyface's engine against onnxruntime, on real crops.

Inputs are cut from the astronaut photo (tests/data/astronaut.png): P-Net on
two pyramid levels of the whole photo, R-Net and O-Net on the face and on
random boxes, normalised as the cascade does ((p - 127.5) / 128).
Tolerance: max abs difference <= 1e-4 on every output (probabilities,
box regressions, landmarks).
"""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinyface

ort = pytest.importorskip("onnxruntime")
WEIGHTS = tinyface.paths.weights_dir() / "mtcnn"
PHOTO = Image.open(Path(__file__).parent / "data/astronaut.png").convert("RGB")


def normalise(images):
    x = np.stack([np.asarray(im, np.float32) for im in images])
    return ((x - 127.5) * 0.0078125).transpose(0, 3, 1, 2).copy()


def crops(size, count=12):
    rng = np.random.default_rng(size)
    boxes = [(170, 50, 275, 180)]                       # around the face
    for _ in range(count - 1):
        x, y = rng.integers(-40, 480, 2)
        s = int(rng.integers(20, 200))
        boxes.append((x, y, x + s, y + s))              # may leave the photo: zero padding
    return normalise([PHOTO.crop(b).resize((size, size), Image.BILINEAR) for b in boxes])


def compare(name, x):
    path = WEIGHTS / f"{name}.onnx"
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    ref = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    ours = tinyface.load(path).run(x)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-4


@pytest.mark.parametrize("scale", [0.6, 0.21])
def test_pnet_on_pyramid_levels(scale):
    w, h = PHOTO.size
    level = PHOTO.resize((int(w * scale + 1), int(h * scale + 1)), Image.BOX)
    compare("pnet", normalise([level]))


def test_rnet_on_crops():
    compare("rnet", crops(24))


def test_onet_on_crops():
    compare("onet", crops(48))
