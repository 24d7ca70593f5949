"""Test photos with several faces, made from the public-domain astronaut photo.

    from photos import collage, Paste
    image = collage(1600, 1067, [Paste(0.9, 300, 200), Paste(0.5, 1100, 400, mirror=True, angle=12)])

``tests/data/astronaut.png`` (NASA's portrait of Eileen Collins, 512×512,
public domain) is the only source: the background is its lower part (suit,
helmet, flag; no face) stretched over the canvas and dimmed, and each
``Paste`` puts a copy of her head and shoulders (``PORTRAIT``) on it, scaled,
optionally mirrored and rotated, so that the face's centre lands at (x, y).  Later pastes cover earlier ones, so
faces can be crowded and overlapping.  Everything is deterministic (PIL's
bicubic resampling, no randomness).
"""
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

ASTRONAUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "astronaut.png"
FACE_WIDTH = 0.2          # the astronaut's face is about a fifth of her photo's width,
FACE_CENTRE = (225, 125)  # centred here (pixels of the 512×512 photo),
PORTRAIT = (105, 0, 345, 270)    # in this head-and-shoulders box (left, top, right, bottom)


class Paste(NamedTuple):
    scale: float           # the photo scaled to 512·scale pixels wide (face: FACE_WIDTH of that)
    x: float               # where the face's centre goes on the canvas
    y: float
    mirror: bool = False
    angle: float = 0.0     # degrees, counter-clockwise


def astronaut() -> Image.Image:
    return Image.open(ASTRONAUT).convert("RGB")


def background(width: int, height: int) -> Image.Image:
    """The astronaut photo's lower 45 % (no face) stretched to width×height, at 70 % brightness."""
    photo = astronaut()
    lower = photo.crop((0, int(0.55 * photo.height), photo.width, photo.height))
    return Image.eval(lower.resize((width, height), Image.BICUBIC), lambda v: int(v * 0.7))


def collage(width: int, height: int, pastes) -> np.ndarray:
    """A uint8 height×width×3 RGB photo: the background with ``pastes`` on it, in order."""
    canvas = background(width, height)
    portrait = astronaut().crop(PORTRAIT)
    centre_x, centre_y = (PORTRAIT[0] + PORTRAIT[2]) / 2, (PORTRAIT[1] + PORTRAIT[3]) / 2
    for p in pastes:
        size = (max(1, round(portrait.width * p.scale)), max(1, round(portrait.height * p.scale)))
        copy = portrait.resize(size, Image.BICUBIC)
        if p.mirror:
            copy = copy.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        dx = (FACE_CENTRE[0] - centre_x) * p.scale * (-1 if p.mirror else 1)
        dy = (FACE_CENTRE[1] - centre_y) * p.scale
        mask = Image.new("L", copy.size, 255)
        if p.angle:
            copy = copy.rotate(p.angle, Image.BICUBIC, expand=True)
            mask = mask.rotate(p.angle, Image.BICUBIC, expand=True)
            c, s = np.cos(np.radians(p.angle)), np.sin(np.radians(p.angle))
            dx, dy = dx * c + dy * s, -dx * s + dy * c      # the face's offset from the centre, turned
        left, top = p.x - dx - copy.width / 2, p.y - dy - copy.height / 2
        canvas.paste(copy, (round(left), round(top)), mask)
    return np.asarray(canvas)
