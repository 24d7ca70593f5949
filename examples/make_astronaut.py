"""Regenerate examples/astronaut.jpg and examples/astronaut_variant.jpg from tests/data/astronaut.png.

    python examples/make_astronaut.py

The variant is the same photo mirrored, then rotated 8° counter-clockwise and
scaled by 0.8 about the image centre and shifted 40 px right and 30 px down,
on a 512×512 grey canvas: a different-looking photo of the same person.
"""
import math
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "tests" / "data" / "astronaut.png"


def variant(image: Image.Image, degrees=8.0, scale=0.8, shift=(40, 30),
            fill=(96, 96, 104)) -> Image.Image:
    """Mirror, then p' = scale·R(degrees)·(p − c) + c + shift (c the image centre)."""
    w, h = image.size
    a = math.radians(degrees)
    rotation = np.array([[math.cos(a), math.sin(a)],       # counter-clockwise on screen (y down)
                         [-math.sin(a), math.cos(a)]])
    centre = np.array([w / 2, h / 2])
    inverse = np.linalg.inv(scale * rotation)               # PIL maps output pixels back to input
    offset = centre - inverse @ (centre + np.asarray(shift, float))
    data = (*inverse[0], offset[0], *inverse[1], offset[1])
    mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return mirrored.transform((w, h), Image.Transform.AFFINE, data,
                              Image.Resampling.BICUBIC, fillcolor=fill)


if __name__ == "__main__":
    photo = Image.open(SOURCE).convert("RGB")
    photo.save(HERE / "astronaut.jpg", quality=92)
    variant(photo).save(HERE / "astronaut_variant.jpg", quality=92)
