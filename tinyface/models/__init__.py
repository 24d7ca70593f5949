"""Face-embedding architectures written as standard ONNX graphs.

``build(arch, ...)`` returns an ``onnx.ModelProto`` with input ``input``
[N, 3, H, W] float32 (RGB, normalised as (pixel - 127.5) / 128) and output
``embedding`` [N, D], with seeded random weights or weights from an .npz.
``ARCHITECTURES`` maps each name to the function giving its layer list
(a :class:`~tinyface.models.netspec.NetSpec`).  See docs/architectures.md.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx

from tinyface.errors import TinyfaceError
from tinyface.face.metadata import PAPER_MEAN, PAPER_STD
from tinyface.models import weights as _weights
from tinyface.models.counting import Counts, count
from tinyface.models.layers import to_onnx
from tinyface.models.mobiface import flipped_mobiface, mobiface
from tinyface.models.mobilefacenet import mobilefacenet, mobilefacenet_m, mobilefacenet_s
from tinyface.models.netspec import NetSpec

ARCHITECTURES = {
    "mobilefacenet": mobilefacenet,
    "mobilefacenet-m": mobilefacenet_m,
    "mobilefacenet-s": mobilefacenet_s,
    "mobiface": mobiface,
    "flipped-mobiface": flipped_mobiface,
}

# The input sizes each architecture is listed with (the papers' sizes).
PAPER_INPUT_SIZES = {
    "mobilefacenet": [(112, 112), (112, 96), (96, 96)],
    "mobilefacenet-m": [(112, 112)],
    "mobilefacenet-s": [(112, 112)],
    "mobiface": [(112, 112)],
    "flipped-mobiface": [(112, 112)],
}


def spec(arch: str, input_size=(112, 112), activation: str = "prelu") -> NetSpec:
    """The layer list of ``arch`` for ``input_size`` (H, W)."""
    if arch not in ARCHITECTURES:
        raise TinyfaceError(f"unknown architecture {arch!r}; "
                            f"choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](input_size, activation)


def _metadata(net: NetSpec, source: str) -> dict[str, str]:
    h, w = net.input_size
    return {
        "tinyface.architecture": net.arch,
        "tinyface.input_size": f"{h}x{w}",
        "tinyface.mean": ",".join(f"{m:g}" for m in PAPER_MEAN),
        "tinyface.std": ",".join(f"{s:g}" for s in PAPER_STD),
        "tinyface.embedding_size": str(net.embedding_size),
        "tinyface.activation": net.activation,
        "tinyface.weights": source,
    }


def build(arch: str, input_size=(112, 112), seed: int = 0, weights=None,
          activation: str = "prelu") -> onnx.ModelProto:
    """The ONNX model of ``arch`` at ``input_size`` (H, W), checked by onnx.checker.

    ``weights`` is None (seeded random weights from ``seed``, see
    :func:`tinyface.models.weights.seeded`), an .npz path or a mapping of
    weight names to arrays (checked by :func:`tinyface.models.weights.load`).
    """
    net = spec(arch, input_size, activation)
    if weights is None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise TinyfaceError(f"seed must be a non-negative integer, got {seed!r}")
        params, source = _weights.seeded(net, seed), f"seeded:{seed}"
    else:
        params = _weights.load(net, weights)
        source = "mapping" if hasattr(weights, "keys") else f"file:{os.path.basename(weights)}"
    return to_onnx(net, params, _metadata(net, source))


@dataclass(frozen=True)
class ArchInfo:
    name: str
    input_size: tuple[int, int]
    embedding_size: int
    params: int
    madds: int


def counts(arch: str, input_size=(112, 112), activation: str = "prelu") -> Counts:
    """Parameter and MAdd counts of ``arch`` (weights do not matter: zeros are used)."""
    net = spec(arch, input_size, activation)
    zeros = {k: np.zeros(s, np.float32) for k, s in _weights.expected_shapes(net).items()}
    return count(to_onnx(net, zeros, _metadata(net, "zeros")))


def describe_architectures(activation: str = "prelu") -> list[ArchInfo]:
    """One row per architecture and paper input size: name, (H, W), D, params, MAdds."""
    rows = []
    for name, sizes in PAPER_INPUT_SIZES.items():
        for size in sizes:
            c = counts(name, size, activation)
            rows.append(ArchInfo(name, size, spec(name, size, activation).embedding_size,
                                 c.params, c.madds))
    return rows
