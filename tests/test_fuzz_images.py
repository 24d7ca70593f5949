"""Fuzzing the image reader: every truncation point of small JPEG, PNG, GIF, WebP and
TIFF files, mutated bytes, random bytes behind magic numbers, headers claiming far more
pixels than their data, every PIL mode, multi-frame files and garbage EXIF orientations;
each must end in a valid RGB image (detected and embedded) or exactly one ImageError.

The seeded cases run in a watched worker (see tests/test_fuzz_models.py and
tests/fuzz_harness.py); the hypothesis tests draw sizes, modes and orientations directly.
"""
import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from tinyface.errors import ImageError
from tinyface.face.image import load_rgb
from tinyface.face.png import expected_bytes
from fuzz_harness import measure_big_cases, run_seeded
from fuzz_image_cases import PIL_MODES, encode, pixels
from kernel_testing import examples

IMAGE_KINDS = ["image_truncate", "image_bytes", "image_header", "image_modes"]


def test_seeded_mutations_of_images():
    counts, report = run_seeded(IMAGE_KINDS, scale=examples(25) // 25)
    assert report.ok["image_modes"] == counts["image_modes"]      # every valid image is read
    assert report.errors["ImageError"] > 0 and report.ok["image_truncate"] > 0


def test_decompression_bombs_are_refused_before_allocating():
    """Headers claiming 100000 x 100000 (and the like) and 9000 x 9000 (over
    MAX_IMAGE_PIXELS, under Pillow's own limit), and a real 9000 x 9000 PNG of zeros:
    refused at the default limits with the peak RSS of a fresh process watched."""
    for case in measure_big_cases("images"):
        assert case["status"] == "error" and case["label"] == "ImageError", case
        assert case["rss_mb"] < 32 and case["seconds"] < 10, case


def _png(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@settings(max_examples=examples(60), deadline=10_000)
@given(width=st.integers(0, 2**32 - 1), height=st.integers(0, 2**32 - 1))
def test_png_header_of_any_size(tmp_path_factory, width, height):
    """A PNG whose header claims any size and holds 64 bytes: refused (by the limit when it
    claims more than MAX_IMAGE_PIXELS, before decoding) or, when 64 bytes fill it, read."""
    path = tmp_path_factory.mktemp("png") / "a.png"
    path.write_bytes(_png(width, height))
    try:
        image = load_rgb(path)
    except ImageError as exc:
        if 2**26 < width * height <= 2**31:                       # beyond Pillow's own check: either message
            assert "MAX_IMAGE_PIXELS" in str(exc) or "decompression bomb" in str(exc)
        return
    assert image.shape == (height, width, 3) and expected_bytes(width, height, 8, 2, False) <= 64


@settings(max_examples=examples(60), deadline=10_000)
@given(mode=st.sampled_from(PIL_MODES), size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
       seed=st.integers(0, 2**16))
def test_pil_image_of_any_mode_and_size(mode, size, seed):
    rng = np.random.default_rng(seed)
    image = pixels(rng, size[0], size[1], mode) if mode in ("I;16", "I", "F", "LAB") else \
        Image.frombytes(mode, size[::-1], rng.bytes(len(Image.new(mode, size[::-1]).tobytes())))
    out = load_rgb(image)
    assert out.shape == (size[0], size[1], 3) and out.dtype == np.uint8


@settings(max_examples=examples(40), deadline=10_000)
@given(orientation=st.integers(0, 65535), fmt=st.sampled_from(["JPEG", "PNG", "WEBP", "TIFF"]))
def test_exif_orientation_of_any_value(orientation, fmt):
    """Orientations 5-8 swap height and width; any other value, 1 to 65535 or 0, leaves the
    image as stored."""
    data = encode(pixels(np.random.default_rng(orientation), 5, 6, "RGB"), fmt, exif_orientation=orientation)
    out = load_rgb(Image.open(io.BytesIO(data)))
    assert out.shape[:2] == ((6, 5) if 5 <= orientation <= 8 else (5, 6))


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "PNG", "WEBP"])
def test_first_frame_of_a_multi_frame_file(fmt):
    rng = np.random.default_rng(3)
    first, second = pixels(rng, 5, 6, "RGB"), pixels(rng, 5, 6, "RGB")
    data = encode(first, fmt, save_all=True, append_images=[second])
    out = load_rgb(Image.open(io.BytesIO(data)))
    assert out.shape == (5, 6, 3)
    if fmt in ("TIFF", "PNG"):                    # lossless and not palettised
        assert np.array_equal(out, np.asarray(first))
