"""tinyface.face.png: the PNG data-length check, against PNG files written here row by row."""
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from tinyface.errors import ImageError
from tinyface.face.image import load_rgb
from tinyface.face.png import expected_bytes
from kernel_testing import examples

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_file(rgb, interlaced=False, keep=None):
    """An 8-bit RGB PNG of ``rgb`` (H×W×3 uint8), filter 0 on every row; ``keep`` cuts the
    inflated data to its first ``keep`` bytes before compressing it."""
    height, width, _ = rgb.shape
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    raw = b"".join(b"\0" + row.tobytes() for x0, y0, dx, dy in passes
                   for row in rgb[y0::dy, x0::dx] if row.size)
    raw = raw if keep is None else raw[:keep]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, int(interlaced))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def test_expected_bytes_counts_rows_and_filter_bytes():
    assert expected_bytes(5, 3, 8, 2, False) == 3 * (1 + 15)
    assert expected_bytes(9, 2, 1, 0, False) == 2 * (1 + 2)        # 9 one-bit samples: 2 bytes
    assert expected_bytes(3, 3, 16, 6, False) == 3 * (1 + 24)
    # 1x1 interlaced: only the first pass holds a pixel
    assert expected_bytes(1, 1, 8, 2, True) == 1 + 3


@settings(max_examples=examples(40), deadline=10_000)
@given(width=st.integers(1, 20), height=st.integers(1, 20), interlaced=st.booleans(), seed=st.integers(0, 99))
def test_whole_files_read_as_written(tmp_path_factory, width, height, interlaced, seed):
    """Files of every size, plain and Adam7: Pillow decodes them to the pixels written, and
    expected_bytes equals the length of the data written."""
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = png_file(rgb, interlaced)
    path = tmp_path_factory.mktemp("png") / "a.png"
    path.write_bytes(data)
    np.testing.assert_array_equal(load_rgb(path), rgb)
    written = len(zlib.decompress(data[41:-16]))
    assert expected_bytes(width, height, 8, 2, interlaced) == written


@settings(max_examples=examples(40), deadline=10_000)
@given(width=st.integers(1, 20), height=st.integers(2, 20), interlaced=st.booleans(), data=st.data())
def test_data_cut_short_is_refused(tmp_path_factory, width, height, interlaced, data):
    """Cut anywhere, on row boundaries too (where Pillow zeroes the rest without complaint):
    an ImageError naming the file and the byte counts."""
    need = expected_bytes(width, height, 8, 2, interlaced)
    keep = data.draw(st.integers(0, need - 1))
    path = tmp_path_factory.mktemp("png") / "a.png"
    path.write_bytes(png_file(np.full((height, width, 3), 200, np.uint8), interlaced, keep))
    with pytest.raises(ImageError, match="a.png") as err:
        load_rgb(path)
    message = str(err.value)
    assert "truncated" in message or "corrupt" in message


def test_row_boundary_cut_that_pillow_reads(tmp_path):
    """The case the check exists for: Pillow itself reads this file, with its last rows zero."""
    path = tmp_path / "cut.png"
    path.write_bytes(png_file(np.full((6, 4, 3), 200, np.uint8), keep=4 * (1 + 12)))
    with Image.open(path) as im:
        im.load()
        assert np.asarray(im)[4:].max() == 0
    with pytest.raises(ImageError, match=r"holds 52 of the 78 bytes .* 4x6 header"):
        load_rgb(path)


def test_data_after_the_image_is_ignored(tmp_path):
    """More inflated bytes than the header declares: read as Pillow reads it."""
    rgb = np.full((3, 3, 3), 9, np.uint8)
    ihdr = struct.pack(">IIBBBBB", 3, 3, 8, 2, 0, 0, 0)
    raw = b"".join(b"\0" + row.tobytes() for row in rgb) + b"\0" * 50
    path = tmp_path / "long.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    np.testing.assert_array_equal(load_rgb(path), rgb)


def test_data_split_over_many_chunks(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (30, 30, 3), dtype=np.uint8)
    whole = png_file(rgb)
    stream = whole[41:-16]
    pieces = b"".join(chunk(b"IDAT", stream[i:i + 7]) for i in range(0, len(stream), 7))
    path = tmp_path / "split.png"
    path.write_bytes(whole[:33] + chunk(b"tEXt", b"k\0v") + pieces + chunk(b"IEND", b""))
    np.testing.assert_array_equal(load_rgb(path), rgb)
