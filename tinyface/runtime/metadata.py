"""What a face model expects: input size, normalisation, embedding size.

Read, in order of precedence, from a JSON file beside the model (same name,
``.json`` suffix), from the ONNX ``metadata_props`` (keys ``tinyface.*``), and
finally from the graph itself (input size from the declared input shape).
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


def _parse_size(text, where):
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
        return h, w
    except ValueError:
        raise ModelError(f"{where}: input_size must look like '112x112', got {text!r}") from None


def _triple(value, where, key):
    try:
        vals = [float(v) for v in (value.split(",") if isinstance(value, str) else value)]
    except (TypeError, ValueError):
        vals = []
    if len(vals) != 3 or (key == "std" and min(vals) <= 0):
        raise ModelError(f"{where}: '{key}' must be three numbers{' > 0' if key == 'std' else ''}, got {value!r}")
    return tuple(vals)


def read_info(graph, model_path=None):
    entries = {k[len("tinyface."):]: v for k, v in graph.metadata.items() if k.startswith("tinyface.")}
    where = graph.source
    if model_path is not None:
        sidecar = Path(model_path).with_suffix(".json")
        if sidecar.is_file():
            try:
                found = json.loads(sidecar.read_text())
            except (ValueError, UnicodeDecodeError) as exc:
                raise ModelError(f"{sidecar}: not valid JSON ({exc})") from None
            if not isinstance(found, dict):
                raise ModelError(f"{sidecar}: must hold a JSON object of metadata keys")
            entries.update(found)
            where = str(sidecar)
    if "input_size" in entries:
        size = entries["input_size"]
        size = tuple(size) if isinstance(size, list) else _parse_size(size, where)
    else:
        shape = graph.inputs[0].shape if graph.inputs else ()
        size = tuple(shape[2:4]) if len(shape) == 4 and None not in shape[2:4] else None
    emb = entries.get("embedding_size")
    if emb is None and graph.outputs and graph.outputs[0].shape and graph.outputs[0].shape[-1]:
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
        embedding_size=int(emb) if emb is not None else None,
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
