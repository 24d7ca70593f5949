"""``tinyface warmup`` compiles what a job needs, so that the job compiles nothing
(tinyface/tools/warmup.py).

Each job is a fresh process on an empty JIT cache (``TINYFACE_CACHE_DIR``) that
counts Numba's ``numba:compile`` events of tinyface's functions: one per
specialisation compiled rather than loaded (Numba's own helpers, e.g. the
implementation of ``np.empty``, compile too, uncached, in every process).  The same job on an empty cache without warmup compiles, which
shows the count can fail.  The cases with the bundled model and the detector
compile every kernel (about a minute on 2 cores) and are marked slow.
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

from onnx_builders import GraphBuilder, add_conv
from test_packaging import ALIGNED_FACE, PHOTOS, tiny_model      # three cheap kernels: seconds to compile

COUNTING = """
import sys
from numba.core import event
from tinyface.cli.main import main
with event.install_recorder("numba:compile") as recorder:
    code = main(sys.argv[1:])
functions = [ev.data["dispatcher"].py_func for _, ev in recorder.buffer if ev.is_start]
compiled = [f.__name__ for f in functions if f.__module__.startswith("tinyface.")]
print("compiled:", len(compiled), *compiled, file=sys.stderr)
sys.exit(code)
"""


def tinyface(cache, *args, compile_jobs=1):
    """Run ``tinyface args`` in a fresh process on ``cache``, a first run compiling in
    ``compile_jobs`` processes; returns (exit code, specialisations compiled in the command's
    own process, stdout, stderr)."""
    env = dict(os.environ, TINYFACE_CACHE_DIR=str(cache), TINYFACE_COMPILE_JOBS=str(compile_jobs))
    done = subprocess.run([sys.executable, "-c", COUNTING, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=900)
    counts = [line for line in done.stderr.splitlines() if line.startswith("compiled: ")]
    assert counts, done.stderr
    return done.returncode, int(counts[-1].split()[1]), done.stdout, done.stderr


@pytest.mark.parametrize("jobs", [1, 2])
def test_after_warmup_an_embedding_compiles_nothing(tmp_path, jobs):
    model = tiny_model(tmp_path / "tiny.onnx")
    code, compiled, out, err = tinyface(tmp_path / "warm", "warmup", "--model", model, "--jobs", jobs)
    assert code == 0, err
    assert compiled == (3 if jobs == 1 else 0)     # with workers, this process only loads
    assert out.startswith("3 kernel specialisations ready (3 compiled, 0 already cached)"), out
    assert str(tmp_path / "warm") in out
    code, compiled, out, err = tinyface(tmp_path / "warm", "embed", "--aligned", "--model", model,
                                        ALIGNED_FACE, ALIGNED_FACE)
    assert (code, compiled) == (0, 0), err
    if jobs == 1:               # without warmup the same job compiles: the count can fail
        code, compiled, _, err = tinyface(tmp_path / "cold", "embed", "--aligned", "--model", model,
                                          ALIGNED_FACE)
        assert code == 0 and compiled == 3, err


def test_a_first_run_compiles_in_workers_and_then_only_checks_a_marker(tmp_path):
    model = tiny_model(tmp_path / "tiny.onnx")
    cache = tmp_path / "cache"
    code, compiled, out, err = tinyface(cache, "embed", "--aligned", "--model", model, ALIGNED_FACE,
                                        compile_jobs=2)
    assert (code, compiled) == (0, 0), err           # the workers compiled, this process loaded
    markers = list(cache.glob("tinyface-ready-*"))
    assert len(markers) == 1
    code, compiled, out2, err = tinyface(cache, "embed", "--aligned", "--model", model, ALIGNED_FACE,
                                         compile_jobs=2)
    assert (code, compiled, out2) == (0, 0, out), err
    assert list(cache.glob("tinyface-ready-*")) == markers
    code, _, _, err = tinyface(tmp_path / "other", "embed", "--aligned", "--model", model, ALIGNED_FACE,
                               compile_jobs="two")
    assert code == 2 and "TINYFACE_COMPILE_JOBS must be a positive integer, got 'two'" in err


def test_a_script_without_a_main_guard_compiles_in_its_own_process(tmp_path):
    """Spawn workers would import the script again and run its unguarded top level."""
    model = tiny_model(tmp_path / "tiny.onnx")
    script = tmp_path / "script.py"
    script.write_text(COUNTING)
    env = dict(os.environ, TINYFACE_CACHE_DIR=str(tmp_path / "cache"), TINYFACE_COMPILE_JOBS="2")
    done = subprocess.run([sys.executable, script, "embed", "--aligned", "--model", model, ALIGNED_FACE],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "compiled: 3 " in done.stderr and "error" not in done.stderr, done.stderr


def test_a_second_warmup_loads_everything_from_the_cache(tmp_path):
    model = tiny_model(tmp_path / "tiny.onnx")
    tinyface(tmp_path / "cache", "warmup", "--model", model, "--jobs", 1)
    code, compiled, out, err = tinyface(tmp_path / "cache", "warmup", "--model", model, "--jobs", 2)
    assert (code, compiled) == (0, 0), err
    assert out.startswith("3 kernel specialisations ready (0 compiled, 3 already cached)"), out


DRY_RUN = """
import numpy as np
from tinyface.kernels.layout import to_nhwc
from tinyface.tools.warmup import recording
x, out = np.ones((1, 3, 2, 2), np.float32), np.zeros((1, 2, 2, 3), np.float32)
with recording() as wanted:
    to_nhwc(x, out)
assert "_compile_for_args" not in vars(to_nhwc)         # put back
print(to_nhwc.signatures, out.any(), [(module, name, len(types)) for module, name, types in wanted])
"""


def test_a_dry_run_records_kernels_without_running_or_compiling_them(tmp_path):
    env = dict(os.environ, TINYFACE_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", DRY_RUN], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "[] False [('tinyface.kernels.layout', 'to_nhwc', 2)]"
    assert not list(tmp_path.rglob("*.nbi"))


def test_warmup_refuses_a_model_without_an_input_size_and_a_bad_jobs_count(tmp_path):
    from tinyface.cli.main import main
    g = GraphBuilder(13)
    rng = np.random.default_rng(0)
    y = g.add("Flatten", [g.add("GlobalAveragePool", [add_conv(g, "x", rng, 3, 4)])], outputs=["y"])
    onnx.save(g.build({"x": ["N", 3, "H", "W"]}, [(y, ["N", 4])]), tmp_path / "free.onnx")
    assert main(["warmup", "--model", str(tmp_path / "free.onnx")]) == 2
    assert main(["warmup", "--jobs", "0"]) == 2


@pytest.mark.slow
def test_after_warmup_with_the_detector_verify_and_one_embedding_compile_nothing(tmp_path):
    code, _, out, err = tinyface(tmp_path, "warmup", "--detector", "--threads", 2)   # compiled by workers
    assert code == 0, err
    ready, made = out.split()[0], out.split("(")[1].split()[0]
    assert int(ready) == int(made) > 5, out
    code, compiled, out, err = tinyface(tmp_path, "verify", "--threads", 2, *PHOTOS)
    assert (code, compiled) == (0, 0), err
    assert out.startswith("cosine similarity ")
    code, compiled, out, err = tinyface(tmp_path, "embed", "--aligned", "--threads", 2, ALIGNED_FACE)
    assert (code, compiled) == (0, 0), err


WANTED = """
import sys
from tinyface.cli.main import main
from tinyface.tools import warmup

def compile_ahead(wanted, jobs, stream=None):
    print(*sorted({name for _, name, _ in wanted}))
    sys.exit(0)                 # the names only: nothing compiled, no job run

warmup.compile_ahead = compile_ahead
sys.exit(main(sys.argv[1:]))
"""


def wanted_names(cache, *args):
    """The kernels a command's first run (or ``warmup``) would compile, on an empty ``cache``:
    its dry run only, in a fresh process with two compile workers."""
    env = dict(os.environ, TINYFACE_CACHE_DIR=str(cache), TINYFACE_COMPILE_JOBS="2")
    done = subprocess.run([sys.executable, "-c", WANTED, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split("\n")[0].split())


def test_only_jobs_of_many_faces_compile_the_deferred_kernels(tmp_path):
    """verify (2 faces) and a small embed run without the fused block on an empty cache, and
    a small embed of aligned faces without the narrow conv, rather than wait for them to
    compile; warmup, a folder's index and an embed of DEFERRED_FACES files compile both
    (runtime/deferred.py)."""
    from tinyface.kernels.tuning import DEFERRED_FACES
    one = ["--threads", 1]             # one thread: two faces are an image per thread, so may fuse
    verify = wanted_names(tmp_path / "a", "verify", *one, *PHOTOS)
    assert "inverted_residual" not in verify and "narrow_conv" in verify      # the detector's convs
    small = wanted_names(tmp_path / "b", "embed", "--aligned", *one, *[ALIGNED_FACE] * 2)
    assert not {"inverted_residual", "narrow_conv"} & small and {"_gemm", "depthwise", "im2col"} <= small
    deferred = {"inverted_residual", "narrow_conv"}
    assert deferred <= wanted_names(tmp_path / "c", "embed", "--aligned", *one, *[ALIGNED_FACE] * DEFERRED_FACES)
    assert deferred <= wanted_names(tmp_path / "d", "index", "--aligned", *one, "--quiet",
                                    "--gallery", tmp_path / "g.db", ALIGNED_FACE)
    assert deferred <= wanted_names(tmp_path / "e", "warmup", *one, "--jobs", 1)


@pytest.mark.parametrize("int8", [True, False])
def test_warmup_int8_wants_the_8_bit_kernels(tmp_path, int8):
    """What ``warmup --int8`` would compile (its dry run only, in a fresh process): the
    bundled 8-bit model's kernels (its GEMMs and stem in quads), which the fp32 model's
    warmup does not want."""
    wanted = wanted_names(tmp_path, "warmup", "--jobs", "1", *["--int8"] * int8)
    quantized = {"quantize", "qconv2d_quads", "qdepthwise", "qgemm_quads", "dequantize"}
    assert (quantized <= wanted) if int8 else not ((quantized | {"qconv2d", "qgemm"}) & wanted), wanted


@pytest.mark.slow
def test_after_warmup_int8_embedding_and_indexing_with_int8_compile_nothing(tmp_path):
    code, _, out, err = tinyface(tmp_path, "warmup", "--int8", "--threads", 2)
    assert code == 0 and int(out.split()[0]) >= 7, err
    code, compiled, out, err = tinyface(tmp_path, "embed", "--aligned", "--int8", "--threads", 2, ALIGNED_FACE)
    assert (code, compiled) == (0, 0), err
    code, compiled, out, err = tinyface(tmp_path, "index", "--aligned", "--int8", "--threads", 2, "--quiet",
                                        "--gallery", tmp_path / "g.db", ALIGNED_FACE)
    assert (code, compiled) == (0, 0), err
