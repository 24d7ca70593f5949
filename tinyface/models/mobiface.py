"""MobiFace and Flipped-MobiFace (Duong et al. 2018, "MobiFace", Table 1).

Input 112x112x3, normalised as (pixel - 127.5) / 128; BN after every conv,
the activation (PReLU by default) after every conv except the linear 1x1
projections of the bottlenecks:

    conv3x3 /2, 64                                  -> 56x56x64
    depthwise conv3x3, 64                           -> 56x56x64
    bottleneck /2 -> 64,  then 2 residual at 64     -> 28x28x64
    bottleneck /2 -> 128, then 3 residual at 128    -> 14x14x128
    bottleneck /2 -> 256, then 6 residual at 256    -> 7x7x256
    conv1x1, 512                                    -> 7x7x512
    flatten, FC 512 (with bias, linear)             -> 512

Every bottleneck is the MobileNetV2 block {1x1 expand x2, depthwise 3x3,
linear 1x1} (expansion factor t = 2).  The FC covers the whole flattened
final map: (H/16)*(W/16)*512 inputs, 25088 at 112x112.

Flipped-MobiFace adds two 512-d FC+ReLU layers that map the embedding e to a
prediction of the mirrored face's embedding, f = ReLU(FC2(ReLU(FC1(e)))), and
outputs (e + f) / 2.
"""
from tinyface.models.netspec import NetSpec, check_input_size

# (expansion t, output channels c, blocks n, stride of the first block s)
BOTTLENECKS = [(2, 64, 3, 2), (2, 128, 4, 2), (2, 256, 7, 2)]


def mobiface(input_size=(112, 112), activation="prelu", flipped=False) -> NetSpec:
    """The layers of MobiFace, or Flipped-MobiFace when ``flipped``."""
    arch = "flipped-mobiface" if flipped else "mobiface"
    net = NetSpec(arch, check_input_size(arch, input_size), activation)
    x = net.stem_and_bottlenecks(BOTTLENECKS)
    x = net.conv("conv3", x, 512, 1)
    x = net.flatten("flatten", x)
    e = net.dense("fc", x, 512)
    if flipped:
        f = net.dense("flip.fc1", e, 512, act="relu")
        f = net.dense("flip.fc2", f, 512, act="relu")
        net.mean("flip.mean", e, f)
    return net


def flipped_mobiface(input_size=(112, 112), activation="prelu") -> NetSpec:
    """Flipped-MobiFace: MobiFace plus the mirrored-embedding head, output (e + f) / 2."""
    return mobiface(input_size, activation, flipped=True)
