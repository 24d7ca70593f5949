"""Regenerate the golden embeddings in tests/data/golden/ with onnxruntime.

    python tests/make_golden.py

Inputs are built here with plain PIL + NumPy (independently of tinyface's own
preprocessing): RGB, x/255, then (x - mean)/std with ImageNet's mean and std.
Both MobileFaceNet exports are run one face at a time (their graphs fix the
batch at 1).
"""
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "tests/data/lfw-hard-pairs"
MODELS = {"opset18": ROOT / "weights/mobilefacenet-relu6-opset18.onnx",
          "opset10": ROOT / "tests/data/models/mobilefacenet-relu6-opset10.onnx"}
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def face_files():
    return sorted(p.name for p in FACES.glob("*.jpg"))


def reference_input(path):
    rgb = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
    return ((rgb - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)


def main():
    names = face_files()
    out = {"faces": np.array(names), "onnxruntime_version": np.array(ort.__version__)}
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    for key, model in MODELS.items():
        sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        out[key] = np.concatenate([sess.run(None, {"input0": reference_input(FACES / n)})[0] for n in names])
    np.savez_compressed(ROOT / "tests/data/golden/mobilefacenet_lfw.npz", **out)
    print(f"{len(names)} faces, max |opset18 - opset10| = {np.abs(out['opset18'] - out['opset10']).max():.2e}")


if __name__ == "__main__":
    main()
