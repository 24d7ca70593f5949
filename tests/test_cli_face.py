"""The face subcommands, in process: detect, align, and embed/verify on raw photos.

Every run goes through ``tinyface.cli.main.main`` and is checked for its exit
code and for never printing a traceback.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinyface
from cli_testing import run
from tinyface.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "data" / "astronaut.png"          # 512×512
EXAMPLE = ROOT / "examples" / "astronaut.jpg"
VARIANT = ROOT / "examples" / "astronaut_variant.jpg"
FACE_A = ROOT / "examples" / "face_a.jpg"                    # aligned 112×112 crops
FACE_B = ROOT / "examples" / "face_b.jpg"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A grey photo, a grey image of the model's input size, two faces on one canvas."""
    d = tmp_path_factory.mktemp("photos")
    Image.new("RGB", (320, 240), (128, 128, 128)).save(d / "grey.png")
    Image.new("RGB", (112, 112), (128, 128, 128)).save(d / "grey112.png")
    photo = Image.open(PHOTO).convert("RGB")
    canvas = Image.new("RGB", (512 + 40 + 256, 512), (128, 128, 128))
    canvas.paste(photo, (0, 0))
    canvas.paste(photo.resize((256, 256), Image.Resampling.LANCZOS), (552, 128))
    canvas.save(d / "two.png")
    return d


@pytest.fixture(scope="module")
def model():
    return tinyface.load()


@pytest.fixture(scope="module")
def face():
    (face,) = tinyface.detect(PHOTO)
    return face


# ---------------------------------------------------------------- detect

def test_detect_text(capsys):
    code, out, err = run(capsys, "detect", PHOTO)
    assert code == 0 and err == ""
    assert "512x512, 1 face" in out
    assert "face 1: box (" in out and "score 1.0000" in out
    assert "landmarks: left eye (" in out and "right mouth (" in out


def test_detect_json_and_draw(capsys, tmp_path):
    drawn = tmp_path / "faces.png"
    code, out, _ = run(capsys, "detect", PHOTO, "--json", "--draw", drawn)
    assert code == 0
    result = json.loads(out)
    assert (result["width"], result["height"]) == (512, 512)
    (face,) = result["faces"]
    assert len(face["box"]) == 4 and 0.9 < face["score"] <= 1
    assert np.array(face["landmarks"]).shape == (5, 2)
    x1, y1, x2, y2 = face["box"]
    assert all(x1 < x < x2 and y1 < y < y2 for x, y in face["landmarks"])
    with Image.open(drawn) as im:
        assert im.format == "PNG" and im.size == (512, 512)


def test_detect_no_face_is_exit_3(capsys, files):
    code, out, err = run(capsys, "detect", files / "grey.png", "--json")
    assert code == 3
    assert json.loads(out)["faces"] == []
    assert "no face found in" in err and "grey.png" in err


# ---------------------------------------------------------------- align

def test_align_writes_the_crop(capsys, tmp_path, face):
    out_png = tmp_path / "crop.png"
    code, out, err = run(capsys, "align", PHOTO, out_png)
    assert code == 0 and err == ""
    with Image.open(out_png) as im:
        assert im.format == "PNG" and im.size == (112, 112)
        crop = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(crop, tinyface.align(PHOTO, face))


def test_align_size_is_height_by_width(capsys, tmp_path):
    code, _, _ = run(capsys, "align", PHOTO, tmp_path / "c.png", "--size", "112x96")
    assert code == 0
    with Image.open(tmp_path / "c.png") as im:
        assert im.size == (96, 112)                  # PIL: (width, height)
    code, _, err = run(capsys, "align", PHOTO, tmp_path / "d.png", "--size", "100x80")
    assert code == 2 and "no landmark template" in err
    with pytest.raises(SystemExit) as exc:
        main(["align", str(PHOTO), str(tmp_path / "e.png"), "--size", "big"])
    assert exc.value.code == 2
    assert "--size" in capsys.readouterr().err


def test_align_all_and_largest(capsys, files, tmp_path):
    code, out, err = run(capsys, "align", files / "two.png", tmp_path / "face.png", "--all")
    assert code == 0 and err == ""
    for name in ("face_1.png", "face_2.png"):
        with Image.open(tmp_path / name) as im:
            assert im.size == (112, 112)
    assert not (tmp_path / "face.png").exists()
    code, out, err = run(capsys, "align", files / "two.png", tmp_path / "one.png")
    assert code == 0 and "2 faces found" in err and "warning" in err
    with Image.open(tmp_path / "one.png") as one, Image.open(tmp_path / "face_1.png") as first:
        np.testing.assert_array_equal(np.asarray(one), np.asarray(first))


def test_align_no_face_is_exit_3(capsys, files, tmp_path):
    code, _, err = run(capsys, "align", files / "grey.png", tmp_path / "x.png")
    assert code == 3 and "no face found" in err and not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------- verify, embed

def test_verify_example_photos_same_person(capsys):
    code, out, err = run(capsys, "verify", EXAMPLE, VARIANT)
    assert code == 0, err
    assert "same person" in out
    print(out.strip())                               # the measured similarity


def test_verify_with_the_int8_model_uses_its_own_threshold(capsys):
    code, out, _ = run(capsys, "verify", FACE_A, FACE_B, "--aligned", "--int8")
    assert code == 0 and "same person" in out and "threshold 0.2933" in out
    code, _, err = run(capsys, "verify", FACE_A, FACE_B, "--int8", "--model", str(FACE_A))
    assert code == 2 and "give --model or --int8, not both" in err


def test_verify_raw_photo_against_faceless_image_is_exit_3(capsys, files):
    code, out, err = run(capsys, "verify", EXAMPLE, files / "grey.png")
    assert code == 3 and out == ""
    assert "no face found in" in err and "grey.png" in err and "--aligned" in err


def test_verify_aligned_crops_with_and_without_aligned(capsys):
    code, out, _ = run(capsys, "verify", FACE_A, FACE_B, "--aligned")
    assert code == 0 and "same person" in out
    code, out, _ = run(capsys, "verify", FACE_A, FACE_B)      # README's first command
    assert code == 0 and "same person" in out


def test_model_size_image_without_face_falls_back_to_aligned(capsys, files, model):
    code, out, err = run(capsys, "embed", files / "grey112.png")
    assert code == 0 and "treating it as an already-aligned face" in err
    np.testing.assert_allclose(json.loads(out)[0]["embedding"],
                               model.embed(files / "grey112.png")[0], atol=1e-5)
    code, _, err = run(capsys, "embed", files / "grey.png")   # not the input size: no fallback
    assert code == 3 and "no face found" in err


def test_embed_raw_photo(capsys, files, model, face):
    code, out, err = run(capsys, "embed", PHOTO)
    assert code == 0 and err == ""
    (record,) = json.loads(out)
    assert record["face"] == str(PHOTO) and len(record["box"]) == 4 and record["score"] > 0.9
    assert record["box"] == [round(v, 2) for v in face.box]
    expected = model.embed(tinyface.align(PHOTO, face))[0]
    np.testing.assert_allclose(record["embedding"], expected, atol=1e-5)
    code, out, err = run(capsys, "embed", files / "two.png")
    assert code == 0 and "2 faces found; using the largest" in err


def test_embed_aligned_is_the_old_behaviour(capsys, tmp_path, model):
    code, out, err = run(capsys, "embed", "--aligned", FACE_A, FACE_B)
    assert code == 0 and err == ""
    records = json.loads(out)
    assert [set(r) for r in records] == [{"face", "embedding"}] * 2
    np.testing.assert_allclose([r["embedding"] for r in records],
                               model.embed([FACE_A, FACE_B]), atol=1e-5)
    code, _, _ = run(capsys, "embed", FACE_A, "--aligned", "--format", "npy", "--out", tmp_path / "e.npy")
    assert code == 0 and np.load(tmp_path / "e.npy").shape == (1, 128)


@pytest.mark.parametrize("argv", [
    ["verify", "no/such/photo.jpg", str(EXAMPLE)],
    ["embed", "no/such/photo.jpg"],
    ["detect", "no/such/photo.jpg"],
    ["align", "no/such/photo.jpg", "out.png"],
    ["verify", "--aligned", str(FACE_A), "no/such/photo.jpg"],
])
def test_bad_photo_path_is_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "cannot read image 'no/such/photo.jpg': no such file" in err


def test_bad_detector_option_is_exit_2(capsys):
    code, _, err = run(capsys, "verify", EXAMPLE, VARIANT, "--min-face-size", "3")
    assert code == 2 and "min_face_size" in err
    code, _, err = run(capsys, "detect", PHOTO, "--max-side", "8")
    assert code == 2 and "max_side" in err


def test_detect_max_side(capsys):
    """--max-side 256 on the 512×512 photo looks for faces of 40 px or more: the same face;
    --max-side 0 is full resolution."""
    results = []
    for value in ("256", "0"):
        code, out, _ = run(capsys, "detect", PHOTO, "--json", "--max-side", value)
        assert code == 0
        (face,) = json.loads(out)["faces"]
        results.append(np.array(face["landmarks"]))
    np.testing.assert_allclose(results[0], results[1], atol=0.02)      # output rounded to 0.01


def test_help_documents_raw_photos_and_the_fallback(capsys):
    for command in ("verify", "embed"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "--aligned" in text and "exactly the model's input size" in text
        assert "already-aligned face, with a warning" in text
