"""A network as a flat list of layers: the one description the other modules read.

An architecture file calls the methods of :class:`NetSpec` in forward order.
Each call appends one layer, names its output tensor after the layer and
records that tensor's per-image shape ``(C, H, W)`` (or ``(D,)`` once
flattened), so the architecture files read like the papers' tables and the
later stages (weights, ONNX emission, the NumPy reference) need no shape logic
of their own.

Layers (all tensors NCHW, one image shown, batch dimension implied):

* :class:`Conv`    y = act(BN(conv(x)))  -- convolution without bias, then
  BatchNormalization, then PReLU, ReLU or nothing ("linear" layers).
* :class:`Add`     y = a + b             -- the residual shortcut.
* :class:`Flatten` (C, H, W) -> (C*H*W,) in C-major order (PyTorch ``view``).
* :class:`Dense`   y = act(x W^T + b), W of shape (out, in).
* :class:`Mean`    y = (a + b) / 2.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

from tinyface.errors import TinyfaceError
from tinyface.hxw import parse_hxw

ACTIVATIONS = ("prelu", "relu")
BN_EPS = 1e-5          # BatchNormalization epsilon (the PyTorch and ONNX default)


@dataclass(frozen=True)
class Conv:
    name: str
    input: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: int
    pad: int
    groups: int
    act: str | None          # "prelu", "relu" or None (linear)


@dataclass(frozen=True)
class Add:
    name: str
    a: str
    b: str


@dataclass(frozen=True)
class Flatten:
    name: str
    input: str


@dataclass(frozen=True)
class Dense:
    name: str
    input: str
    in_features: int
    out_features: int
    act: str | None          # "relu" or None


@dataclass(frozen=True)
class Mean:
    name: str
    a: str
    b: str


class NetSpec:
    """The layers of one network for one input size, with every tensor's shape.

    ``arch`` names the architecture, ``input_size`` is ``(H, W)`` and
    ``activation`` ("prelu" or "relu") is used by every non-linear conv.
    After the architecture function has run, ``output`` is the name of the
    embedding tensor and ``layers`` lists the layers in execution order.
    """

    def __init__(self, arch: str, input_size: tuple[int, int], activation: str):
        if activation not in ACTIVATIONS:
            raise TinyfaceError(f"unknown activation {activation!r}; "
                                f"expected one of {', '.join(ACTIVATIONS)}")
        self.arch = arch
        self.input_size = tuple(input_size)
        self.activation = activation
        self.layers: list = []
        self.shapes: dict[str, tuple[int, ...]] = {"input": (3, *self.input_size)}
        self.output = "input"

    @property
    def embedding_size(self) -> int:
        shape = self.shapes[self.output]
        if len(shape) != 1:
            raise TinyfaceError(f"{self.arch}: output {self.output!r} has shape {shape}, "
                                "not a vector")
        return shape[0]

    def channels(self, x: str) -> int:
        return self.shapes[x][0]

    def _append(self, layer, shape: tuple[int, ...]) -> str:
        if layer.name in self.shapes:
            raise TinyfaceError(f"{self.arch}: duplicate layer name {layer.name!r}")
        self.layers.append(layer)
        self.shapes[layer.name] = shape
        self.output = layer.name
        return layer.name

    def conv(self, name: str, x: str, out_channels: int, kernel, stride: int = 1,
             pad: int | None = None, depthwise: bool = False, linear: bool = False) -> str:
        """Conv + BN (+ activation unless ``linear``); ``pad`` defaults to "same" (k-1)/2.

        A depthwise conv has ``groups = in_channels = out_channels``.
        Output size: H' = (H + 2*pad - kh) // stride + 1, likewise W'.
        """
        c, h, w = self.shapes[x]
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        pad = (kh - 1) // 2 if pad is None else pad
        if depthwise and out_channels != c:
            raise TinyfaceError(f"{self.arch}: depthwise {name!r} maps {c} to {out_channels} channels")
        ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
        if ho < 1 or wo < 1:
            raise TinyfaceError(f"{self.arch}: layer {name!r} gets a {h}x{w} map, "
                                f"too small for its {kh}x{kw} kernel")
        layer = Conv(name, x, c, out_channels, (kh, kw), stride, pad,
                     groups=c if depthwise else 1,
                     act=None if linear else self.activation)
        return self._append(layer, (out_channels, ho, wo))

    def bottleneck(self, name: str, x: str, expansion: int, out_channels: int,
                   stride: int) -> str:
        """MobileNetV2 inverted residual block (Sandler et al. 2018).

        1x1 expand to t*Cin (+BN+act) -> 3x3 depthwise, stride s (+BN+act)
        -> 1x1 linear projection to c (+BN); plus the input when s == 1 and
        Cin == c.  Sub-layers are named ``{name}.expand|dw|project`` and the
        residual sum is ``{name}``.
        """
        hidden = expansion * self.channels(x)
        h = self.conv(f"{name}.expand", x, hidden, 1)
        h = self.conv(f"{name}.dw", h, hidden, 3, stride=stride, depthwise=True)
        h = self.conv(f"{name}.project", h, out_channels, 1, linear=True)
        if stride == 1 and self.channels(x) == out_channels:
            return self.add(name, x, h)
        return h

    def stem_and_bottlenecks(self, table) -> str:
        """The front both papers share: conv3x3/2 64 -> depthwise 3x3 64 -> bottlenecks.

        ``table`` lists (t, c, n, s) rows as in the papers' Table 1: n blocks of
        expansion t and c output channels, the first with stride s.  Blocks are
        named ``blocks.0``, ``blocks.1``, ... in order.
        """
        x = self.conv("conv1", "input", 64, 3, stride=2)
        x = self.conv("conv2_dw", x, 64, 3, depthwise=True)
        block = 0
        for t, c, n, s in table:
            for i in range(n):
                x = self.bottleneck(f"blocks.{block}", x, t, c, stride=s if i == 0 else 1)
                block += 1
        return x

    def add(self, name: str, a: str, b: str) -> str:
        if self.shapes[a] != self.shapes[b]:
            raise TinyfaceError(f"{self.arch}: cannot add {self.shapes[a]} and {self.shapes[b]}")
        return self._append(Add(name, a, b), self.shapes[a])

    def flatten(self, name: str, x: str) -> str:
        size = 1
        for d in self.shapes[x]:
            size *= d
        return self._append(Flatten(name, x), (size,))

    def dense(self, name: str, x: str, out_features: int, act: str | None = None) -> str:
        (in_features,) = self.shapes[x]
        return self._append(Dense(name, x, in_features, out_features, act), (out_features,))

    def mean(self, name: str, a: str, b: str) -> str:
        if self.shapes[a] != self.shapes[b]:
            raise TinyfaceError(f"{self.arch}: cannot average {self.shapes[a]} and {self.shapes[b]}")
        return self._append(Mean(name, a, b), self.shapes[a])


def check_input_size(arch: str, input_size, stride: int = 16) -> tuple[int, int]:
    """Validate ``(H, W)`` (or an int for a square, or "HxW"): multiples of the total stride.

    Both nets halve the map four times (total stride 16), so the last map is
    H/16 x W/16; that map is what the GDConv kernel (MobileFaceNet) or the FC
    (MobiFace) covers, and it must be at least 1x1 with no rounding.
    """
    try:
        if isinstance(input_size, str):           # "112x96", as on a command line
            pair = parse_hxw(input_size) or ()
        else:
            pair = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if len(pair) != 2 or any(isinstance(d, bool) for d in pair):
            raise TypeError
        h, w = (operator.index(d) for d in pair)
    except (TypeError, ValueError):
        raise TinyfaceError(f"{arch}: input size must be (height, width) in pixels, "
                            f"got {input_size!r}") from None
    if min(h, w) < stride or h % stride or w % stride:
        raise TinyfaceError(
            f"{arch}: input size {h}x{w} is not supported: height and width must be "
            f"positive multiples of {stride} (the net downsamples by {stride}, and its last "
            f"map, H/{stride} x W/{stride}, must be at least 1x1 with no remainder)")
    return h, w
