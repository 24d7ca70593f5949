"""What a face model expects: input size, normalisation, embedding size.

Read, in order of precedence, from a JSON file beside the model (same name,
``.json`` suffix), from the ONNX ``metadata_props`` (keys ``tinyface.*``), and
finally from the graph itself (input size from the declared input shape).
A sidecar must hold a JSON object; an input size must be two positive
integers of at most ``MAX_IMAGE_PIXELS`` pixels (:mod:`tinyface.limits`), an
embedding size a positive integer, mean and std three finite numbers (std > 0).
Normalisation maps a pixel ``p`` in 0..255 to ``(p - mean[c]) / std[c]``; when
no file says otherwise it is the papers' (p - 127.5) / 128.

Keys: ``input_size``, ``mean``, ``std``, ``embedding_size``; ``threshold``
(the cosine similarity at or above which two faces match, in [-1, 1]) with
``calibration`` (how it was chosen: pairs, method, FAR/TAR, date; written by
``tinyface calibrate``); and descriptive keys kept for people, not read:
``architecture``, ``activation``, ``weights``, ``template``, ``comment``.
``channel_order`` must be ``RGB``, the order tinyface feeds.  Any other key is
ignored with a warning naming it (a misspelt ``threshold`` must not pass
unnoticed).
"""
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyface.errors import ModelError
from tinyface.hxw import parse_hxw
from tinyface.limits import check_limit

# The papers' input normalisation, on the 0..255 scale (also what tinyface.models writes into
# the models it builds).
PAPER_MEAN = (127.5, 127.5, 127.5)
PAPER_STD = (128.0, 128.0, 128.0)
READ_KEYS = {"input_size", "mean", "std", "embedding_size", "threshold", "calibration", "channel_order"}
DESCRIPTIVE_KEYS = {"architecture", "activation", "weights", "template", "comment"}


@dataclass
class ModelInfo:
    input_size: tuple                 # (height, width)
    mean: tuple = PAPER_MEAN          # per RGB channel, on the 0..255 scale
    std: tuple = PAPER_STD
    embedding_size: int = None
    threshold: float = None           # calibrated decision threshold on cosine similarity
    calibration: dict = None          # how ``threshold`` was chosen (see tinyface.evaluation.calibrate)

    def normalise(self, faces_uint8):
        """N x H x W x 3 uint8 RGB -> N x 3 x H x W float32, normalised."""
        x = faces_uint8.astype(np.float32)
        x = (x - np.float32(self.mean)) / np.float32(self.std)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _read_sidecar(path):
    """The JSON object in ``path``, or None when there is no such file."""
    try:
        if not path.is_file():
            return None
        entries = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:        # bad JSON or UTF-8; nested too deep
        raise ModelError(f"{path}: not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(entries, dict):
        raise ModelError(f"{path}: must hold a JSON object such as {{\"input_size\": [112, 112]}}, "
                         f"got a {type(entries).__name__}")
    return entries


def _whole(value):
    """``value`` as a positive int when it is one (an int, or a string of digits), else None."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _input_size(value, where):
    """(height, width) from [h, w] or "HxW": positive, at most MAX_IMAGE_PIXELS pixels."""
    parts = (parse_hxw(value) or ()) if isinstance(value, str) else value
    size = tuple(_whole(v) for v in parts) if isinstance(parts, (list, tuple)) else ()
    if len(size) != 2 or None in size:
        raise ModelError(f"{where}: input_size must be two positive integers like '112x112' or "
                         f"[112, 112], got {value!r}")
    check_limit("MAX_IMAGE_PIXELS", size[0] * size[1], ModelError, f"{where}: input_size {size[0]}x{size[1]}")
    return size


def _triple(value, where, key):
    try:
        parts = value.split(",") if isinstance(value, str) else list(value)
        vals = [float(v) for v in parts if not isinstance(v, bool)]
        if len(vals) != len(parts):
            vals = []
    except (TypeError, ValueError):
        vals = []
    if len(vals) != 3 or not np.isfinite(vals).all() or (key == "std" and min(vals) <= 0):
        raise ModelError(f"{where}: '{key}' must be three finite numbers{' > 0' if key == 'std' else ''}, "
                         f"got {value!r}")
    return tuple(vals)


def read_info(graph, model_path=None):
    entries = {k[len("tinyface."):]: v for k, v in graph.metadata.items() if k.startswith("tinyface.")}
    where = graph.source
    if model_path is not None:
        sidecar = Path(model_path).with_suffix(".json")
        found = _read_sidecar(sidecar)
        if found is not None:
            entries.update(found)
            where = str(sidecar)
    if "input_size" in entries:
        size = _input_size(entries["input_size"], where)
    else:
        shape = graph.inputs[0].shape if graph.inputs else ()
        known = len(shape) == 4 and None not in shape[2:4]
        size = _input_size(list(shape[2:4]), graph.source) if known else None
    emb = entries.get("embedding_size")
    if emb is not None and _whole(emb) is None:
        raise ModelError(f"{where}: embedding_size must be a positive integer, got {emb!r}")
    if emb is None and graph.outputs and graph.outputs[0].shape:
        emb = graph.outputs[0].shape[-1]
    unknown = sorted(set(entries) - READ_KEYS - DESCRIPTIVE_KEYS)
    if unknown:
        warnings.warn(f"{where}: unknown metadata key{'s' if len(unknown) > 1 else ''} "
                      f"{', '.join(map(repr, unknown))} ignored", stacklevel=2)
    if str(entries.get("channel_order", "RGB")).upper() != "RGB":
        raise ModelError(f"{where}: channel_order {entries['channel_order']!r} is not supported "
                         f"(tinyface feeds RGB)")
    threshold, calibration = _threshold(entries, where)
    return ModelInfo(
        input_size=size,
        mean=_triple(entries["mean"], where, "mean") if "mean" in entries else PAPER_MEAN,
        std=_triple(entries["std"], where, "std") if "std" in entries else PAPER_STD,
        embedding_size=_whole(emb),
        threshold=threshold,
        calibration=calibration,
    )


def _threshold(entries, where):
    """(threshold or None, calibration dict or None), checked."""
    calibration = entries.get("calibration")
    if isinstance(calibration, str):              # ONNX metadata values are strings
        try:
            calibration = json.loads(calibration)
        except ValueError:
            pass                                    # refused just below, as not an object
    if calibration is not None and not isinstance(calibration, dict):
        raise ModelError(f"{where}: 'calibration' must be a JSON object, got {entries['calibration']!r}")
    if "threshold" not in entries:
        if calibration is not None:
            raise ModelError(f"{where}: 'calibration' is given without a 'threshold'")
        return None, None
    value = entries["threshold"]
    try:
        threshold = float("nan") if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not -1 <= threshold <= 1:
        raise ModelError(f"{where}: 'threshold' must be a cosine similarity in [-1, 1], "
                         f"got {value!r}")
    return threshold, calibration
