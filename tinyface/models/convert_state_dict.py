"""Convert a PyTorch state_dict, saved as .npz, to tinyface weight names.

In an environment WITH torch, save the checkpoint's arrays first::

    sd = torch.load("model.pth", map_location="cpu")   # the state_dict
    np.savez("model_sd.npz", **{k: v.numpy() for k, v in sd.items()})

then, here (pure NumPy)::

    python -m tinyface.models.convert_state_dict model_sd.npz model.npz \\
        --arch mobilefacenet --naming insightface

Two ways to name the source arrays:

* ``insightface``: the explicit key mapping of :func:`insightface_names`, for
  the MobileFaceNet of TreB1eN/InsightFace_Pytorch ``model.py`` (keys such as
  ``conv1.conv.weight``, ``conv_23.conv_dw.bn.running_var``,
  ``conv_4.model.5.project.conv.weight``, ``linear.weight``, ``bn.bias``).
* ``order``: any naming.  The source arrays, in file order (``np.savez``
  keeps the state_dict order, which for these nets is the forward order), are
  matched one by one to tinyface's expected names in layer order; every shape
  must agree, except that a dense (out, in) weight may fill a 1x1 conv
  (out, in, 1, 1).  Within a layer the order is conv weight, BN weight, bias,
  running_mean, running_var, PReLU weight: PyTorch's.

``num_batches_tracked`` entries are dropped.  Every other source array must be
used, and the result is checked by :func:`tinyface.models.weights.load`.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from tinyface.errors import ModelError, TinyfaceError
from tinyface.models import ARCHITECTURES, spec
from tinyface.models import weights as W
from tinyface.models.netspec import Conv, NetSpec

# TreB1eN/InsightFace_Pytorch MobileFaceNet: (module, blocks) for tinyface's blocks
# 0..14 in order; a module holding several blocks is a Residual, `module.model.{i}`.
INSIGHTFACE_BLOCKS = [("conv_23", 1), ("conv_3", 4), ("conv_34", 1), ("conv_4", 6),
                      ("conv_45", 1), ("conv_5", 2)]
INSIGHTFACE_LAYERS = {"conv1": "conv1", "conv2_dw": "conv2_dw",
                      "conv3": "conv_6_sep", "gdconv": "conv_6_dw"}
INSIGHTFACE_SUBLAYERS = {"expand": "conv", "dw": "conv_dw", "project": "project"}
BN_KEYS = ("weight", "bias", "running_mean", "running_var")


def _insightface_module(layer: str) -> str:
    """The InsightFace_Pytorch module of a tinyface conv layer, e.g. blocks.7.dw -> conv_4.model.1.conv_dw."""
    if layer in INSIGHTFACE_LAYERS:
        return INSIGHTFACE_LAYERS[layer]
    _, index, part = layer.split(".")
    i = int(index)
    for module, n in INSIGHTFACE_BLOCKS:
        if i < n:
            return f"{module if n == 1 else f'{module}.model.{i}'}.{INSIGHTFACE_SUBLAYERS[part]}"
        i -= n
    raise ModelError(f"block {index} has no counterpart in the InsightFace_Pytorch MobileFaceNet")


def insightface_names(net: NetSpec) -> dict[str, str]:
    """tinyface name -> InsightFace_Pytorch name, for MobileFaceNet at any input size.

    Conv layer L held by module M: ``L.weight <- M.conv.weight``,
    ``L.bn.* <- M.bn.*``, ``L.prelu.weight <- M.prelu.weight``.  The final
    linear 1x1 conv is their bias-free ``linear`` (a (128, 512) Linear)
    followed by the BatchNorm1d ``bn``.
    """
    if net.arch != "mobilefacenet":
        raise ModelError(f"the insightface naming covers mobilefacenet only, not {net.arch}; "
                         "use --naming order")
    names = {}
    for layer in net.layers:
        if not isinstance(layer, Conv):
            continue
        if layer.name == "linear":
            conv, bn = "linear.weight", "bn"
        else:
            module = _insightface_module(layer.name)
            conv, bn = f"{module}.conv.weight", f"{module}.bn"
        names[f"{layer.name}.weight"] = conv
        names.update({f"{layer.name}.bn.{k}": f"{bn}.{k}" for k in BN_KEYS})
        if layer.act == "prelu":
            names[f"{layer.name}.prelu.weight"] = f"{module}.prelu.weight"
    return names


def _without_trailing_ones(shape: tuple[int, ...]) -> tuple[int, ...]:
    while shape and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _fit(name: str, array: np.ndarray, shape: tuple[int, ...], source: str) -> np.ndarray:
    """``array`` reshaped to ``shape`` if they differ only by trailing 1s (Linear -> 1x1 conv)."""
    if array.shape != shape and _without_trailing_ones(array.shape) != _without_trailing_ones(shape):
        raise ModelError(f"source array {source} has shape {array.shape}, "
                         f"but {name} needs {shape}")
    return array.reshape(shape)


def convert(arrays: dict[str, np.ndarray], net: NetSpec, naming: str = "order") -> dict[str, np.ndarray]:
    """tinyface weights for ``net`` from state_dict ``arrays`` (see the module docstring)."""
    arrays = {k: np.asarray(v) for k, v in arrays.items() if not k.endswith("num_batches_tracked")}
    expected = W.expected_shapes(net)
    if naming == "insightface":
        names = insightface_names(net)
        missing = [src for src in names.values() if src not in arrays]
        if missing:
            raise ModelError(f"source has no {W.listing(missing)} (insightface naming)")
        out = {k: _fit(k, arrays[src], expected[k], src) for k, src in names.items()}
        unused = [k for k in arrays if k not in set(names.values())]
    elif naming == "order":
        if len(arrays) != len(expected):
            raise ModelError(f"source has {len(arrays)} arrays (not counting num_batches_tracked), "
                             f"but {net.arch} has {len(expected)} weights")
        out = {k: _fit(k, a, expected[k], src) for (src, a), k in zip(arrays.items(), expected)}
        unused = []
    else:
        raise TinyfaceError(f"unknown naming {naming!r}; expected 'insightface' or 'order'")
    if unused:
        raise ModelError(f"source arrays not used by {net.arch}: {W.listing(unused)}")
    return W.load(net, out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyface.models.convert_state_dict",
        description="Convert a PyTorch state_dict saved with np.savez to tinyface weight names.")
    parser.add_argument("source", help=".npz of the state_dict, {name: tensor.numpy()}")
    parser.add_argument("output", help="tinyface .npz to write")
    parser.add_argument("--arch", required=True, choices=list(ARCHITECTURES))
    parser.add_argument("--input-size", default="112x112", help="HxW (default 112x112)")
    parser.add_argument("--activation", default="prelu", choices=["prelu", "relu"])
    parser.add_argument("--naming", default="order", choices=["order", "insightface"])
    args = parser.parse_args(argv)
    try:
        net = spec(args.arch, args.input_size, args.activation)
        weights = convert(W.read_npz(args.source), net, args.naming)
        W.save(args.output, weights)
    except TinyfaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {len(weights)} arrays for {net.arch} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
