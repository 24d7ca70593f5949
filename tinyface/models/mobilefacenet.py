"""MobileFaceNet (Chen et al. 2018, "MobileFaceNets", Table 1).

Input 112x112 (or 112x96, 96x96), normalised as (pixel - 127.5) / 128:

    conv3x3 /2, 64              + BN + act      -> 56x56x64
    depthwise conv3x3, 64       + BN + act      -> 56x56x64
    bottlenecks (t, c, n, s) = (2,64,5,2) (4,128,1,2) (2,128,6,1) (4,128,1,2) (2,128,2,1)
                                                -> 7x7x128
    conv1x1, 512                + BN + act      -> 7x7x512
    linear GDConv 7x7, 512 (depthwise, no pad)  + BN  -> 1x1x512
    linear conv1x1, 128         + BN            -> 1x1x128 -> flatten -> 128

Each bottleneck group repeats an inverted residual block n times, the first
with stride s and the rest with stride 1 (see :meth:`NetSpec.bottleneck`).
The GDConv kernel is the whole final map, H/16 x W/16.

Variants (the paper's Section 4):
  * ``m``: MobileFaceNet-M drops the final linear 1x1 conv; the 512-d GDConv
    output is the embedding.
  * ``s``: MobileFaceNet-S also drops the 1x1 conv 512 before GDConv, so GDConv
    runs on the 128-channel map and the embedding is 128-d.
"""
from tinyface.models.netspec import NetSpec, check_input_size

BOTTLENECKS = [(2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1)]
VARIANTS = {"": "mobilefacenet", "m": "mobilefacenet-m", "s": "mobilefacenet-s"}


def mobilefacenet(input_size=(112, 112), activation="prelu", variant="") -> NetSpec:
    """The layers of MobileFaceNet (``variant`` "", "m" or "s") for ``input_size`` (H, W)."""
    arch = VARIANTS[variant]
    net = NetSpec(arch, check_input_size(arch, input_size), activation)
    x = net.stem_and_bottlenecks(BOTTLENECKS)
    if variant != "s":
        x = net.conv("conv3", x, 512, 1)
    channels, h, w = net.shapes[x]
    x = net.conv("gdconv", x, channels, (h, w), pad=0, depthwise=True, linear=True)
    if variant == "":
        x = net.conv("linear", x, 128, 1, linear=True)
    net.flatten("flatten", x)
    return net


def mobilefacenet_m(input_size=(112, 112), activation="prelu") -> NetSpec:
    """MobileFaceNet-M: MobileFaceNet without the final linear 1x1 conv (512-d output)."""
    return mobilefacenet(input_size, activation, variant="m")


def mobilefacenet_s(input_size=(112, 112), activation="prelu") -> NetSpec:
    """MobileFaceNet-S: MobileFaceNet-M without the 1x1 conv 512 (GDConv on 128 channels)."""
    return mobilefacenet(input_size, activation, variant="s")
