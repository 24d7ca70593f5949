"""Inputs for the tools: random tensors of a model's declared input shapes, or aligned faces."""
import copy
from dataclasses import replace

import numpy as np

from tinyface.errors import InputError


def input_shape(value_info, batch, input_size=None):
    """The concrete shape of a declared graph input: ``batch`` images, and ``input_size``
    (H, W) for the spatial axes of a 4-D input (needed when they are not fixed)."""
    dims = [batch] + list(value_info.shape[1:])
    if input_size is not None and len(dims) == 4:
        fixed = [d for d in dims[2:] if d is not None]
        if fixed and tuple(dims[2:]) != tuple(input_size):
            raise InputError(f"input '{value_info.name}' has fixed size {dims[2]}x{dims[3]}, "
                             f"not {input_size[0]}x{input_size[1]}")
        dims[2:] = input_size
    if None in dims:
        raise InputError(f"input '{value_info.name}' has free dimensions {value_info.shape}: "
                         f"give an input size (--input-size HxW)")
    return tuple(dims)


def random_feed(inputs, batch, input_size=None, seed=0):
    """{name: float32 array} for the declared ``inputs`` ([ValueInfo]): uniform in [-1, 1],
    the range of the papers' normalised pixels, from ``seed``."""
    rng = np.random.default_rng(seed)
    return {vi.name: rng.uniform(-1, 1, input_shape(vi, batch, input_size)).astype(np.float32) for vi in inputs}


def face_feed(model, faces, input_size=None):
    """The feed of a one-input face model for aligned face images (resized, with a warning,
    when they are not the model's input size; ``input_size`` for models without one)."""
    if len(model.input_names) != 1:
        raise InputError(f"model has inputs {model.input_names}; faces can feed only a one-input model")
    if model.info.input_size is None and input_size is not None:
        model = copy.copy(model)
        model.info = replace(model.info, input_size=tuple(input_size))
    return {model.input_names[0]: model.preprocess(faces)}
