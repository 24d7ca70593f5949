"""Quantize the bundled MobileFaceNet to 8 bits with onnxruntime (development time only).

    .venv/bin/python bench/quantize_int8.py [--images N] [--exclude NODE ...] [--out PATH] [--shared DIR]

Writes ``weights/mobilefacenet-int8.onnx``: onnxruntime's ``quantize_static`` in
QDQ format, weights int8 per output channel, activations uint8 per tensor,
activation ranges by MinMax calibration on the aligned crops of LFW View 1's
``pairsDevTrain.txt`` images (read from ``--shared``, default ``../shared`` of
the checkout or of its parent folder; only the resulting scales enter the
file, never an image).  ``--images N`` calibrates on the first
N of them (sorted; default all 3,443); ``--exclude`` keeps the named nodes in
float32 (onnxruntime's ``nodes_to_exclude``).

The weights of the pointwise and dense convs get *pair-bounded* scales, given to
the quantiser as its ``TensorQuantOverrides``: per output channel, the largest
|w0| + |w1| over the pairs of input rows (2p, 2p + 1, in the order tinyface
packs them: ky, kx, c) divided by 127.  Then every pair of quantised weights sums
to at most 128 in magnitude, which is what tinyface's quad kernels (x86's
``pmaddubsw``) need to sum them exactly (``kernels.quantized.fits_quads``;
onnxruntime's u8 x s8 kernels on CPUs without VNNI likewise).  That is finer than
7-bit weights (``reduce_range``: the largest weight over 64) wherever the largest
weights do not meet in one pair.  The depthwise convs keep onnxruntime's 8-bit
scales: their kernel sums pairs of taps in 16-bit lanes, exact for any weight.
Then copies the float model's
metadata sidecar without its threshold, which ``tinyface calibrate`` sets
(docs/int8.md).  Needs onnxruntime, which tinyface does not need at run time.
Progress goes to stderr.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()), ROOT.parent / "shared")
FLOAT = ROOT / "weights" / "mobilefacenet-relu6-opset18.onnx"
OUT = ROOT / "weights" / "mobilefacenet-int8.onnx"


def calibration_images(shared, count=None):
    from tinyface.evaluation.pairs import read_pairs
    view1 = shared / "faces" / "lfw-view1"
    images = sorted(read_pairs(view1 / "pairsDevTrain.txt", root=view1 / "crops").images)
    return images[:count] if count else images


def pair_bounded_scales(model):
    """{weight name: onnxruntime's per-channel overrides} for the Conv nodes of group 1:
    scale[o] = max over pairs p of |w[2p, o]| + |w[2p + 1, o]| / 127, rows as tinyface packs
    them (ky, kx, c), an odd count's last row paired with zero; zero point 0."""
    from onnx import numpy_helper
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    overrides = {}
    for node in model.graph.node:
        if node.op_type != "Conv" or node.input[1] not in weights \
                or next((a.i for a in node.attribute if a.name == "group"), 1) != 1:
            continue
        w = weights[node.input[1]].astype(np.float64)                      # Co x C x KH x KW
        rows = np.abs(w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0]))      # (KH*KW*C) x Co
        if len(rows) % 2:
            rows = np.vstack([rows, np.zeros((1, rows.shape[1]))])
        scale = (rows[0::2] + rows[1::2]).max(0) / 127
        scale[scale == 0] = 1.0                    # a channel of zeros: any scale gives zeros
        overrides[node.input[1]] = [{"axis": 0, "scale": float(scale[0]), "zero_point": 0}] + \
            [{"scale": float(v), "zero_point": 0} for v in scale[1:]]
    return overrides


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, help="calibrate on the first N DevTrain images (default: all)")
    ap.add_argument("--exclude", nargs="*", default=[], metavar="NODE", help="nodes kept in float32")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--shared", type=Path, default=SHARED, help=f"the shared data folder (default {SHARED})")
    args = ap.parse_args(argv)

    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    import tinyface
    model = tinyface.load(FLOAT)
    images = calibration_images(args.shared, args.images)

    class Faces(CalibrationDataReader):
        def __init__(self):
            self.next = 0

        def get_next(self):
            if self.next == len(images):
                return None
            if self.next % 200 == 0:
                print(f"calibrating: {self.next}/{len(images)} images", file=sys.stderr, flush=True)
            self.next += 1
            return {model.input_names[0]: model.preprocess(images[self.next - 1])}

    quantize_static(str(FLOAT), str(args.out), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=args.exclude,
                    extra_options={"TensorQuantOverrides": pair_bounded_scales(onnx.load(FLOAT))})
    quantized = onnx.load(args.out)
    onnx.helper.set_model_props(quantized, {"calibration_images": f"{len(images)} of pairsDevTrain.txt",
                                            "quantized_by": "onnxruntime.quantization.quantize_static, QDQ, "
                                            "per-channel int8 weights (pair-bounded scales for pointwise and dense convs), "
                                            "uint8 activations, MinMax"})
    onnx.save(quantized, args.out)
    info = json.loads(FLOAT.with_suffix(".json").read_text())
    for key in ("threshold", "calibration"):
        info.pop(key, None)
    info["architecture"] += "-int8"
    info["comment"] += "; 8-bit QDQ form of mobilefacenet-relu6-opset18.onnx (bench/quantize_int8.py)"
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {args.out} ({len(images)} calibration images, {len(args.exclude)} nodes in float32)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
