"""runtime.binders: one compiled version of each kernel serves every model the face
pipeline runs (the GEMM takes about 10 s to compile, and Numba compiles again for any
difference in its arguments' types or array flags), and docs/design.md's table of where
each op lives names real records, binders, kernels, references, tests and benchmarks."""
import importlib
import re
from pathlib import Path

import numba
import numpy as np
import pytest

import tinyface
from tinyface.graph import ops as O
from tinyface.runtime import binders, binders_quantized, block
from tinyface.runtime.binders import kernel_array
from tinyface.runtime.deferred import bind_all

WEIGHTS = tinyface.paths.weights_dir()
MODELS = ["mobilefacenet-relu6-opset18.onnx", "mtcnn/pnet.onnx", "mtcnn/rnet.onnx", "mtcnn/onet.onnx"]
INPUTS = {"mtcnn/pnet.onnx": (3, 40, 52), "mtcnn/rnet.onnx": (3, 24, 24), "mtcnn/onet.onnx": (3, 48, 48)}


def bound_signatures(path):
    """{kernel name: {argument types}} over every call a schedule of ``path`` binds."""
    engine = tinyface.load(path)
    shape = INPUTS.get(str(path.relative_to(WEIGHTS)), (3, 112, 112))
    x = np.zeros((2,) + shape, np.float32)
    with bind_all():
        schedule = engine.plan.schedule({engine.input_names[0]: x}, 2)
    found = {}
    for _, calls in schedule.segments:
        for function, args in calls:
            found.setdefault(function.__name__, set()).add(tuple(numba.typeof(a) for a in args))
    return found


def test_each_kernel_is_called_with_one_signature_across_the_pipelines_models():
    every = {}
    for name in MODELS:
        for kernel, types in bound_signatures(WEIGHTS / name).items():
            every.setdefault(kernel, set()).update(types)
    for kernel in ("gemm", "depthwise", "narrow_conv", "inverted_residual"):
        assert len(every[kernel]) == 1, (kernel, every[kernel])


@pytest.mark.parametrize("make", [
    lambda: np.frombuffer(np.arange(6, dtype=np.float32).tobytes(), np.float32),   # read-only
    lambda: np.arange(12, dtype=np.float64)[::2],                                  # strided, float64
    lambda: np.arange(6, dtype=np.float32),                                        # already fine
])
def test_kernel_array_is_contiguous_writeable_float32(make):
    a = make()
    b = kernel_array(a)
    assert b.dtype == np.float32 and b.flags.c_contiguous and b.flags.writeable
    np.testing.assert_array_equal(b, np.asarray(a, np.float32))


# -- docs/design.md's table of where each op lives ----------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def op_table():
    """{record name: [its cells]} from the table in docs/design.md."""
    text = (ROOT / "docs" / "design.md").read_text()
    table = text.split("## Where each op lives", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {re.findall(r"`([^`]+)`", row)[0]: [cell.strip() for cell in row.strip("|").split("|")]
            for row in rows}


def names(cell):
    return re.findall(r"`([^`]+)`", cell)


def test_the_design_table_names_every_op_and_its_binder():
    table = op_table()
    records = {name for name, value in vars(O).items()
               if isinstance(value, type) and issubclass(value, O.Op) and value is not O.Op}
    assert set(table) == records
    assert {getattr(O, name) for name in table} == set(binders.BINDERS)
    for name, (_, _, binder_cell, *_) in table.items():
        assert names(binder_cell) == [binders.BINDERS[getattr(O, name)].__name__], name


def test_every_kernel_reference_test_and_benchmark_in_the_design_table_exists():
    for name, (_, _, _, kernels, reference, tests, bench) in op_table().items():
        for kernel in names(kernels):
            module, function = kernel.rsplit(".", 1)
            if module == "np":
                continue
            found = importlib.import_module("tinyface.runtime.binders" if module == "binders"
                                            else f"tinyface.kernels.{module}")
            bound_by = vars(binders) | vars(block) | vars(binders_quantized)
            assert callable(getattr(found, function)), (name, kernel)
            assert module == "binders" or bound_by.get(function) is getattr(found, function), (name, kernel)
        for function in names(reference):
            module, function = function.rsplit(".", 1)
            assert callable(getattr(importlib.import_module(f"tinyface.reference.{module}"), function))
        for test in names(tests):
            assert (ROOT / "tests" / test).is_file(), test
        for path in names(bench):
            assert (ROOT / path).is_file() or (ROOT / "tinyface" / path).is_file(), path


def test_int8_form_names_quads_where_the_weights_fit_and_pairs_where_they_do_not():
    """On the bundled 8-bit model every pointwise and dense conv fits the quads (7-bit weights);
    weights whose pairs of rows could saturate ``pmaddubsw`` take the pairs, unless the
    target has ``vpdpbusd``; a depthwise conv has neither."""
    import dataclasses

    from tinyface.graph.lower import lower
    from tinyface.graph.onnx_file import read_model
    from tinyface.kernels import isimd
    ops, _, _ = lower(read_model(tinyface.paths.default_model_path("int8")))
    forms = {op.kind: binders_quantized.int8_form(op) for op in ops}
    assert forms["qpointwise"] == forms["qconv"] == "quads"
    assert forms["qdepthwise"] is None and forms["quantize"] is None
    pointwise = next(op for op in ops if op.kind == "qpointwise")
    loud = np.full_like(pointwise.weight, 127)                      # |w0| + |w1| = 254 in every pair
    wide = dataclasses.replace(pointwise, weight=loud)
    assert binders_quantized.int8_form(wide) == ("quads" if isimd.DOT_INSTRUCTION else "pairs")


def test_inspect_shows_which_8_bit_kernels_each_product_runs_on(capsys):
    from tinyface.cli.main import main
    assert main(["inspect", "--json", str(tinyface.paths.default_model_path("int8"))]) == 0
    steps = __import__("json").loads(capsys.readouterr().out)["steps"]
    assert {s.get("kernels") for s in steps if s["kind"] in ("qpointwise", "qconv", "qgemm")} == {"quads"}
    assert not any("kernels" in s for s in steps if s["kind"] not in ("qpointwise", "qconv", "qgemm"))
    assert main(["inspect", str(tinyface.paths.default_model_path("int8"))]) == 0
    assert "3x3/2 3->64 int8 (quads kernels)" in capsys.readouterr().out
