"""load_rgb / resize_rgb / save_rgb: every kind of odd or broken input."""
import os
import pathlib
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from tinyface.errors import ImageError
from tinyface.face.image import load_rgb, resize_rgb, save_rgb

FACE = pathlib.Path(__file__).parent / "data" / "lfw_0_fn_0_aligned.jpg"
RNG = np.random.default_rng(1234)
PIXELS = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)


def check_rgb(a, shape):
    assert a.dtype == np.uint8 and a.shape == shape and a.flags.c_contiguous


def load_quietly(source):
    """load_rgb, failing the test on any warning PIL might emit."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_rgb(source)


# --- arrays and PIL images --------------------------------------------------

def test_rgb_array_is_copied_and_made_contiguous():
    view = PIXELS[::2, ::-1]
    out = load_rgb(view)
    check_rgb(out, (12, 32, 3))
    assert np.array_equal(out, view) and not np.shares_memory(out, PIXELS)


def test_grey_and_rgba_arrays():
    grey = PIXELS[:, :, 0]
    assert np.array_equal(load_rgb(grey), np.dstack([grey] * 3))
    rgba = np.dstack([PIXELS, np.zeros((24, 32), np.uint8)])
    assert np.array_equal(load_rgb(rgba), PIXELS)  # alpha dropped, not composited


@pytest.mark.parametrize("bad", [
    np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 3), np.uint16),
    np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 5), np.uint8),
    np.zeros((1, 4, 4, 3), np.uint8), np.zeros(12, np.uint8),
])
def test_bad_arrays_name_shape_and_dtype(bad):
    with pytest.raises(ImageError) as err:
        load_rgb(bad)
    assert str(bad.shape) in str(err.value) and str(bad.dtype) in str(err.value)


@pytest.mark.parametrize("shape", [(0, 4, 3), (4, 0), (0, 0, 4)])
def test_empty_arrays(shape):
    with pytest.raises(ImageError, match="empty"):
        load_rgb(np.zeros(shape, np.uint8))


def test_zero_size_pil_image():
    with pytest.raises(ImageError, match=r"zero-size image \(0x0\)"):
        load_rgb(Image.new("RGB", (0, 0)))


def test_unsupported_source_type():
    with pytest.raises(ImageError, match="from type int"):
        load_rgb(42)


@pytest.mark.parametrize("mode, value, expected", [
    ("1", 1, 255), ("L", 77, 77), ("LA", (77, 0), 77), ("I;16", 65535, 255),
    ("I;16", 257 * 9, 9), ("I", 70000, 255), ("I", -5, 0), ("F", 99.4, 99),
    ("F", 300.0, 255), ("F", float("nan"), 0),
])
def test_pil_grey_modes(mode, value, expected):
    out = load_quietly(Image.new(mode, (3, 2), value))
    check_rgb(out, (2, 3, 3))
    assert (out == expected).all()


@pytest.mark.parametrize("mode, value", [
    ("RGBA", (10, 20, 30, 0)), ("RGBX", (10, 20, 30, 0)), ("CMYK", (0, 255, 255, 0)),
    ("YCbCr", (100, 128, 128)), ("HSV", (0, 255, 255)),
])
def test_pil_colour_modes(mode, value):
    out = load_quietly(Image.new(mode, (3, 2), value))
    expected = np.array(Image.new(mode, (1, 1), value).convert("RGB"))[0, 0]
    assert (out == expected).all()
    if mode == "CMYK":
        assert tuple(expected) == (255, 0, 0)


def test_lazily_opened_truncated_pil_image(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(PIXELS).save(path)
    path.write_bytes(path.read_bytes()[:-40])
    with Image.open(path) as im, pytest.raises(ImageError, match="'<PIL image>': truncated"):
        load_rgb(im)


# --- files: good ones in every mode -------------------------------------------

def test_real_face_file_str_and_path():
    out = load_rgb(FACE)
    check_rgb(out, (112, 112, 3))
    assert np.array_equal(out, load_rgb(str(FACE)))
    assert 40 < out.mean() < 220  # a real photo, not a blank


def test_png_roundtrip_is_exact(tmp_path):
    save_rgb(PIXELS, tmp_path / "a.png")
    assert np.array_equal(load_rgb(tmp_path / "a.png"), PIXELS)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGBA", "P"])
def test_png_modes(tmp_path, mode):
    im = Image.fromarray(PIXELS).convert(mode)
    im.save(tmp_path / "m.png")
    out = load_quietly(tmp_path / "m.png")
    assert np.array_equal(out, np.array(im.convert("RGB")))


def test_palette_png_with_transparency(tmp_path):
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.save(tmp_path / "p.png", transparency=1)  # the main colour is transparent
    out = load_quietly(tmp_path / "p.png")
    assert tuple(out[1, 1]) == (200, 100, 50) and tuple(out[0, 0]) == (0, 0, 0)


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    out = load_rgb(tmp_path / "c.jpg")
    assert np.abs(out.astype(int) - [255, 0, 0]).max() <= 8


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    v = np.array([[0, 1, 128, 129, 257, 1000], [32768, 40000, 65000, 65279, 65534, 65535]],
                 dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
    out = load_rgb(tmp_path / "g16.png")
    assert np.array_equal(out[:, :, 0], np.rint(v / 257.0).astype(np.uint8))


def test_sixteen_bit_big_endian_and_32_bit_tiff(tmp_path):
    v = np.array([[0, 5000, 40000, 65535]], dtype=np.uint16)
    Image.frombytes("I;16B", (4, 1), v.astype(">u2").tobytes()).save(tmp_path / "b.tif")
    assert np.array_equal(load_rgb(tmp_path / "b.tif")[0, :, 1], [0, 19, 156, 255])
    Image.fromarray(np.array([[-3, 257, 70000]], np.int32)).save(tmp_path / "i.tif")
    assert np.array_equal(load_rgb(tmp_path / "i.tif")[0, :, 2], [0, 1, 255])


def test_float_tiff_is_on_the_0_255_scale(tmp_path):
    v = np.array([[-1.0, 0.4, 0.6, 127.2, 254.7, 1e9]], np.float32)
    Image.fromarray(v, "F").save(tmp_path / "f.tif")
    assert np.array_equal(load_rgb(tmp_path / "f.tif")[0, :, 0], [0, 0, 1, 127, 255, 255])


def test_exif_orientation_is_applied(tmp_path):
    im = np.zeros((20, 40, 3), np.uint8)
    im[:, :20] = (255, 0, 0)  # left half red, right half blue
    im[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(im).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_rgb(tmp_path / "rot.jpg")
    check_rgb(out, (40, 20, 3))
    assert out[5, 10, 0] > 200 and out[5, 10, 2] < 50   # top is the red half
    assert out[35, 10, 2] > 200 and out[35, 10, 0] < 50  # bottom is the blue half


def test_only_first_frame_of_animation(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in [(255, 0, 0), (0, 255, 0)]]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert tuple(load_rgb(tmp_path / "a.gif")[0, 0]) == (255, 0, 0)


# --- files: bad ones ------------------------------------------------------------

def expect_error(path, pattern):
    with pytest.raises(ImageError) as err:
        load_rgb(path)
    message = str(err.value)
    assert f"'{path}'" in message and "\n" not in message
    assert pattern in message, message


@pytest.mark.parametrize("ext, keep", [("jpg", 0.5), ("jpg", 0.9), ("png", 0.5), ("png", 0.95)])
def test_truncated_files(tmp_path, ext, keep):
    path = tmp_path / f"cut.{ext}"
    Image.fromarray(PIXELS).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    expect_error(path, "truncated or corrupt")


def test_corrupt_png_checksum(tmp_path):
    path = tmp_path / "bad.png"
    Image.fromarray(PIXELS).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    expect_error(path, "truncated or corrupt")


def test_corrupt_jpeg_header(tmp_path):
    path = tmp_path / "bad.jpg"
    Image.fromarray(PIXELS).save(path)
    data = path.read_bytes()
    sof = data.index(b"\xff\xc0")
    path.write_bytes(data[:sof + 2] + b"\x00\x00" + data[sof + 4:])  # SOF length 0
    with pytest.raises(ImageError, match="bad.jpg"):
        load_rgb(path)


def test_random_bytes_text_and_empty(tmp_path):
    (tmp_path / "noise.jpg").write_bytes(RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (tmp_path / "notes.png").write_text("not a picture\n")
    (tmp_path / "empty.jpg").write_bytes(b"")
    expect_error(tmp_path / "noise.jpg", "not an image")
    expect_error(tmp_path / "notes.png", "not an image")
    expect_error(tmp_path / "empty.jpg", "empty file")


def test_missing_file_and_directory(tmp_path):
    expect_error(tmp_path / "nope.jpg", "no such file")
    expect_error(str(tmp_path / "nope.jpg"), "no such file")
    os.mkdir(tmp_path / "dir.png")
    expect_error(tmp_path / "dir.png", "is a directory")


def test_zero_size_png_header(tmp_path):
    path = tmp_path / "zero.png"
    Image.fromarray(PIXELS).save(path)
    data = bytearray(path.read_bytes())
    data[16:20] = b"\x00\x00\x00\x00"  # IHDR width = 0 (PIL refuses to identify it)
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="zero.png"):
        load_rgb(path)


@pytest.mark.parametrize("limit", [300, 500])  # beyond 2x the limit PIL raises; beyond 1x it warns
def test_decompression_bomb(tmp_path, monkeypatch, limit):
    Image.fromarray(PIXELS).save(tmp_path / "big.png")  # 768 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    expect_error(tmp_path / "big.png", "decompression bomb")


# --- resize and save ------------------------------------------------------------

def test_resize_shapes_and_constant_image():
    out = resize_rgb(PIXELS, (10, 7))
    check_rgb(out, (10, 7, 3))
    flat = np.full((30, 40, 3), (9, 99, 199), np.uint8)
    assert (resize_rgb(flat, (13, 71)) == [9, 99, 199]).all()
    assert np.array_equal(resize_rgb(PIXELS, (24, 32)), PIXELS)


def test_resize_keeps_a_ramp_monotone():
    ramp = np.repeat(np.repeat(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], 8, 0), 3, 2)
    out = resize_rgb(ramp, (4, 21))[:, :, 0].astype(int)
    assert (np.diff(out, axis=1) > 0).all()


@pytest.mark.parametrize("size", [(0, 5), (5, -1), (5,), (2.5, 3), "ab", None])
def test_resize_bad_size(size):
    with pytest.raises(ImageError, match="size"):
        resize_rgb(PIXELS, size)


def test_save_errors(tmp_path):
    with pytest.raises(ImageError, match="unknown.xyz"):
        save_rgb(PIXELS, tmp_path / "unknown.xyz")
    with pytest.raises(ImageError, match="no-dir"):
        save_rgb(PIXELS, tmp_path / "no-dir" / "a.png")


def test_save_jpeg_is_close(tmp_path):
    face = load_rgb(FACE)
    save_rgb(face, tmp_path / "a.jpg")
    assert np.abs(load_rgb(tmp_path / "a.jpg").astype(int) - face).mean() < 2


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9),
                                  st.sampled_from([3, 4]))))
def test_png_roundtrip_property(tmp_path_factory, image):
    path = tmp_path_factory.mktemp("rt") / "x.png"
    save_rgb(image, path)
    assert np.array_equal(load_rgb(path), image[:, :, :3])


# --- found by the fuzzer (tests/test_fuzz_images.py) -------------------------------

def test_premultiplied_grey_alpha_pil_image():
    """Before: 'cannot convert mode La to RGB'."""
    out = load_quietly(Image.new("La", (3, 2), (80, 255)))
    check_rgb(out, (2, 3, 3))
    assert (out == 80).all()


def _cut_lzw_tiff(tmp_path):
    """An LZW TIFF cut in half: Pillow warns 'Corrupt EXIF data' on the way to failing."""
    Image.fromarray(PIXELS[:5, :6]).save(tmp_path / "c.tif", compression="tiff_lzw")
    data = (tmp_path / "c.tif").read_bytes()
    (tmp_path / "c.tif").write_bytes(data[:len(data) // 2])
    return tmp_path / "c.tif"


def test_pillow_warnings_about_a_file_are_not_passed_on(tmp_path):
    """Before: two 'Corrupt EXIF data' warnings escaped, which the command line printed
    as two more lines after its error."""
    path = _cut_lzw_tiff(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError):
            load_rgb(path)
    assert not caught


def _tiff_with_entry(tmp_path, tag, kind, count, value, **options):
    """A small TIFF whose IFD entry ``tag`` is replaced by (kind, count, value as a SHORT)."""
    import struct
    Image.fromarray(PIXELS[:5, :6]).save(tmp_path / "t.tif", **options)
    data = bytearray((tmp_path / "t.tif").read_bytes())
    first = struct.unpack("<I", data[4:8])[0]
    for k in range(struct.unpack("<H", data[first:first + 2])[0]):
        at = first + 2 + 12 * k
        if struct.unpack("<H", data[at:at + 2])[0] == tag:
            data[at + 2:at + 12] = struct.pack("<HIHH", kind, count, value, 0)
    (tmp_path / "t.tif").write_bytes(bytes(data))
    return tmp_path / "t.tif"


def test_libtiff_complaints_do_not_reach_stderr(tmp_path, capfd):
    """Before: libtiff printed 'TIFFFetchNormalTag: Incorrect count for "RowsPerStrip"'
    straight to the process's stderr: a second line under the command line's error."""
    from tinyface.cli.main import main
    path = _tiff_with_entry(tmp_path, 278, 3, 2, 5, compression="tiff_lzw")      # RowsPerStrip, 2 values
    capfd.readouterr()
    with pytest.raises(ImageError):
        load_rgb(path)
    assert capfd.readouterr().err == ""
    assert main(["embed", "--aligned", str(path)]) == 2
    err = capfd.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("tinyface: error: cannot read image")


def test_pillow_log_messages_do_not_reach_the_command_line(tmp_path):
    """Before: Pillow's logger.error('More samples per pixel than can be decoded: 256')
    reached stderr through logging's last-resort handler, above the error line.  (Run in
    a process of its own: pytest captures logging.)"""
    import subprocess
    import sys
    path = _tiff_with_entry(tmp_path, 277, 3, 1, 256)                            # SamplesPerPixel
    run = subprocess.run([sys.executable, "-m", "tinyface.cli.main", "embed", "--aligned", str(path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [f"tinyface: error: cannot read image '{path}': not an image "
                                       f"(unknown or unsupported format)"]


def test_stderr_is_restored_after_reading_tiffs(tmp_path, capfd):
    Image.fromarray(PIXELS).save(tmp_path / "ok.tif")
    load_rgb(tmp_path / "ok.tif")
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"


def test_pixel_limit_is_checked_on_the_header(tmp_path, monkeypatch):
    """Before: only PIL's own limit (89 Mpx, warning; 179 Mpx, error) applied: an 8000 x
    8000 PNG of 187 KB decoded to a 915 MB peak."""
    Image.fromarray(PIXELS).save(tmp_path / "a.png")                    # 32 x 24 = 768 pixels
    monkeypatch.setenv("TINYFACE_MAX_IMAGE_PIXELS", "767")
    with pytest.raises(ImageError, match="32x24 needs 768 pixels, more than MAX_IMAGE_PIXELS = 767"):
        load_rgb(tmp_path / "a.png")
    with pytest.raises(ImageError, match="MAX_IMAGE_PIXELS"):
        load_rgb(Image.fromarray(PIXELS))
    monkeypatch.setenv("TINYFACE_MAX_IMAGE_PIXELS", "768")
    check_rgb(load_rgb(tmp_path / "a.png"), (24, 32, 3))


def test_a_pil_image_is_not_turned_in_place(tmp_path):
    """Files are turned upright in place (one copy fewer); a caller's PIL image is not."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(PIXELS).save(tmp_path / "r.jpg", exif=exif)
    with Image.open(tmp_path / "r.jpg") as im:
        check_rgb(load_rgb(im), (32, 24, 3))
        assert im.size == (32, 24)
    check_rgb(load_rgb(tmp_path / "r.jpg"), (32, 24, 3))
