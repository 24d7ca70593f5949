"""Accuracy of tinyface against onnxruntime on the bundled faces (README's table).

    python bench/accuracy.py

For each MobileFaceNet export, every face of tests/data/lfw-hard-pairs is
embedded by tinyface at batch 1 and batch 8 and by onnxruntime at batch 1;
prints the worst cosine similarity and max abs difference over all faces.
"""
from pathlib import Path

import numpy as np
import onnxruntime as ort

import tinyface

from tinyface.tools.engines import ort_session

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"opset 18 (bundled)": ROOT / "weights/mobilefacenet-relu6-opset18.onnx",
          "opset 10": ROOT / "tests/data/models/mobilefacenet-relu6-opset10.onnx"}


def main():
    faces = sorted((ROOT / "tests/data/lfw-hard-pairs").glob("*.jpg"))
    print(f"{len(faces)} aligned LFW faces, onnxruntime {ort.__version__}")
    print("| model | batch | worst cosine | max abs diff | mean abs diff |")
    print("|---|---|---|---|---|")
    for label, path in MODELS.items():
        model = tinyface.load(path)
        sess = ort_session(path, 0)          # 0: onnxruntime's default thread count
        x = model.preprocess(faces)
        ref = np.concatenate([sess.run(None, {"input0": x[i:i + 1]})[0] for i in range(len(x))])
        for batch in (1, 8):
            ours = np.concatenate([model.run(x[i:i + batch])[0] for i in range(0, len(x), batch)])
            cos = np.sum(ours * ref, 1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
            err = np.abs(ours - ref)
            print(f"| {label} | {batch} | {cos.min():.8f} | {err.max():.2e} | {err.mean():.2e} |")


if __name__ == "__main__":
    main()
