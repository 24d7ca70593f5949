"""A check Pillow lacks: that a PNG file's pixel data fills the image its header declares.

A PNG image is one zlib stream split over ``IDAT`` chunks.  Inflated, it holds
every row of the image, each a filter-type byte followed by the row's packed
samples: ``height × (1 + ⌈width · channels · bit_depth / 8⌉)`` bytes, or for an
Adam7-interlaced image the same sum over the seven reduced images (passes).

Pillow (13.0) stops without complaint when that stream ends early on a row
boundary: the rows after it are left zero and the image is "read".  A photo
cut short that way would be embedded as a half-black face, a silent wrong
answer, so :func:`check_png_data` inflates the stream once more, counting bytes
and keeping none, and raises an :class:`~tinyface.errors.ImageError` when it
holds fewer than the header declares.  It runs after Pillow has decoded the
file, so the chunk structure has already been read once; it stops counting as
soon as the image is full.  Its cost is one more inflate of the image data.
"""
import struct
import zlib

from tinyface.errors import ImageError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}          # colour type -> samples per pixel
# Adam7 passes: first column, first row, column step, row step.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PIECE = 1 << 20                                      # bytes inflated per step


def expected_bytes(width, height, bit_depth, colour_type, interlaced) -> int:
    """Bytes of the inflated image data of a PNG with this header (filter bytes included)."""
    bits = _CHANNELS[colour_type] * bit_depth

    def size(w, h):
        return h * (1 + (w * bits + 7) // 8) if w > 0 and h > 0 else 0
    if not interlaced:
        return size(width, height)
    return sum(size((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy)
               for x0, y0, dx, dy in _ADAM7)


def check_png_data(f, name) -> None:
    """Raise ImageError if the PNG in binary file ``f`` holds less image data than its header declares.

    ``name`` is for the message.  ``f`` is read from its start; its position is left anywhere.
    """
    f.seek(0)
    head = f.read(33)
    if len(head) < 33 or head[:8] != PNG_MAGIC or head[8:16] != b"\0\0\0\x0dIHDR":
        raise ImageError(f"cannot read image '{name}': corrupt PNG header")
    width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    if colour_type not in _CHANNELS:
        raise ImageError(f"cannot read image '{name}': PNG colour type {colour_type} is not defined")
    need = expected_bytes(width, height, bit_depth, colour_type, interlace == 1)
    have = _inflated_size(f, need, name)
    if have < need:
        raise ImageError(f"cannot read image '{name}': truncated image data (the PNG holds "
                         f"{have} of the {need} bytes of pixel rows its {width}x{height} header declares)")


def _inflated_size(f, need, name) -> int:
    """Inflate the IDAT chunks after the header (``f`` placed after IHDR), stopping at ``need`` bytes."""
    inflate, have = zlib.decompressobj(), 0
    while have < need and not inflate.eof:
        kind_length = f.read(8)
        if len(kind_length) < 8:
            break
        length, kind = struct.unpack(">I4s", kind_length)
        if kind == b"IEND":
            break
        if kind != b"IDAT":
            f.seek(length + 4, 1)                     # the chunk's data and its CRC
            continue
        data = f.read(length)
        f.seek(4, 1)
        try:
            while have < need and not inflate.eof:    # until the chunk's input and output are spent
                out = inflate.decompress(data, _PIECE)
                data, have = inflate.unconsumed_tail, have + len(out)
                if not data and not out:
                    break
        except zlib.error as exc:
            raise ImageError(f"cannot read image '{name}': corrupt PNG image data ({exc})") from exc
    return have
