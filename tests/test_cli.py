"""The ``tinyface`` command line: embed, verify and inspect, run in-process
(``main([...])``) for speed, plus one run of the installed console script.

Every failure a user can cause is exit code 2 with a single line on stderr
starting with 'tinyface:' and never a traceback."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinyface
from cli_testing import assert_one_line_error, run
from tinyface.cli.main import main
from tinyface.verify import cosine_similarity, threshold_for
from onnx_builders import single_thread_fixture

single_thread = single_thread_fixture()       # the CLI's results do not depend on it; a busy machine does

FACES = Path(__file__).parent / "data" / "lfw-hard-pairs"
FACE = FACES / "0_fn_0_aligned.jpg"
SAME_PERSON = FACES / "0_fn_1_aligned.jpg"     # same person as FACE, similarity ~0.43
OTHER_PERSON = FACES / "1_fn_0_aligned.jpg"    # someone else, similarity ~0.03


@pytest.fixture(scope="module")
def model():
    return tinyface.load()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rgb = Image.open(FACE).convert("RGB")
    rgb.save(d / "rgb.png")
    rgb.resize((150, 150), Image.Resampling.BILINEAR).save(d / "big.png")
    rgb.convert("L").save(d / "gray.png")
    rgb.convert("RGBA").save(d / "rgba.png")
    rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(d / "palette.png")
    grey16 = np.asarray(rgb.convert("L")).astype(np.uint16) * 257
    Image.fromarray(grey16).save(d / "gray16.png")
    assert Image.open(d / "gray16.png").mode.startswith("I")
    (d / "truncated.jpg").write_bytes(FACE.read_bytes()[:1500])
    (d / "notimage.jpg").write_text("this is not an image\n")
    (d / "empty.onnx").write_bytes(b"")
    (d / "notonnx.onnx").write_text("definitely not a protobuf\n" * 10)
    shutil.copy(FACE, d / "face.onnx")           # a JPEG with a model's name
    return d


def embeddings(text):
    return np.array([r["embedding"] for r in json.loads(text)], np.float32)


# -- embed -------------------------------------------------------------------------------

def test_embed_json_to_stdout(capsys, model):
    code, out, err = run(capsys, "embed", "--aligned", FACE, OTHER_PERSON)
    assert code == 0 and err == ""
    records = json.loads(out)
    assert [r["face"] for r in records] == [str(FACE), str(OTHER_PERSON)]
    emb = embeddings(out)
    assert emb.shape == (2, 128)
    np.testing.assert_allclose(emb, model.embed([FACE, OTHER_PERSON]), atol=1e-6)


def test_embed_detects_by_default(capsys, model):
    code, out, _ = run(capsys, "embed", FACE)
    assert code == 0
    (record,) = json.loads(out)
    assert record["face"] == str(FACE) and len(record["embedding"]) == 128


def test_embed_out_file(capsys, tmp_path, model):
    target = tmp_path / "emb.json"
    code, out, err = run(capsys, "embed", "--aligned", FACE, "--out", target)
    assert code == 0 and out == "" and err == ""
    np.testing.assert_allclose(embeddings(target.read_text()), model.embed([FACE]), atol=1e-6)


def test_embed_npy(capsys, tmp_path, model):
    target = tmp_path / "emb.npy"
    code, out, _ = run(capsys, "embed", "--aligned", FACE, SAME_PERSON, "--format", "npy", "--out", target)
    assert code == 0 and out == ""
    emb = np.load(target)
    assert emb.shape == (2, 128) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, model.embed([FACE, SAME_PERSON]), atol=1e-6)


def test_embed_npy_needs_out(capsys):
    code, out, err = run(capsys, "embed", "--aligned", FACE, "--format", "npy")
    assert_one_line_error(code, out, err)
    assert "--out" in err


def test_embed_npy_to_missing_folder(capsys, tmp_path):
    code, out, err = run(capsys, "embed", "--aligned", FACE, "--format", "npy", "--out", tmp_path / "no" / "x.npy")
    assert_one_line_error(code, out, err)


def test_embed_json_to_missing_folder(capsys, tmp_path):
    code, out, err = run(capsys, "embed", "--aligned", FACE, "--out", tmp_path / "no" / "x.json")
    assert_one_line_error(code, out, err)


# -- verify -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [["--aligned"], []])
def test_verify_same_image_twice(capsys, mode):
    code, out, _ = run(capsys, "verify", *mode, FACE, FACE)
    assert code == 0
    assert "similarity 1.0000" in out and "same person" in out


@pytest.mark.parametrize("mode", [["--aligned"], []])
def test_verify_two_different_people(capsys, mode):
    code, out, _ = run(capsys, "verify", *mode, FACE, OTHER_PERSON)
    assert code == 1
    assert "different people" in out


def test_verify_threshold(capsys, model):
    sim = cosine_similarity(*model.embed([FACE, SAME_PERSON]))
    assert 0.35 < sim < 0.5
    code, out, _ = run(capsys, "verify", "--aligned", FACE, SAME_PERSON)
    threshold, calibration = threshold_for(model)             # the bundled model's calibrated one
    assert code == 0 and f"{sim:.4f}" in out and f"threshold {threshold:.4f}, FAR " in out
    code, out, _ = run(capsys, "verify", "--aligned", FACE, SAME_PERSON, "--threshold", "0.5")
    assert code == 1 and "threshold 0.5" in out
    code, _, _ = run(capsys, "verify", "--aligned", FACE, OTHER_PERSON, "--threshold", "-1")
    assert code == 0


# -- inspect ------------------------------------------------------------------------------

def test_inspect_text(capsys):
    code, out, err = run(capsys, "inspect", tinyface.paths.default_model_path())
    assert code == 0 and err == ""
    assert "total:" in out and "989,952" in out and "233,810,432" in out
    assert "input0" in out and "output0" in out


def test_inspect_json(capsys):
    code, out, _ = run(capsys, "inspect", "--json", tinyface.paths.default_model_path())
    assert code == 0
    info = json.loads(out)
    assert {"params", "macs", "inputs", "outputs", "unsupported"} <= set(info)
    assert info["params"] == 989_952 and info["macs"] == 233_810_432
    assert info["unsupported"] == []
    assert info["inputs"] == [{"name": "input0", "shape": [1, 3, 112, 112]}]
    assert info["outputs"][0]["name"] == "output0"


# -- bad inputs: exit 2, one line, no traceback ------------------------------------------------

BAD_FACES = ["missing.jpg", "notimage.jpg", "truncated.jpg", "."]


@pytest.mark.parametrize("bad", BAD_FACES)
@pytest.mark.parametrize("command", ["embed", "embed-aligned", "verify", "verify-aligned"])
def test_bad_face_file(capsys, files, command, bad):
    path = files / bad if bad != "." else files
    cmd, *opts = command.split("-")
    argv = [cmd] + ["--aligned"] * bool(opts) + ([path] if cmd == "embed" else [FACE, path])
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, out, err)
    assert str(path) in err


BAD_MODELS = ["missing.onnx", "empty.onnx", "notonnx.onnx", "face.onnx", "."]


@pytest.mark.parametrize("bad", BAD_MODELS)
@pytest.mark.parametrize("command", ["embed", "verify", "inspect"])
def test_bad_model_file(capsys, files, command, bad):
    path = files / bad if bad != "." else files
    argv = {"embed": ["embed", "--aligned", FACE, "--model", path],
            "verify": ["verify", FACE, FACE, "--model", path],
            "inspect": ["inspect", path]}[command]
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, out, err)
    assert str(path) in err


def test_unsupported_model_for_embed(capsys, files):
    from onnx_builders import GraphBuilder
    import onnx
    g = GraphBuilder(13)
    y = g.add("Resize", ["x", "", g.const([1, 1, 2, 2])], name="upsample", mode="nearest")
    path = files / "resize.onnx"
    onnx.save(g.build({"x": ["N", 3, 112, 112]}, [y]), path)
    code, out, err = run(capsys, "embed", "--aligned", FACE, "--model", path)
    assert_one_line_error(code, out, err)
    assert "Resize" in err and "upsample" in err


def test_bad_threads(capsys):
    code, out, err = run(capsys, "embed", "--aligned", FACE, "--threads", "99999")
    assert_one_line_error(code, out, err)
    assert "threads" in err


def test_zero_threads_is_an_error(capsys):
    code, out, err = run(capsys, "embed", "--aligned", FACE, "--threads", "0")
    assert_one_line_error(code, out, err)


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["verify", str(FACE)], ["verify", str(FACE), str(FACE), "--threshold", "abc"], ["frobnicate"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        _, err = capsys.readouterr()
        assert "Traceback" not in err and "tinyface" in err


# -- images that are not 112x112 RGB -----------------------------------------------------------

def test_face_not_112_is_resized_with_a_warning(capsys, files, model):
    code, out, err = run(capsys, "embed", "--aligned", files / "big.png")
    assert code == 0
    assert err.startswith("tinyface: warning:") and "resized" in err and "150x150" in err
    assert cosine_similarity(embeddings(out)[0], model.embed([FACE])[0]) > 0.9


@pytest.mark.parametrize("mode", [["--aligned"], []])
@pytest.mark.parametrize("name", ["gray.png", "rgba.png", "palette.png", "gray16.png"])
def test_other_image_modes_work(capsys, files, model, mode, name):
    code, out, _ = run(capsys, "embed", *mode, files / name)
    assert code == 0
    emb = embeddings(out)[0]
    assert emb.shape == (128,) and np.isfinite(emb).all()
    if mode:
        reference = {"gray.png": "gray.png", "gray16.png": "gray.png"}.get(name, "rgb.png")
        sim = cosine_similarity(emb, model.embed([files / reference])[0])
        if name in ("rgba.png", "gray16.png"):        # alpha dropped; 16-bit scaled to exactly the 8-bit grey
            assert sim > 0.999999
        else:
            assert sim > 0.9


# -- the installed console script ----------------------------------------------------------------

def test_console_script_entry_point():
    script = Path(sys.executable).parent / "tinyface"
    exe = str(script) if script.exists() else shutil.which("tinyface")
    assert exe, "the tinyface console script is not installed"
    env = dict(os.environ, TINYFACE_NUM_THREADS="1")
    proc = subprocess.run([exe, "verify", "--aligned", str(FACE), str(FACE)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "similarity 1.0000" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
