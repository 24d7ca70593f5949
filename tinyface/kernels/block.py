"""An inverted-residual block fused over bands of rows: expand 1x1 -> depthwise 3x3 -> project 1x1.

Layout: ``x`` is N x H x W x Ci (NHWC), ``w_expand`` Ci x E and ``w_project``
E x Co (as the GEMM's ``w``), ``w_dw`` 3 x 3 x E (as the depthwise ``w``),
``out`` N x OH x OW x Co.  The maths is the three unfused steps'::

    e = epilogue_expand(x @ w_expand)                       # N x H x W x E
    d = epilogue_dw(depthwise3x3(e, w_dw, stride, pad 1))   # N x OH x OW x E
    out = epilogue_project(d @ w_project)                   # (+ residual)

computed with the same tiles, each output the same chain of multiply-adds
(``gemm.gemm_panels``), so the result is the unfused one bit for bit.

What changes is where ``e`` and ``d`` live.  Unfused, the expanded map (up to
1.6 MB in MobileFaceNet) is written out whole, then read back by the depthwise
conv, whose output is written whole and read back by the projection: at these
sizes each pass evicts what the next one needs from the 1 MB L2.  Fused, the
output is made in bands of ``band_rows`` rows: a band's expanded input rows go
to a scratch of a few rows (``expanded``), its depthwise rows to another
(``depthwised``), and the projection reads them from there while they are
still in cache.  Consecutive bands share expanded rows (two at stride 1, one
at stride 2): those are moved to the front of the scratch, not recomputed.

Each thread owns one slot of both scratches and a contiguous run of the
N x bands tasks, so only the first band of each run recomputes shared rows.
Each epilogue is the value the unfused kernels take (``epilogue.make_epilogue``);
only the projection's residual is read.
"""
import numba
import numpy as np
from numba import prange

from tinyface.kernels.depthwise import _row3x3, _three_rows
from tinyface.kernels.epilogue import vector_activations, with_residual
from tinyface.kernels.gemm import gemm_panels, row_runs_in_kernel, run_rows
from tinyface.kernels.simd import FAST


@numba.njit(inline="always", cache=True, fastmath=FAST)
def gemm_serial(a, w, panels, out, epilogue):
    """out = epilogue(a @ w) on the calling thread, ``panels`` = ``gemm.pack_panels(w)``; the
    epilogue's residual rows match ``out``'s.

    Inlined into the kernel's loop body (``_task_run``): called as a function of its
    own, the same tiles once ran 35 % slower."""
    act1, act2 = vector_activations(epilogue)
    flat = (w.reshape(-1), out.reshape(-1), epilogue[4].reshape(-1))
    M = a.shape[0]
    runs = row_runs_in_kernel(M, 1)
    for r in range(runs):
        m_lo, m_hi = run_rows(M, runs, r)
        gemm_panels(a, w, panels, out, m_lo, m_hi, flat, epilogue, act1, act2)


@numba.njit(cache=True)
def _move_rows_to_front(e, first, count):
    """e[0:count] = e[first:first+count]; copied forwards, so the ranges may overlap."""
    for p in range(count):
        for c in range(e.shape[1]):
            e[p, c] = e[first + p, c]


@numba.njit(cache=True, fastmath=FAST)
def _task_run(x_rows, w_expand, expand_panels, expand, w_dw_flat, stride, dw_bias, dw_act1, dw_act2, w_project,
              project_panels, project, res_rows, band_rows, e, d, out_rows, zero_row, no_res, dims, task_lo, task_hi):
    """Tasks ``task_lo`` to ``task_hi`` (image x band) on one thread, with its scratch ``e``
    (expanded rows) and ``d`` (depthwise rows); ``dims`` is (N, H, W, OH, OW).  The kernel's
    loop body, compiled on its own (docs/kernels.md, "A parallel loop's body is one call")."""
    N, H, W, OH, OW = dims
    Ci, E = w_expand.shape
    bands = (OH + band_rows - 1) // band_rows
    e_flat, d_flat = e.reshape(-1), d.reshape(-1)
    have_n, have_lo, have_hi = -1, 0, 0           # expanded rows [have_lo, have_hi) of image have_n
    for task in range(task_lo, task_hi):
        n, band = task // bands, task % bands
        i0 = band * band_rows
        i1 = min(OH, i0 + band_rows)
        y_lo, y_hi = max(0, i0 * stride - 1), min(H, (i1 - 1) * stride + 2)
        start = y_lo
        if n == have_n and have_lo <= y_lo < have_hi:
            _move_rows_to_front(e, (y_lo - have_lo) * W, (have_hi - y_lo) * W)
            start = have_hi
        have_n, have_lo, have_hi = n, y_lo, y_hi
        q0, q1 = (n * OH + i0) * OW, (n * OH + i1) * OW
        for phase in range(2):     # one GEMM call site for both 1x1 convs: Numba compiles it once
            if phase == 0:         # expand the input rows not in the scratch yet
                a, w, panels, o, epilogue = (x_rows[(n * H + start) * W:(n * H + y_hi) * W], w_expand,
                                             expand_panels, e[(start - y_lo) * W:(y_hi - y_lo) * W],
                                             with_residual(expand, e[0:1]))
            else:                  # depthwise rows i0..i1, then project them
                for i in range(i0, i1):
                    rows = _three_rows(e_flat, -y_lo * W * E, i * stride - 1, H, W * E, zero_row)
                    _row3x3(rows, W, E, w_dw_flat, stride, 1, d_flat, no_res, (i - i0) * OW * E, OW, False,
                            dw_bias, dw_act1, dw_act2)
                a, w, panels, o, epilogue = (d[0:(i1 - i0) * OW], w_project, project_panels, out_rows[q0:q1],
                                             with_residual(project, res_rows[q0:q1] if project[5] else res_rows))
            gemm_serial(a, w, panels, o, epilogue)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def inverted_residual(x, w_expand, expand_panels, expand, w_dw, stride, dw, w_project, project_panels, project,
                      band_rows, expanded, depthwised, out):
    """out = the fused block of ``x`` (see the module doc); shapes are checked by the caller.
    ``<conv>_panels`` is ``gemm.pack_panels`` of its weight.

    ``expanded`` is T x ((band_rows - 1) * stride + 3) * W x E and ``depthwised``
    T x band_rows * OW x E, one slot per task run (T runs in parallel).
    """
    N, H, W, Ci = x.shape
    _, OH, OW, Co = out.shape
    E = w_expand.shape[1]
    T = expanded.shape[0]
    tasks = N * ((OH + band_rows - 1) // band_rows)
    x_rows, out_rows = x.reshape(-1, Ci), out.reshape(-1, Co)
    res_rows = project[4].reshape(-1, Co) if project[5] else project[4].reshape(1, -1)
    w_dw_flat, dw_bias = w_dw.reshape(-1), dw[0]
    dw_act1, dw_act2 = vector_activations(dw)
    zero_row = np.empty(W * E, np.float32)
    for k in range(W * E):      # not np.zeros: that would be one more parallel loop to compile
        zero_row[k] = 0.0
    no_res = np.empty(1, np.float32)
    no_res[0] = 0.0
    dims = (N, H, W, OH, OW)
    for t in prange(T):
        _task_run(x_rows, w_expand, expand_panels, expand, w_dw_flat, stride, dw_bias, dw_act1, dw_act2, w_project,
                  project_panels, project, res_rows, band_rows, expanded[t], depthwised[t], out_rows, zero_row,
                  no_res, dims, np.int64(t) * tasks // T, (np.int64(t) + 1) * tasks // T)
