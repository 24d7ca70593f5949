"""What a face model expects: input size, normalisation, embedding size.

Read, in order of precedence, from a JSON file beside the model (same name,
``.json`` suffix), from the ONNX ``metadata_props`` (keys ``tinyface.*``), and
finally from the graph itself (input size from the declared input shape).
Normalisation maps a pixel ``p`` in 0..255 to ``(p - mean[c]) / std[c]``; when
no file says otherwise it is the papers' (p - 127.5) / 128.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyface.errors import ModelError

PAPER_MEAN = (127.5, 127.5, 127.5)
PAPER_STD = (128.0, 128.0, 128.0)


@dataclass
class ModelInfo:
    input_size: tuple                 # (height, width)
    mean: tuple = PAPER_MEAN          # per RGB channel, on the 0..255 scale
    std: tuple = PAPER_STD
    embedding_size: int = None
    extra: dict = field(default_factory=dict)

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
                entries.update(json.loads(sidecar.read_text()))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ModelError(f"{sidecar}: not valid JSON ({exc})") from None
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
    known = {"input_size", "mean", "std", "embedding_size"}
    return ModelInfo(
        input_size=size,
        mean=_triple(entries["mean"], where, "mean") if "mean" in entries else PAPER_MEAN,
        std=_triple(entries["std"], where, "std") if "std" in entries else PAPER_STD,
        embedding_size=int(emb) if emb is not None else None,
        extra={k: v for k, v in entries.items() if k not in known},
    )
