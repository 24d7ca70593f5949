"""Calibrated thresholds: chosen on labelled pairs, stored in the model's sidecar.

A threshold is chosen on the scores of a pair list either for a target
false-accept rate (the highest TAR whose FAR on the pairs' different-person
pairs is at most the target; needs D * FAR >= 1) or for the best accuracy on
those pairs.  It is written into ``<model>.json`` (see
:mod:`tinyface.face.metadata`) as ``threshold`` with a ``calibration``
record::

    {"method": "far" | "best accuracy", "target_far": 0.001 (method "far"),
     "far": ..., "tar": ..., "accuracy": ...,    # what the threshold gives on the pairs
     "pairs": "pairsDevTrain.txt (LFW format, 1100 same + 1100 different)",
     "scored": 2200, "skipped": 0, "aligned": true, "flip": false, "date": "2025-01-31"}

``verify`` (and a gallery search) then use the threshold, and report its FAR.
"""
import datetime
import json
from pathlib import Path

import numpy as np

from tinyface.errors import InputError, TinyfaceError
from tinyface.evaluation import metrics


def choose_threshold(scores, same, far=None) -> metrics.OperatingPoint:
    """The operating point for target ``far``, or of best accuracy when ``far`` is None."""
    s, y = metrics.check_scores(scores, same)
    if far is None:
        return metrics.best_threshold(s, y)
    check_far(far, int((~y).sum()))
    return metrics.at_far(s, y, far)


def check_far(far: float, different: int):
    """InputError unless 0 < ``far`` < 1 and ``different`` pairs can show it (D * far >= 1)."""
    if not 0 < far < 1:
        raise InputError(f"the target FAR must be between 0 and 1, got {far:g}")
    if not metrics.far_is_measurable(far, different):
        raise InputError(f"a FAR of {far:g} needs at least {int(np.ceil(1 / far - 1e-9))} "
                         f"different-person pairs; these pairs have {different}")


def calibration_record(point, pair_list, scores, *, far=None, aligned, flip, date=None) -> dict:
    """The ``calibration`` entry describing ``point``, chosen on ``pair_list``'s ``scores``."""
    scored = int(np.count_nonzero(~np.isnan(scores)))
    record = {"method": "best accuracy" if far is None else "far"}
    if far is not None:
        record["target_far"] = far
    record.update(far=point.far, tar=point.tar, accuracy=point.accuracy,
                  pairs=pair_list.description, scored=scored, skipped=len(scores) - scored,
                  aligned=aligned, flip=flip,
                  date=(date or datetime.date.today()).isoformat())
    return record


def sidecar_path(model) -> Path:
    if model.path is None:
        raise TinyfaceError("calibrating needs a model loaded from a file (its metadata "
                            "goes in the .json beside it)")
    return Path(model.path).with_suffix(".json")


def write_threshold(model, threshold: float, calibration: dict) -> Path:
    """Store ``threshold`` and ``calibration`` in the model's sidecar, keeping its other keys."""
    path = sidecar_path(model)
    entries = {}
    if path.is_file():
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise TinyfaceError(f"cannot read '{path}' to update it: {exc}") from None
    entries["threshold"] = threshold
    entries["calibration"] = calibration
    try:
        path.write_text(format_sidecar(entries))
    except OSError as exc:
        raise TinyfaceError(f"cannot write '{path}': {exc.strerror or exc}") from None
    return path


def format_sidecar(entries: dict) -> str:
    """JSON with one top-level key per line; lists on one line, objects indented."""
    lines = []
    for key, value in entries.items():
        text = json.dumps(value, indent=2 if isinstance(value, dict) else None)
        lines.append(f"  {json.dumps(key)}: " + text.replace("\n", "\n  "))
    return "{\n" + ",\n".join(lines) + "\n}\n"
