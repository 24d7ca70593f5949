"""Comparing embeddings: cosine similarity and the same/different decision."""
import numpy as np

# The threshold on cosine similarity for a model without a calibrated one in
# its metadata: a conventional starting point for MobileFaceNet-class models,
# not measured.  The bundled model ships a calibrated threshold (README,
# "Evaluate a model"; ``tinyface calibrate`` writes one for any model).
DEFAULT_THRESHOLD = 0.35


def cosine_similarity(a, b):
    """cos(a, b) = a.b / (|a| |b|) of two embedding vectors, in float64."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > 0 else 0.0


def threshold_for(model):
    """(threshold, calibration): the model's calibrated threshold and the record of how it
    was chosen (a dict, see :mod:`tinyface.evaluation.calibrate`), or
    (``DEFAULT_THRESHOLD``, None) when its metadata has none."""
    info = getattr(model, "info", None)
    if info is not None and info.threshold is not None:
        return info.threshold, info.calibration
    return DEFAULT_THRESHOLD, None


def calibration_note(calibration, flip=None, aligned=None) -> str:
    """What a calibration record says, e.g. 'FAR 0.09% on pairsDevTrain.txt'.

    ``flip``, ``aligned``: how the faces compared now were embedded (with flip
    averaging; from aligned crops rather than detected in photos); a note says
    so when the calibration was measured the other way.
    """
    if calibration is None:
        return "no calibration record"
    text = "calibrated"
    if "far" in calibration:
        pairs = str(calibration.get("pairs", "its calibration pairs")).split(" (")[0]
        text = f"FAR {100 * calibration['far']:.2f}% on {pairs}"
    if flip is not None and "flip" in calibration and bool(calibration["flip"]) != flip:
        text += f", measured {'with' if calibration['flip'] else 'without'} --flip"
    if aligned is not None and "aligned" in calibration and bool(calibration["aligned"]) != aligned:
        text += f", measured on {'aligned crops' if calibration['aligned'] else 'photos'}"
    return text
