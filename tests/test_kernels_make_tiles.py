"""kernels.make_tiles: the committed register tile is what the generator writes,
and the SLP switch it relies on is scoped to the tile's kernels."""
import numba
import numpy as np
from numba.core import config

from tinyface.kernels import make_tiles, tiles
from tinyface.kernels.gemm import gemm, slp_vectorized


def test_tiles_py_is_up_to_date():
    """Regenerate with ``python -m tinyface.kernels.make_tiles`` if this fails."""
    assert open(tiles.__file__).read() == make_tiles.source()
    assert (tiles.ROWS, tiles.COLS) == (make_tiles.ROWS, make_tiles.COLS)


def test_source_spells_out_one_accumulator_per_tile_element():
    src = make_tiles.source(rows=2, cols=3)
    for r in range(2):
        for j in range(3):
            assert f"c{r}_{j} += x{r} * b{j}" in src
    assert "c2_0" not in src and "c0_3" not in src
    namespace = {}
    exec(compile(src.replace("cache=True", "cache=False"), "<tile>", "exec"), namespace)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 7)).astype(np.float32)
    w = rng.standard_normal((7, 6)).astype(np.float32)
    w = np.concatenate([w, w[:, :1]], axis=1)        # 7 columns: two tiles of 3 and one left over
    out = np.full((5, 7), np.nan, np.float32)
    namespace["tiles"](a, w, out, 1, 6)             # rows 1..2, columns 0..5 only
    np.testing.assert_allclose(out[1:3, :6], a[1:3] @ w[:, :6], rtol=1e-5, atol=1e-5)
    assert np.isnan(out[0]).all() and np.isnan(out[3:]).all() and np.isnan(out[:, 6]).all()


def test_slp_setting_is_restored_after_a_call():
    before = config.SLP_VECTORIZE
    a = np.ones((9, 4), np.float32)
    w = np.ones((4, 17), np.float32)
    ones = np.ones(17, np.float32)
    out = np.empty((9, 17), np.float32)
    lo, hi = np.float32(-np.inf), np.float32(np.inf)
    gemm(a, w, np.zeros(17, np.float32), ones, lo, hi, out, False, ones, lo, hi, out)
    assert config.SLP_VECTORIZE == before
    np.testing.assert_array_equal(out, 4.0)


def test_slp_is_on_only_while_a_kernel_compiles():
    before = config.SLP_VECTORIZE
    kernel = numba.njit(cache=False)(lambda x: x + 1)
    seen = []
    compile_plain = kernel.compile

    def spy(sig):
        seen.append(config.SLP_VECTORIZE)
        return compile_plain(sig)
    kernel.compile = spy
    assert slp_vectorized(kernel) is kernel
    assert kernel(1) == 2 and kernel(2) == 3       # one compile, then the compiled version
    assert kernel(1.5) == 2.5                       # a new signature compiles again
    assert seen == [1, 1]
    assert config.SLP_VECTORIZE == before
