"""Weights of a :class:`NetSpec`: expected names and shapes, seeded init, .npz files.

Names follow PyTorch's ``state_dict`` layout and are also the ONNX
initialiser names.  For a conv layer ``L`` (conv + BN + activation)::

    L.weight               (O, I/groups, kh, kw)   conv kernel, no bias
    L.bn.weight            (O,)   BN scale gamma
    L.bn.bias              (O,)   BN shift beta
    L.bn.running_mean      (O,)
    L.bn.running_var       (O,)   BN: y = gamma * (x - mean) / sqrt(var + 1e-5) + beta
    L.prelu.weight         (O,)   PReLU slopes (only when the activation is PReLU)

and for a dense layer ``L``: ``L.weight`` (out, in), ``L.bias`` (out,), y = x W^T + b.
"""
from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping

import numpy as np

from tinyface.errors import ModelError, TinyfaceError
from tinyface.models import forward
from tinyface.models.netspec import Conv, Dense, NetSpec

PRELU_SLOPE = 0.25        # He et al. 2015's initial PReLU slope
CALIBRATION_BATCH = 8     # images in the batch that sets the seeded BN statistics


def expected_shapes(net: NetSpec) -> dict[str, tuple[int, ...]]:
    """Every weight name of ``net`` with its shape, in layer order."""
    shapes = {}
    for layer in net.layers:
        n = layer.name
        if isinstance(layer, Conv):
            o = layer.out_channels
            shapes[f"{n}.weight"] = (o, layer.in_channels // layer.groups, *layer.kernel)
            for k in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{n}.bn.{k}"] = (o,)
            if layer.act == "prelu":
                shapes[f"{n}.prelu.weight"] = (o,)
        elif isinstance(layer, Dense):
            shapes[f"{n}.weight"] = (layer.out_features, layer.in_features)
            shapes[f"{n}.bias"] = (layer.out_features,)
    return shapes


def _he_std(fan_in: int, act: str | None) -> float:
    """He et al. 2015, eq. 10: Var(w) = 2 / ((1 + a^2) fan_in) for slope a.

    a = 0.25 for PReLU, 0 for ReLU, and a = 1 (Var = 1/fan_in) for a linear layer.
    """
    a = {"prelu": PRELU_SLOPE, "relu": 0.0, None: 1.0}[act]
    return float(np.sqrt(2.0 / ((1.0 + a * a) * fan_in)))


def _he_normal(rng, shape, fan_in: int, act: str | None) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(_he_std(fan_in, act))


def seeded(net: NetSpec, seed: int) -> dict[str, np.ndarray]:
    """Deterministic random weights for ``net`` from ``numpy.random.default_rng(seed)``.

    Conv and dense weights are He-normal for the activation that follows;
    gamma ~ N(1, 0.05^2), beta ~ N(0, 0.05^2), PReLU slopes ~ U(0.2, 0.3),
    dense biases ~ N(0, 0.01^2).  The BN running mean and variance are then
    measured, layer by layer, on a batch of N(0, 1) images (float64 NumPy
    forward pass), as training would have tracked them: every BN therefore
    standardises its input, and activations stay O(1) through the whole depth
    instead of growing with each residual sum.
    """
    rng = np.random.default_rng(seed)
    w = {}
    for layer in net.layers:
        n = layer.name
        if isinstance(layer, Conv):
            o, (kh, kw) = layer.out_channels, layer.kernel
            shape = (o, layer.in_channels // layer.groups, kh, kw)
            w[f"{n}.weight"] = _he_normal(rng, shape, shape[1] * kh * kw, layer.act)
            w[f"{n}.bn.weight"] = rng.normal(1.0, 0.05, o)
            w[f"{n}.bn.bias"] = rng.normal(0.0, 0.05, o)
            w[f"{n}.bn.running_mean"] = np.zeros(o)     # measured below
            w[f"{n}.bn.running_var"] = np.ones(o)
            if layer.act == "prelu":
                w[f"{n}.prelu.weight"] = rng.uniform(PRELU_SLOPE - 0.05, PRELU_SLOPE + 0.05, o)
        elif isinstance(layer, Dense):
            shape = (layer.out_features, layer.in_features)
            w[f"{n}.weight"] = _he_normal(rng, shape, layer.in_features, layer.act)
            w[f"{n}.bias"] = rng.normal(0.0, 0.01, layer.out_features)
    w = {k: v.astype(np.float32) for k, v in w.items()}
    images = rng.standard_normal((CALIBRATION_BATCH, 3, *net.input_size))
    forward.forward(net, w, images, calibrate=True)
    return w


def _describe(source) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the given mapping"


def read_npz(path) -> dict[str, np.ndarray]:
    """All arrays of an .npz file, in file order; a ModelError if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise ModelError(f"weights file not found: {os.fspath(path)}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelError(f"cannot read weights file {os.fspath(path)} as .npz: {e}") from None


def listing(items: list[str], limit: int = 6) -> str:
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def load(net: NetSpec, source) -> dict[str, np.ndarray]:
    """Weights for ``net`` from an .npz path or a name -> array mapping, checked.

    Every expected name must be present with exactly the expected shape and
    finite values (running variances >= 0); unexpected names are errors too,
    as they usually mean the wrong architecture or variant.  All problems are
    reported in one ModelError.  Arrays are returned as float32.
    """
    if isinstance(source, (str, os.PathLike)):
        arrays = read_npz(source)
    elif isinstance(source, Mapping):
        arrays = {str(k): np.asarray(v) for k, v in source.items()}
    else:
        raise TinyfaceError(f"weights must be an .npz path or a mapping, got {type(source).__name__}")
    expected = expected_shapes(net)
    missing = [k for k in expected if k not in arrays]
    extra = [k for k in arrays if k not in expected]
    wrong, bad = [], []
    for k in expected:
        if k not in arrays:
            continue
        a = arrays[k]
        if a.shape != expected[k]:
            wrong.append(f"{k} expected {expected[k]} got {a.shape}")
        elif not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            bad.append(f"{k} has dtype {a.dtype}")
        elif not np.all(np.isfinite(a)):
            bad.append(f"{k} has NaN or inf")
        elif k.endswith("running_var") and np.any(a < 0):
            bad.append(f"{k} has negative variances")
    problems = [f"{label}: {listing(items)}" for label, items in
                (("missing", missing), ("wrong shape", wrong), ("bad values", bad), ("unexpected", extra))
                if items]
    if problems:
        raise ModelError(f"weights from {_describe(source)} do not fit {net.arch} "
                         f"{net.input_size[0]}x{net.input_size[1]} ({net.activation}): " + "; ".join(problems))
    return {k: arrays[k].astype(np.float32) for k in expected}


def save(path, weights: Mapping[str, np.ndarray]) -> None:
    """Write ``weights`` to an uncompressed .npz at exactly ``path``, keys in the given order."""
    try:
        with open(path, "wb") as f:
            np.savez(f, **{k: np.asarray(v, dtype=np.float32) for k, v in weights.items()})
    except OSError as e:
        raise TinyfaceError(f"cannot write weights file {os.fspath(path)}: {e.strerror}") from None
