"""``tinyface export``, ``models`` and ``inspect`` on the papers' architectures.

Every architecture is exported once per module (112x112, and MobileFaceNet
also at 112x96 and 96x96) and inspected; the counts must agree with the
papers and with tinyface.models' own counts.  ``inspect``'s exit code tells
whether tinyface can run a model (0), cannot (4) or cannot read it (2).  Run
in-process (``main([...])``) for speed; no output ever holds a traceback.
"""
import contextlib
import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import tinyface
import tinyface.models as models
from cli_testing import assert_one_line_error, run
from tinyface.cli.main import main
from tinyface.models import weights as model_weights
from onnx_builders import GraphBuilder, conv_weight, single_thread_fixture

single_thread = single_thread_fixture()

FACE = Path(__file__).parent / "data" / "lfw-hard-pairs" / "0_fn_0_aligned.jpg"
EXPORTS = [("mobilefacenet", "112x112"), ("mobilefacenet", "112x96"), ("mobilefacenet", "96x96"),
           ("mobilefacenet-m", "112x112"), ("mobilefacenet-s", "112x112"),
           ("mobiface", "112x112"), ("flipped-mobiface", "112x112")]
IDS = [f"{a}-{s}" for a, s in EXPORTS]


def size_of(text):
    h, w = text.split("x")
    return int(h), int(w)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(arch, size) -> (path, exit code, stdout, stderr) of ``tinyface export``, seed 0."""
    d = tmp_path_factory.mktemp("export")
    done = {}
    for arch, size in EXPORTS:
        path = d / f"{arch}-{size}.onnx"
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["export", arch, str(path), "--input-size", size])
        done[arch, size] = path, code, out.getvalue(), err.getvalue()
    return done


@pytest.fixture(scope="module")
def inspected(exported):
    """(arch, size) -> ``inspect --json`` of the exported file."""
    result = {}
    for key, (path, *_) in exported.items():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["inspect", "--json", str(path)]) == 0
        result[key] = json.loads(out.getvalue())
    return result


# -- export ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", EXPORTS, ids=IDS)
def test_export_prints_one_line_with_path_params_madds_and_embedding_size(exported, key):
    path, code, out, err = exported[key]
    assert code == 0 and err == ""
    assert "Traceback" not in out
    lines = out.strip().splitlines()
    assert len(lines) == 1
    c = models.counts(key[0], size_of(key[1]))
    d = models.spec(key[0], size_of(key[1])).embedding_size
    assert lines[0].startswith(f"{path}: {key[0]} {key[1]} prelu, weights seeded:0;")
    assert f"{c.params:,} params" in lines[0]
    assert f"{c.madds:,} MAdds" in lines[0]
    assert lines[0].endswith(f"{d}-d embedding")
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["tinyface.architecture"] == key[0]
    assert meta["tinyface.input_size"] == key[1]
    assert meta["tinyface.weights"] == "seeded:0"


def test_export_leaves_only_the_model_files(exported):
    folder = next(iter(exported.values()))[0].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{a}-{s}.onnx" for a, s in EXPORTS)


# The papers' figures: MobileFaceNet 0.99M params and 221M MAdds at 112x112, -M 0.92M,
# -S 0.84M; at 112x96 and 96x96 the MAdds scale with the pixel count.
PAPER = {
    ("mobilefacenet", "112x112"): (0.99e6, 221e6),
    ("mobilefacenet", "112x96"): (None, 221e6 * 96 / 112),
    ("mobilefacenet", "96x96"): (None, 221e6 * 96 ** 2 / 112 ** 2),
    ("mobilefacenet-m", "112x112"): (0.92e6, None),
    ("mobilefacenet-s", "112x112"): (0.84e6, None),
}


@pytest.mark.parametrize("key", list(PAPER), ids=[f"{a}-{s}" for a, s in PAPER])
def test_inspect_of_the_export_matches_the_papers_within_1_percent(inspected, key):
    params, madds = PAPER[key]
    info = inspected[key]
    if params is not None:
        assert info["params"] == pytest.approx(params, rel=0.01)
    if madds is not None:
        assert info["macs"] == pytest.approx(madds, rel=0.01)


def test_mobiface_counts_as_built_from_its_table():
    # MobiFace's paper gives no parameter or MAdd count to compare with (its "9.3 MB"
    # does not follow from its Table 1: docs/architectures.md); these are the graph's.
    assert (models.counts("mobiface").params, models.counts("mobiface").madds) == (14_984_128, 224_926_464)
    assert (models.counts("flipped-mobiface").params,
            models.counts("flipped-mobiface").madds) == (15_509_440, 225_450_752)


@pytest.mark.parametrize("key", EXPORTS, ids=IDS)
def test_inspect_counts_equal_the_models_package_counts(inspected, exported, key):
    info = inspected[key]
    c = models.counts(key[0], size_of(key[1]))
    assert (info["params"], info["macs"]) == (c.params, c.madds)
    assert info["inputs"] == [{"name": "input", "shape": [None, 3, *size_of(key[1])]}]
    d = models.spec(key[0], size_of(key[1])).embedding_size
    assert info["outputs"][0]["name"] == "embedding" and info["outputs"][0]["shape"][-1] == d
    assert info["unsupported"] == []


# -- inspect: can tinyface run this? ------------------------------------------------------
# (what inspect lists for unsupported graphs: tests/test_graph_lower.py)

def unsupported_model(path):
    """A Conv, then a Resize: an op tinyface lacks."""
    g = GraphBuilder(13)
    y = g.add("Conv", ["x", g.const(conv_weight(np.random.default_rng(0), 4, 3, 3, 3))],
              name="stem", pads=[1, 1, 1, 1])
    y = g.add("Resize", [y, "", g.const([1, 1, 2, 2])], name="upsample", mode="nearest")
    onnx.save(g.build({"x": ["N", 3, 8, 8]}, [y]), path)
    return path


@pytest.mark.parametrize("flags", [[], ["--json"]])
def test_inspect_exit_code_tells_runnable_unsupported_and_unreadable_apart(capsys, tmp_path, exported,
                                                                          flags):
    runnable = exported["mobilefacenet-s", "112x112"][0]
    unsupported = unsupported_model(tmp_path / "resize.onnx")
    unreadable = tmp_path / "not-a-model.onnx"
    unreadable.write_bytes(b"not a model")
    assert run(capsys, "inspect", *flags, runnable)[0] == 0
    code, out, err = run(capsys, "inspect", *flags, unsupported)
    assert code == 4 and err == ""                     # the listing, not an error
    if flags:
        assert json.loads(out)["unsupported"] == [{"op": "Resize", "node": "upsample"}]
    else:
        assert "Resize" in out and "'upsample'" in out
    code, out, err = run(capsys, "inspect", *flags, unreadable)
    assert_one_line_error(code, out, err)


def test_relu_export_counts(capsys, tmp_path):
    path = tmp_path / "relu.onnx"
    code, out, err = run(capsys, "export", "mobilefacenet-s", path, "--activation", "relu")
    assert code == 0 and err == "" and "relu" in out
    code, out, _ = run(capsys, "inspect", "--json", path)
    info = json.loads(out)
    c = models.counts("mobilefacenet-s", activation="relu")
    assert (info["params"], info["macs"]) == (c.params, c.madds) == (834_880, 217_669_760)
    assert any("relu" in s["detail"] for s in info["steps"])
    assert not any("prelu" in s["detail"] for s in info["steps"])


def test_same_seed_gives_identical_bytes_and_another_seed_differs(capsys, tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        code, _, err = run(capsys, "export", "mobilefacenet-s", tmp_path / f"{name}.onnx", "--seed", seed)
        assert code == 0 and err == ""
    a, b, c = ((tmp_path / f"{n}.onnx").read_bytes() for n in "abc")
    assert a == b
    assert a != c


def test_export_overwrites_an_existing_file(capsys, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_text("old")
    code, _, err = run(capsys, "export", "mobilefacenet-s", path)
    assert code == 0 and err == ""
    assert onnx.load(str(path)).graph.output[0].name == "embedding"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_weights_round_trip(capsys, tmp_path):
    arch = "mobilefacenet-s"
    npz = tmp_path / "w.npz"
    model_weights.save(npz, model_weights.seeded(models.spec(arch), 5))
    code, out, err = run(capsys, "export", arch, tmp_path / "from_npz.onnx", "--weights", npz)
    assert code == 0 and err == ""
    assert "weights file:w.npz;" in out
    assert run(capsys, "export", arch, tmp_path / "seeded.onnx", "--seed", 5)[0] == 0
    x = np.random.default_rng(0).standard_normal((2, 3, 112, 112)).astype(np.float32)
    from_npz = tinyface.load(tmp_path / "from_npz.onnx").run(x)[0]
    seeded = tinyface.load(tmp_path / "seeded.onnx").run(x)[0]
    assert from_npz.shape == (2, 128)
    np.testing.assert_array_equal(from_npz, seeded)


def test_weights_of_another_variant_are_a_one_line_error(capsys, tmp_path):
    npz = tmp_path / "full.npz"
    model_weights.save(npz, model_weights.seeded(models.spec("mobilefacenet"), 0))
    code, out, err = run(capsys, "export", "mobilefacenet-s", tmp_path / "m.onnx", "--weights", npz)
    assert_one_line_error(code, out, err, prefix="tinyface: error:")
    assert "do not fit mobilefacenet-s" in err
    assert not (tmp_path / "m.onnx").exists()


def test_missing_weights_file_is_a_one_line_error(capsys, tmp_path):
    code, out, err = run(capsys, "export", "mobiface", tmp_path / "m.onnx", "--weights", tmp_path / "no.npz")
    assert_one_line_error(code, out, err, prefix="tinyface: error:")
    assert "no.npz" in err


def test_seed_and_weights_together_is_an_argparse_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["export", "mobiface", str(tmp_path / "m.onnx"), "--seed", "1", "--weights", "w.npz"])
    assert e.value.code == 2
    _, err = capsys.readouterr()
    assert "not allowed with" in err and "Traceback" not in err


def test_unknown_architecture_is_an_argparse_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["export", "mobilenet", str(tmp_path / "m.onnx")])
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert "invalid choice: 'mobilenet'" in err
    for name in models.ARCHITECTURES:
        assert name in err
    assert "Traceback" not in out + err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("size", ["112", "0x5", "100x100", "112x", "axb", "-16x16", "112x112x3", ""])
def test_bad_input_size_is_a_one_line_error(capsys, tmp_path, size):
    code, out, err = run(capsys, "export", "mobilefacenet", tmp_path / "m.onnx", f"--input-size={size}")
    assert_one_line_error(code, out, err, prefix="tinyface: error:")
    assert "input" in err and "size" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", ["-1"])
def test_negative_seed_is_a_one_line_error(capsys, tmp_path, seed):
    code, out, err = run(capsys, "export", "mobilefacenet", tmp_path / "m.onnx", "--seed", seed)
    assert_one_line_error(code, out, err, prefix="tinyface: error:")
    assert "seed" in err


def test_missing_folder_is_a_one_line_error(capsys, tmp_path):
    code, out, err = run(capsys, "export", "mobilefacenet", tmp_path / "nope" / "m.onnx")
    assert_one_line_error(code, out, err, prefix="tinyface: error:")
    assert "does not exist" in err and "nope" in err
    assert not (tmp_path / "nope").exists()


def test_folder_as_output_is_a_one_line_error(capsys, tmp_path):
    code, out, err = run(capsys, "export", "mobilefacenet", tmp_path)
    assert_one_line_error(code, out, err, prefix="tinyface: error:")
    assert "is a folder" in err
    assert list(tmp_path.iterdir()) == []


# -- models ------------------------------------------------------------------------------

def test_models_lists_every_architecture_with_counts(capsys):
    code, out, err = run(capsys, "models")
    assert code == 0 and err == ""
    rows = [line.split() for line in out.splitlines()[1:] if line.split()[0] in models.ARCHITECTURES]
    assert sorted({r[0] for r in rows}) == sorted(models.ARCHITECTURES)
    assert len(rows) == 7
    for info in models.describe_architectures():
        h, w = info.input_size
        assert [info.name, f"{h}x{w}", str(info.embedding_size), f"{info.params:,}"] in [r[:4] for r in rows]
        assert f"{info.madds:,}" in out


def test_models_json(capsys):
    code, out, err = run(capsys, "models", "--json")
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert [r["name"] for r in rows] == [i.name for i in models.describe_architectures()]
    assert {r["name"] for r in rows} == set(models.ARCHITECTURES)
    first = rows[0]
    assert first == {"name": "mobilefacenet", "input_size": [112, 112], "embedding_size": 128,
                     "params": 993_344, "madds": 220_965_376, "activation": "prelu"}


def test_models_relu_json(capsys):
    code, out, _ = run(capsys, "models", "--json", "--activation", "relu")
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["params"] == 985_792 and rows[0]["activation"] == "relu"


def test_cli_choices_are_the_models_package_architectures(capsys):
    from tinyface.cli.model_commands import ARCH_NAMES
    assert list(ARCH_NAMES) == list(models.ARCHITECTURES)


# -- embed with an exported model --------------------------------------------------------

def test_embed_with_an_exported_model_and_flip(capsys, exported):
    path = exported["mobilefacenet", "112x112"][0]
    code, out, err = run(capsys, "embed", "--aligned", FACE, "--model", path)
    assert code == 0 and err == ""
    plain = np.array(json.loads(out)[0]["embedding"], np.float32)
    code, out, err = run(capsys, "embed", "--aligned", "--flip", FACE, "--model", path)
    assert code == 0 and err == ""
    flipped = np.array(json.loads(out)[0]["embedding"], np.float32)
    assert plain.shape == flipped.shape == (128,)
    assert np.all(np.isfinite(flipped))
    assert not np.allclose(plain, flipped, rtol=0, atol=1e-4)
    # --flip is the mean with the mirrored face's embedding
    model = tinyface.load(path)
    x = model.preprocess([FACE])
    mirrored = model.run(np.ascontiguousarray(x[..., ::-1]))[0][0]
    np.testing.assert_allclose(flipped, (plain + mirrored) / 2, rtol=0, atol=1e-5)
