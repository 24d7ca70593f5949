"""What makes two models' embeddings comparable: a fingerprint of weights and preprocessing.

The fingerprint is the SHA-256 of, in order: every constant of the graph
(weights, biases, folded shapes), by name in sorted order, each as name,
dtype, shape and raw bytes; the sequence of op types; the input size, mean,
std and embedding size the model's metadata gives.  Two files give the same
fingerprint exactly when they hold the same network with the same weights and
preprocessing, so a gallery can refuse embeddings from any other model.
"""
import hashlib
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

from tinyface.errors import TinyfaceError


@dataclass(frozen=True)
class ModelCard:
    """The identity of a model as a gallery records it."""
    fingerprint: str        # 64 hex digits
    name: str               # the model file's name, for messages
    dim: int                # embedding size
    input_size: tuple       # (height, width)


def fingerprint(graph, info) -> str:
    """SHA-256 (hex) of ``graph``'s constants and ops and ``info``'s preprocessing."""
    h = hashlib.sha256()
    for name in sorted(graph.constants):
        value = graph.constants[name]
        h.update(f"{name}\0{value.dtype.str}\0{value.shape}\0".encode())
        h.update(value.tobytes())
    h.update("|".join(node.op for node in graph.nodes).encode())
    h.update(f"\0{tuple(info.input_size or ())}\0{tuple(info.mean)}\0{tuple(info.std)}"
             f"\0{info.embedding_size}".encode())
    return h.hexdigest()


_cards = weakref.WeakKeyDictionary()     # loaded Model -> its card, computed once


def model_card(model=None) -> ModelCard:
    """The card of ``model``: a loaded :class:`~tinyface.face.model.FaceModel` (its card is
    computed once), a path to an ONNX file, or None for the bundled model (read, not
    compiled)."""
    if hasattr(model, "graph") and model in _cards:
        return _cards[model]
    if model is None or isinstance(model, (str, os.PathLike)):
        from tinyface.graph.onnx_file import read_model
        from tinyface.paths import default_model_path
        from tinyface.face.metadata import read_info
        path = Path(default_model_path() if model is None else model)
        graph = read_model(path)
        info = read_info(graph, path)
        name = path.name
    elif hasattr(model, "graph") and hasattr(model, "info"):
        graph, info = model.graph, model.info
        name = Path(model.path).name if getattr(model, "path", None) else graph.source
    else:
        raise TinyfaceError(f"expected a tinyface Model, a model path or None, got {type(model).__name__}")
    if not info.embedding_size or info.input_size is None:
        raise TinyfaceError(f"{name}: the model's embedding size or input size is unknown "
                            f"(no metadata and no fixed shapes): it cannot fill a gallery")
    card = ModelCard(fingerprint(graph, info), name, int(info.embedding_size),
                     tuple(int(v) for v in info.input_size))
    if hasattr(model, "graph"):
        _cards[model] = card
    return card
