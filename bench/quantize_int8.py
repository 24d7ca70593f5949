"""Quantize the bundled MobileFaceNet to 8 bits with onnxruntime (development time only).

    .venv/bin/python bench/quantize_int8.py [--images N] [--exclude NODE ...] [--out PATH] [--shared DIR]

Writes ``weights/mobilefacenet-int8.onnx``: onnxruntime's ``quantize_static`` in
QDQ format, weights int8 per output channel, activations uint8 per tensor,
ranges by MinMax calibration on the aligned crops of LFW View 1's
``pairsDevTrain.txt`` images (read from ``--shared``, default ``../shared`` of
the checkout or of its parent folder; only the resulting scales enter the
file, never an image).  ``--images N`` calibrates on the first
N of them (sorted; default all 3,443); ``--exclude`` keeps the named nodes in
float32 (onnxruntime's ``nodes_to_exclude``).  Then copies the float model's
metadata sidecar without its threshold, which ``tinyface calibrate`` sets
(docs/int8.md).  Needs onnxruntime, which tinyface does not need at run time.
Progress goes to stderr.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()), ROOT.parent / "shared")
FLOAT = ROOT / "weights" / "mobilefacenet-relu6-opset18.onnx"
OUT = ROOT / "weights" / "mobilefacenet-int8.onnx"


def calibration_images(shared, count=None):
    from tinyface.evaluation.pairs import read_pairs
    view1 = shared / "faces" / "lfw-view1"
    images = sorted(read_pairs(view1 / "pairsDevTrain.txt", root=view1 / "crops").images)
    return images[:count] if count else images


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
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=args.exclude)
    quantized = onnx.load(args.out)
    onnx.helper.set_model_props(quantized, {"calibration_images": f"{len(images)} of pairsDevTrain.txt",
                                            "quantized_by": "onnxruntime.quantization.quantize_static, QDQ, "
                                            "per-channel int8 weights, uint8 activations, MinMax"})
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
