"""A plain NumPy forward pass over a :class:`NetSpec`, in float64.

Two uses: measuring the BatchNorm running statistics of seeded weights
(:func:`tinyface.models.weights.seeded`), and, in the tests, a reference for
the ONNX graphs that shares no code with the graph builder.  (It runs the
papers' layer lists; ``tinyface.reference`` is the public one, of ONNX ops.)

Layouts: activations NCHW; conv weights (O, I/groups, kh, kw); dense weights
(out, in).  Only ``groups == 1`` and depthwise (``groups == C``) convs occur.
"""
import numpy as np

from tinyface.models.netspec import BN_EPS, Add, Conv, Dense, Flatten, Mean, NetSpec


def conv2d(x, w, stride, pad, groups):
    """Cross-correlation y[n,o,i,j] = sum_{c,u,v} w[o,c,u,v] x_pad[n,c,s*i+u,s*j+v].

    Computed as a sum over the kh*kw kernel taps of strided slices of the
    zero-padded input: a matrix product per tap for a full conv, a per-channel
    product for a depthwise one.
    """
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    if (kh, kw, stride, pad, groups) == (1, 1, 1, 0, 1):      # pointwise: one matrix product
        return np.tensordot(w[:, :, 0, 0], x, axes=(1, 1)).transpose(1, 0, 2, 3)
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    y = np.zeros((n, o, ho, wo))
    for u in range(kh):
        for v in range(kw):
            tap = xp[:, :, u:u + stride * (ho - 1) + 1:stride, v:v + stride * (wo - 1) + 1:stride]
            if groups == 1:
                y += np.tensordot(w[:, :, u, v], tap, axes=(1, 1)).transpose(1, 0, 2, 3)
            elif groups == c == o:
                y += tap * w[:, 0, u, v][None, :, None, None]
            else:
                raise ValueError(f"grouped conv with groups={groups} is not used by these nets")
    return y


def batchnorm(x, gamma, beta, mean, var):
    """Inference BatchNorm over axis 1: gamma * (x - mean) / sqrt(var + eps) + beta."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = gamma / np.sqrt(var + BN_EPS)
    return (x - mean.reshape(shape)) * scale.reshape(shape) + beta.reshape(shape)


def prelu(x, slope):
    """max(x, 0) + slope[c] * min(x, 0), with one slope per channel (axis 1)."""
    return np.where(x >= 0, x, x * slope.reshape(1, -1, 1, 1))


def inputs_of(layer):
    return (layer.a, layer.b) if isinstance(layer, (Add, Mean)) else (layer.input,)


def _conv(layer: Conv, x, weights, calibrate):
    p = {k: np.asarray(weights[f"{layer.name}.{k}"], dtype=np.float64)
         for k in ("weight", "bn.weight", "bn.bias")}
    y = conv2d(x, p["weight"], layer.stride, layer.pad, layer.groups)
    if calibrate:   # the statistics a trained net's BN would have tracked on this data
        weights[f"{layer.name}.bn.running_mean"] = y.mean(axis=(0, 2, 3)).astype(np.float32)
        weights[f"{layer.name}.bn.running_var"] = y.var(axis=(0, 2, 3)).astype(np.float32)
    mean, var = (np.asarray(weights[f"{layer.name}.bn.{k}"], dtype=np.float64)
                 for k in ("running_mean", "running_var"))
    y = batchnorm(y, p["bn.weight"], p["bn.bias"], mean, var)
    if layer.act == "prelu":
        return prelu(y, np.asarray(weights[f"{layer.name}.prelu.weight"], dtype=np.float64))
    return np.maximum(y, 0) if layer.act == "relu" else y


def _run(layer, values, weights, calibrate):
    if isinstance(layer, Conv):
        return _conv(layer, values[layer.input], weights, calibrate)
    if isinstance(layer, Add):
        return values[layer.a] + values[layer.b]
    if isinstance(layer, Mean):
        return (values[layer.a] + values[layer.b]) / 2
    if isinstance(layer, Flatten):
        x = values[layer.input]
        return x.reshape(x.shape[0], -1)
    if isinstance(layer, Dense):
        w, b = (np.asarray(weights[f"{layer.name}.{k}"], dtype=np.float64) for k in ("weight", "bias"))
        y = values[layer.input] @ w.T + b
        return np.maximum(y, 0) if layer.act == "relu" else y
    raise TypeError(f"unknown layer {layer!r}")


def forward(net: NetSpec, weights, x, outputs=None, calibrate=False):
    """Run ``net`` on ``x`` (N, 3, H, W); return ``{name: array}`` for ``outputs``.

    ``outputs`` defaults to the embedding (``net.output``).  With ``calibrate``,
    each conv's BN running mean/var are first set (in ``weights``, as float32)
    to the per-channel statistics of that conv's output on this batch.
    Tensors are freed after their last use.
    """
    wanted = set(outputs or [net.output])
    last_use = {name: i for i, layer in enumerate(net.layers) for name in inputs_of(layer)}
    values = {"input": np.asarray(x, dtype=np.float64)}
    for i, layer in enumerate(net.layers):
        values[layer.name] = _run(layer, values, weights, calibrate)
        for name in inputs_of(layer):
            if last_use[name] == i and name not in wanted:
                values.pop(name, None)
    return {name: values[name] for name in wanted}
