"""``tinyface compare`` and ``tinyface bench`` on the command line: output, JSON, exit codes, errors."""
import json
from pathlib import Path

import pytest

import tinyface
from cli_testing import assert_one_line_error, run
from onnx_builders import op_mix_file
from tinyface.paths import default_model_path, weights_dir

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = default_model_path()
PNET = weights_dir() / "mtcnn/pnet.onnx"


@pytest.fixture(scope="module")
def mix_path(tmp_path_factory):
    return op_mix_file(tmp_path_factory.mktemp("cli"))


def test_compare_the_bundled_model(capsys):
    code, out, err = run(capsys, "compare", BUNDLED)
    lines = out.strip().splitlines()
    assert code == 0, out
    assert lines[0].startswith("tinyface vs ") and "random input" in lines[0]
    assert len(lines) == len(tinyface.load(BUNDLED).steps) + 3
    assert lines[-1] == "all 24 steps within the tolerance (max rel error <= 0.0001)"


def test_compare_json_with_the_onnx_evaluator(capsys, mix_path):
    code, out, _ = run(capsys, "compare", mix_path, "--against", "onnx-reference", "--batch", "2", "--json")
    report = json.loads(out)
    assert code == 0 and report["first_past"] is None and "ReferenceEvaluator" in report["engine"]
    assert all(s["shape"][0] == 2 and s["within"] for s in report["steps"])


def test_compare_faces(capsys):
    code, out, _ = run(capsys, "compare", BUNDLED, "--input", ROOT / "examples/face_a.jpg",
                       ROOT / "examples/face_b.jpg", "--against", "onnx-reference")
    assert code == 0 and "2 face images" in out.splitlines()[0]


def test_compare_exits_1_at_a_step_past_the_tolerance(capsys, monkeypatch, mix_path):
    from tinyface.face.model import FaceModel
    load = FaceModel.load

    def perturbed(cls, source=None):
        model = load(source)
        model.plan.binders[3].epilogue.bias[:] += 1.0      # the packed bias the kernel reads
        return model
    monkeypatch.setattr(FaceModel, "load", classmethod(perturbed))
    code, out, _ = run(capsys, "compare", mix_path, "--against", "onnx-reference")
    assert code == 1
    assert "<- first step past the tolerance" in out.splitlines()[2 + 3]
    assert "the first is step 3" in out.splitlines()[-1]
    code, out, _ = run(capsys, "compare", mix_path, "--against", "onnx-reference", "--tolerance", "10")
    assert code == 0


@pytest.mark.parametrize("args, fragment", [
    (["compare", PNET], "input 'input' has free dimensions"),
    (["compare", PNET, "--input-size", "40"], "--input-size must be HEIGHTxWIDTH"),
    (["compare", BUNDLED, "--input", ROOT / "examples/face_a.jpg", "--batch", "2"], "--batch is for random input"),
    (["compare", BUNDLED, "--batch", "0"], "--batch must be positive"),
    (["compare", BUNDLED, "--tolerance", "0"], "--tolerance must be positive"),
    (["compare", BUNDLED, "--input", ROOT / "nowhere.jpg"], "nowhere.jpg"),
    (["compare", ROOT / "nowhere.onnx"], "model file not found"),
    (["bench", BUNDLED, "--batch", "1,x"], "--batch must be positive integers"),
    (["bench", BUNDLED, "--threads", "99"], "--threads 99"),
    (["bench", PNET, "--against", "none"], "input 'input' has free dimensions"),
    (["bench", BUNDLED, "--runs", "0"], "--runs must be at least 1"),
])
def test_bad_arguments_are_one_line_errors(capsys, args, fragment):
    code, out, err = run(capsys, *args)
    assert_one_line_error(code, out, err)
    assert fragment in err


def test_compare_needs_onnxruntime_when_asked_for_it(capsys, monkeypatch):
    from tinyface.tools import engines
    monkeypatch.setattr(engines, "onnxruntime_installed", lambda: False)
    code, out, err = run(capsys, "compare", BUNDLED, "--against", "onnxruntime")
    assert_one_line_error(code, out, err)
    assert "onnxruntime is not installed" in err and "--against onnx-reference" in err


def test_compare_p_net_at_a_size_of_its_own(capsys):
    code, out, _ = run(capsys, "compare", PNET, "--input-size", "31x37", "--against", "onnx-reference")
    assert code == 0 and "1x2x11x14" in out


def test_bench_text_and_json(capsys, mix_path):
    code, out, _ = run(capsys, "bench", mix_path, "--batch", "1,2", "--threads", "1", "--rounds", "1",
                       "--runs", "2", "--per-step", "--repeats", "2", "--against", "none")
    assert code == 0
    assert out.startswith(f"tinyface bench: {mix_path} (17 steps")
    assert "per step, batch 2, 1 thread" in out and "measured peaks: FMA" in out
    code, out, _ = run(capsys, "bench", mix_path, "--batch", "2", "--threads", "1", "--rounds", "1",
                       "--runs", "1", "--json")
    result = json.loads(out)
    assert code == 0 and [(r["batch"], r["threads"]) for r in result["end_to_end"]] == [(2, 1)]
    assert "per_step" not in result and result["steps"] == 17
