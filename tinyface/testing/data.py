"""Random test data: float32 arrays, and ONNX activations in the epilogue's (slope, lo, hi) form.

Plain NumPy (a ``numpy.random.Generator`` gives the values); the hypothesis
strategies in ``tinyface.testing.strategies`` draw the shapes and seeds.
"""
import numpy as np

ACTIVATIONS = ("identity", "relu", "relu6", "leaky", "prelu", "clip")


def activation_params(kind, channels, rng, exact=False):
    """(slope[channels], lo, hi) as float32 for one ONNX activation ``kind``.

    identity: (1, -inf, inf); Relu: (0, -inf, inf); Relu6 = Clip(0, 6):
    (1, 0, 6); LeakyRelu(alpha): (alpha, -inf, inf) on every channel; PRelu:
    (learned per-channel slopes, -inf, inf); Clip(lo, hi): (1, lo, hi).
    Random parameters are drawn from ``rng``; with ``exact`` they are rounded
    to multiples of 1/4, so that on small-integer data no float32 operation
    rounds (see ``values``).
    """
    inf = np.float32(np.inf)
    ones = np.ones(channels, np.float32)
    if kind == "identity":
        slope, lo, hi = ones, -inf, inf
    elif kind == "relu":
        slope, lo, hi = 0 * ones, -inf, inf
    elif kind == "relu6":
        slope, lo, hi = ones, 0.0, 6.0
    elif kind == "leaky":
        slope, lo, hi = rng.choice([0.01, 0.1, 0.2]) * ones, -inf, inf
    elif kind == "prelu":   # learned slopes: usually in (0, 1), but any sign or size is allowed
        slope, lo, hi = rng.uniform(-0.5, 1.5, channels), -inf, inf
    elif kind == "clip":
        lo = rng.uniform(-1.0, 0.25)
        slope, hi = ones, lo + rng.uniform(0.0, 1.0)
    else:
        raise ValueError(f"unknown activation {kind!r}; one of {ACTIVATIONS}")
    if exact:
        slope, lo, hi = (np.round(np.float64(v) * 4) / 4 for v in (slope, lo, hi))
    return np.asarray(slope, np.float32), np.float32(lo), np.float32(hi)


def values(rng, shape, exact=False):
    """float32 test data: U[-1, 1], or with ``exact`` integers in [-3, 3] (float32
    sums and products of those stay exact far beyond the sizes tested)."""
    v = rng.integers(-3, 4, shape) if exact else rng.uniform(-1, 1, shape)
    return v.astype(np.float32)


def random_epilogue(kinds, channels, out_shape, rng, exact=False):
    """(bias, act1, residual or None, act2) for ``kinds`` = (act1 kind, has residual, act2 kind)."""
    kind1, has_res, kind2 = kinds
    bias = values(rng, channels, exact)
    act1 = activation_params(kind1, channels, rng, exact)
    res = values(rng, out_shape, exact) if has_res else None
    act2 = activation_params(kind2, channels, rng, exact)
    return bias, act1, res, act2
