"""Malformed images for the fuzzer (tests/fuzz_harness.py): seeds and mutations.

Seed files are made here with Pillow, a few pixels each so that trying every
truncation point stays cheap: ``RECIPES`` lists them, one per format first
(JPEG, PNG, GIF, WebP, TIFF), then other modes and options (CMYK, 16-bit,
float, palette with transparency, progressive, EXIF-rotated, multi-frame,
lossless, LZW, BMP).  Kinds of case:

* ``image_truncate``: file j cut at every length from 0 to its size, file
  after file (``truncation(i)`` maps case i to a file and a length);
* ``image_bytes``: a seed with bytes flipped, set, cut, dropped or inserted, or
  random bytes behind a format's magic number;
* ``image_header``: a seed whose header claims another size -- 0, 1, 2^14,
  65535, 2^31-1, 2^32-1 -- with far more pixels than its data holds;
* ``image_modes``: valid images that must be read: every PIL mode as a PIL
  image and in the file formats that store it, multi-frame GIF/TIFF/PNG/WebP
  whose frames differ, EXIF orientations 0-9, 255, 65535 and orientation
  tags of the wrong type or count.
"""
import io
import struct
import zlib

import numpy as np
from PIL import Image

# (format, mode, save options); frames > 1 makes an animation or multi-page file.
RECIPES = [
    ("JPEG", "RGB", {}), ("PNG", "RGB", {}), ("GIF", "P", {}), ("WEBP", "RGB", {}), ("TIFF", "RGB", {}),
    ("JPEG", "RGB", {"progressive": True}), ("JPEG", "CMYK", {}), ("JPEG", "L", {}),
    ("JPEG", "RGB", {"exif_orientation": 6}), ("PNG", "I;16", {}), ("PNG", "P", {"transparency": 0}),
    ("PNG", "LA", {}), ("PNG", "1", {}), ("PNG", "RGB", {"frames": 2}), ("GIF", "P", {"frames": 3}),
    ("WEBP", "RGBA", {"lossless": True}), ("WEBP", "RGB", {"frames": 2}), ("TIFF", "RGB", {"compression": "tiff_lzw"}),
    ("TIFF", "CMYK", {}), ("TIFF", "I;16", {}), ("TIFF", "F", {}), ("TIFF", "LAB", {}), ("TIFF", "I", {}),
    ("TIFF", "RGB", {"frames": 2}), ("BMP", "RGB", {}),
]
FIRST_OF_EACH_FORMAT = 5           # RECIPES[:5]: JPEG, PNG, GIF, WebP, TIFF

MAGIC = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"GIF87a", b"RIFF\x00\x00\x00\x00WEBPVP8 ",
         b"RIFF\x00\x00\x00\x00WEBPVP8L", b"II*\x00", b"MM\x00*", b"BM"]

PIL_MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
             "I", "I;16", "I;16L", "I;16B", "I;16N", "F"]
FILE_MODES = [("TIFF", "CMYK"), ("TIFF", "LAB"), ("TIFF", "I;16"), ("TIFF", "I"), ("TIFF", "F"),
              ("TIFF", "1"), ("TIFF", "L"), ("PNG", "I;16"), ("PNG", "1"), ("PNG", "LA"), ("PNG", "P"),
              ("PNG", "RGBA"), ("JPEG", "CMYK"), ("JPEG", "L"), ("WEBP", "RGBA"), ("GIF", "L"), ("BMP", "1")]
ORIENTATIONS = list(range(10)) + [255, 65535]


def pixels(rng, height, width, mode):
    """A PIL image of ``mode`` with random content."""
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode in ("I", "F"):
        grey = rng.integers(0, 256, (height, width)).astype(np.int32 if mode == "I" else np.float32)
        return Image.fromarray(grey)
    if mode == "LAB":
        return Image.new("LAB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
    return rgb.convert(mode)


def encode(image, fmt, frames=1, exif_orientation=None, **options):
    """``image`` written in ``fmt`` (``frames`` copies of it, each flipped from the last)."""
    out = io.BytesIO()
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif.tobytes()
    if frames > 1:
        more = [image.transpose(Image.Transpose.FLIP_LEFT_RIGHT if k % 2 == 0 else Image.Transpose.FLIP_TOP_BOTTOM)
                for k in range(frames - 1)]
        options.update(save_all=True, append_images=more)
    image.save(out, fmt, **options)
    return out.getvalue()


def seed_file(j, rng=None):
    """Seed file ``j``: RECIPES in order, 6x5 pixels the first time round, then random sizes."""
    rng = np.random.default_rng(j) if rng is None else rng
    fmt, mode, options = RECIPES[j % len(RECIPES)]
    height, width = (5, 6) if j < len(RECIPES) else (int(rng.integers(1, 9)), int(rng.integers(1, 9)))
    return encode(pixels(rng, height, width, mode), fmt, **options)


class Truncations:
    """Case i of ``image_truncate``: (file j, its first ``cut`` bytes), every cut of
    file 0, then of file 1, ...; files are made as the cases reach them."""

    def __init__(self):
        self.files, self.starts = [], [0]

    def case(self, i):
        while i >= self.starts[-1]:
            self.files.append(seed_file(len(self.files)))
            self.starts.append(self.starts[-1] + len(self.files[-1]) + 1)
        j = int(np.searchsorted(self.starts, i, side="right")) - 1
        return j, self.files[j][:i - self.starts[j]]

    def count(self, files):
        """Cases that cover every cut of the first ``files`` files."""
        self.case(sum(len(seed_file(j)) + 1 for j in range(files)) - 1)
        return self.starts[files]


def mutated_file(rng):
    """An ``image_bytes`` case: a seed mutated byte-wise, or random bytes behind a magic number."""
    from fuzz_model_cases import mutate_bytes
    if rng.random() < 0.25:
        return MAGIC[rng.integers(len(MAGIC))] + rng.bytes(int(rng.integers(0, 600)))
    return mutate_bytes(rng, seed_file(int(rng.integers(10_000)), rng))


# -- declared sizes ------------------------------------------------------------------

HUGE_SIZES = [0, 1, 2, 2**14, 2**15 - 1, 65535, 2**24, 2**31 - 1, 2**32 - 1]


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def claim_size(rng, fmt, size=None):
    """A small file of ``fmt`` whose header claims ``size`` = (width, height), by default
    two of ``HUGE_SIZES``, far beyond its data; returns (data, the size claimed)."""
    w, h = size or (int(rng.choice(HUGE_SIZES)) for _ in range(2))
    image = pixels(rng, 5, 6, "P" if fmt == "GIF" else "RGB")
    data = bytearray(encode(image, fmt))
    if fmt == "PNG":                           # IHDR, with its CRC recomputed
        ihdr = struct.pack(">II", w, h) + bytes(data[24:29])
        return bytes(data[:8] + _png_chunk(b"IHDR", ihdr) + data[33:]), (w, h)
    if fmt == "GIF":                           # logical screen and the frame's descriptor
        w, h = w & 0xFFFF, h & 0xFFFF
        data[6:10] = struct.pack("<HH", w, h)
        at = data.index(b"\x2c")
        data[at + 5:at + 9] = struct.pack("<HH", w, h)
    elif fmt == "BMP":
        w, h = min(w, 2**31 - 1), min(h, 2**31 - 1)
        data[18:26] = struct.pack("<ii", w, h)
    elif fmt == "JPEG":                        # the SOF0 frame header
        w, h = w & 0xFFFF, h & 0xFFFF
        at = data.index(b"\xff\xc0")
        data[at + 5:at + 9] = struct.pack(">HH", h, w)
    elif fmt == "TIFF":                        # ImageWidth and ImageLength as LONGs
        first = struct.unpack("<I", data[4:8])[0]
        for k in range(struct.unpack("<H", data[first:first + 2])[0]):
            at = first + 2 + 12 * k
            tag = struct.unpack("<H", data[at:at + 2])[0]
            if tag in (256, 257):
                data[at + 2:at + 12] = struct.pack("<HII", 4, 1, w if tag == 256 else h)
    elif fmt == "WEBP":                        # a lossless image: 14 bits of width-1, of height-1
        data = bytearray(encode(image, "WEBP", lossless=True))
        w, h = min(max(w, 1), 2**14), min(max(h, 1), 2**14)
        bits = (w - 1) | (h - 1) << 14 | (struct.unpack("<I", data[21:25])[0] & ~(2**28 - 1))
        data[21:25] = struct.pack("<I", bits)
    return bytes(data), (w, h)


HEADER_FORMATS = ["PNG", "GIF", "BMP", "JPEG", "TIFF", "WEBP"]


def big_image_cases(folder):
    """(what, path) of files whose headers claim far more pixels than MAX_IMAGE_PIXELS (at
    its default): each must be refused with next to nothing allocated."""
    rng = np.random.default_rng(0)
    cases = []
    beyond_pillow = [("PNG", (100_000, 100_000)), ("GIF", (65535, 65535)), ("JPEG", (65500, 65500)),
                     ("TIFF", (2**31 - 1, 2**31 - 1)), ("WEBP", (16384, 16384)), ("BMP", (2**31 - 1, 1000))]
    beyond_tinyface = [(fmt, (9000, 9000)) for fmt in HEADER_FORMATS]     # 81 Mpx: under Pillow's 89
    for fmt, size in beyond_pillow + beyond_tinyface:
        data, claimed = claim_size(rng, fmt, size)
        cases.append((f"{fmt} claiming {claimed[0]}x{claimed[1]}", data))
    rows = b"".join(b"\0" * (1 + 9000 * 3) for _ in range(9000))      # a real 9000 x 9000 of zeros
    ihdr = struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)
    cases.append(("PNG bomb: 9000x9000 zeros in ~240 KB", b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                  + _png_chunk(b"IDAT", zlib.compress(rows, 9)) + _png_chunk(b"IEND", b"")))
    paths = []
    for k, (what, data) in enumerate(cases):
        path = folder / f"big{k}"
        path.write_bytes(data)
        paths.append((what, path))
    return paths


# -- valid images in every mode ---------------------------------------------------------

def _raw_exif(kind, count, value):
    """EXIF (TIFF little-endian) with one Orientation entry of this type, count and 4 value bytes."""
    entry = struct.pack("<HHI", 0x0112, kind, count) + value
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)


BAD_ORIENTATION_TAGS = [(2, 4, b"abc\x00"), (5, 1, b"\x00\x00\x00\x00"), (3, 3, b"\x06\x00\x06\x00"),
                        (4, 1, b"\x06\x00\x00\x00"), (3, 0, b"\x00\x00\x00\x00"), (99, 1, b"\x06\x00\x00\x00"),
                        (3, 2**31, b"\x06\x00\x00\x00"), (7, 4, b"\xff\xff\xff\xff")]


def mode_cases():
    """(description, source, expected (height, width) or None when unknown) for every
    valid image of ``image_modes``; a source is a PIL image or the bytes of a file."""
    rng = np.random.default_rng(7)
    cases = []
    for mode in PIL_MODES:
        cases.append((f"PIL image in mode {mode}", Image.new(mode, (6, 5)), (5, 6)))
    for fmt, mode in FILE_MODES:
        cases.append((f"{fmt} in mode {mode}", encode(pixels(rng, 5, 6, mode), fmt), (5, 6)))
    gif = [pixels(rng, h, w, "P") for h, w in ((5, 6), (9, 2), (1, 1))]
    cases.append(("GIF, frames of different sizes", encode(gif[0], "GIF", save_all=True, append_images=gif[1:]),
                  (5, 6)))
    pages = [pixels(rng, 5, 6, "RGB"), pixels(rng, 40, 30, "L"), pixels(rng, 2, 2, "CMYK"), pixels(rng, 3, 3, "F")]
    cases.append(("TIFF, pages of different sizes and modes",
                  encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]), (5, 6)))
    for fmt in ("PNG", "WEBP", "GIF", "TIFF"):
        cases.append((f"{fmt}, 3 frames", encode(pixels(rng, 5, 6, "RGB"), fmt, frames=3), (5, 6)))
    for fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        for value in ORIENTATIONS:
            turned = 5 <= value <= 8
            cases.append((f"{fmt}, EXIF orientation {value}",
                          encode(pixels(rng, 5, 6, "RGB"), fmt, exif_orientation=value), (6, 5) if turned else (5, 6)))
    for kind, count, value in BAD_ORIENTATION_TAGS:
        exif = _raw_exif(kind, count, value)
        cases.append((f"JPEG, orientation tag of type {kind}, count {count}",
                      encode(pixels(rng, 5, 6, "RGB"), "JPEG", exif=exif), None))
    return cases
