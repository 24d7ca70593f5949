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
