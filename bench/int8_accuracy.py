"""An 8-bit model against the fp32 one on LFW View 1: docs/int8.md's accuracy table.

    python bench/int8_accuracy.py [MODEL] [--shared DIR]      (default: the bundled int8 model)

Embeds every image of View 1's pairsDevTrain.txt and pairsDevTest.txt (aligned
crops, read from ``--shared``) with the bundled fp32 model, with MODEL on
tinyface (which takes its preprocessing from MODEL's metadata file, <model>.json,
as ``bench/quantize_int8.py`` writes it) and with MODEL on onnxruntime (batch 1,
the fp32 model's preprocessing).  For each: the threshold of best accuracy on DevTrain's pairs,
DevTest's accuracy at it, and the cosine of each DevTest image's embedding to
fp32's (mean and min); then tinyface's and onnxruntime's embeddings of MODEL
against each other.  Needs onnxruntime; progress on stderr.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

import tinyface
from tinyface.evaluation import metrics
from tinyface.evaluation.pairs import read_pairs

ROOT = Path(__file__).resolve().parent.parent
SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()), ROOT.parent / "shared")


def unit(e):
    e = np.asarray(e, np.float64)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def tinyface_embeddings(model, images):
    out = []
    for i in range(0, len(images), 32):
        print(f"tinyface: {i}/{len(images)} images", file=sys.stderr, flush=True)
        out.append(model.embed(images[i:i + 32]))
    return dict(zip(images, unit(np.concatenate(out))))


def onnxruntime_embeddings(path, preprocess, images):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    print(f"onnxruntime: {len(images)} images", file=sys.stderr, flush=True)
    return dict(zip(images, unit(np.concatenate([session.run(None, {name: preprocess([p])})[0] for p in images]))))


def scores(emb, pairs):
    return np.array([emb[p.a] @ emb[p.b] for p in pairs.pairs]), np.array([p.same for p in pairs.pairs])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", type=Path, default=ROOT / "weights" / "mobilefacenet-int8.onnx")
    ap.add_argument("--shared", type=Path, default=SHARED)
    args = ap.parse_args()
    view1 = args.shared / "faces" / "lfw-view1"
    train = read_pairs(view1 / "pairsDevTrain.txt", root=view1 / "crops")
    test = read_pairs(view1 / "pairsDevTest.txt", root=view1 / "crops")
    images = sorted(set(train.images) | set(test.images))
    fp32 = tinyface.load()
    embeddings = {"fp32": tinyface_embeddings(fp32, images),
                  "tinyface": tinyface_embeddings(tinyface.load(args.model), images),
                  "onnxruntime": onnxruntime_embeddings(args.model, fp32.preprocess, images)}
    print(f"{args.model.name}: {len(images)} images, {len(set(train.images) & set(test.images))} in both lists")
    for name, emb in embeddings.items():
        point = metrics.best_threshold(*scores(emb, train))
        test_point = metrics.at_threshold(*scores(emb, test), point.threshold)
        cos = np.array([emb[k] @ embeddings["fp32"][k] for k in test.images])
        print(f"{name:12} threshold {point.threshold:.4f}  DevTrain {point.accuracy:.2%}  DevTest "
              f"{test_point.accuracy:.2%}  cosine to fp32 mean {cos.mean():.5f} min {cos.min():.4f}")
    both = np.array([embeddings["tinyface"][k] @ embeddings["onnxruntime"][k] for k in images])
    print(f"tinyface vs onnxruntime on {args.model.name}: cosine mean {both.mean():.5f} min {both.min():.4f}")


if __name__ == "__main__":
    main()
