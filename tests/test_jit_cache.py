"""TINYFACE_CACHE_DIR decides where Numba caches tinyface's kernels, whatever
was imported first and whatever NUMBA_CACHE_DIR says (tinyface/jit_cache.py).

Each case is a fresh process that defines the kernels and compiles the
smallest one.  The read-only installs are in tests/test_packaging.py.
"""
import os
import subprocess
import sys

import pytest

JOB = """
import os
import numpy as np
import tinyface
import numba
from tinyface.kernels.layout import to_nhwc
to_nhwc(np.zeros((1, 3, 2, 2), np.float32), np.empty((1, 2, 2, 3), np.float32))
print(numba.config.CACHE_DIR, os.environ["NUMBA_CACHE_DIR"])
"""


@pytest.mark.parametrize("numba_first", [False, True])
@pytest.mark.parametrize("numba_cache_dir", [None, "elsewhere"])
def test_kernels_are_cached_in_TINYFACE_CACHE_DIR(tmp_path, numba_first, numba_cache_dir):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["TINYFACE_CACHE_DIR"] = str(tmp_path / "kernels")
    if numba_cache_dir:
        env["NUMBA_CACHE_DIR"] = str(tmp_path / numba_cache_dir)
    code = ("import numba" if numba_first else "") + JOB
    done = subprocess.run([sys.executable, "-c", code],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "kernels")] * 2
    assert list((tmp_path / "kernels").rglob("layout.to_nhwc-*.nbi"))
    assert not (tmp_path / "elsewhere").exists()


def run_job(env):
    done = subprocess.run([sys.executable, "-c", JOB], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_kernels_compiled_from_other_kernel_sources_are_dropped(tmp_path):
    """Numba checks a cached kernel against its own file only, so a kernel that inlined an
    edited helper of another file would load stale: the stamp (a digest of every kernel
    source) empties the folder when it differs, and keeps it when it matches."""
    from tinyface import jit_cache
    env = {**{k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"},
           "TINYFACE_CACHE_DIR": str(tmp_path)}
    run_job(env)
    (stamp,) = tmp_path.rglob(jit_cache.STAMP)
    assert stamp.read_text() == jit_cache.kernels_digest()
    (index,) = stamp.parent.glob("layout.to_nhwc-*.nbi")
    made = index.stat().st_mtime_ns
    run_job(env)                                   # same sources: the compiled kernel stays
    assert index.stat().st_mtime_ns == made
    stamp.write_text("0" * 64)                     # as if the sources had changed since
    (stamp.parent / "simd.old-1.py311.nbc").write_bytes(b"stale")
    run_job(env)
    assert stamp.read_text() == jit_cache.kernels_digest()
    assert not (stamp.parent / "simd.old-1.py311.nbc").exists()
    assert index.exists() and index.stat().st_mtime_ns != made    # compiled anew


HAS_CODE = """
import numpy as np
import tinyface
from tinyface.jit_cache import has_code, is_cached
from tinyface.kernels.layout import to_nchw, to_nhwc
x, out = np.zeros((1, 3, 2, 2), np.float32), np.empty((1, 2, 2, 3), np.float32)
types = tuple(to_nhwc.typeof_pyval(a) for a in (x, out))
before = has_code(to_nhwc), is_cached(to_nhwc, types)
to_nhwc(x, out)
print(*before, has_code(to_nhwc), is_cached(to_nhwc, types), has_code(to_nchw))
"""


def test_has_code_and_is_cached_see_this_process_and_the_cache(tmp_path):
    """``has_code``: compiled in this process or cached for this CPU; ``is_cached``: that
    signature in the cache's index.  A fresh process on an empty cache, then on the cache
    the first one filled."""
    env = {**{k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}, "TINYFACE_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", HAS_CODE], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    assert all(done.returncode == 0 for done in runs), runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.split() == ["False", "False", "True", "True", "False"]
    assert runs[1].stdout.split() == ["True", "True", "True", "True", "False"]
