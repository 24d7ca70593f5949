"""Kernels a job of a few faces does without until they are compiled.

Two kernels take long to compile and only make a run faster, never different:

- the fused inverted-residual block (``kernels.block``: 14-16 CPU s on the 2-core Zen 3
  VM, 12 of the 34 of ``verify``'s first run on the Zen 5 one; it saves 4-16 % of the
  model's time);
- the narrow dense conv (``kernels.narrow``: 6-7 CPU s on the Zen 3 VM; on the bundled
  model it runs only the stem conv, 2 % of the time).

While neither this process nor the JIT cache has one of them compiled (``ready``), their
ops bind to kernels that every model compiles anyway, with the same result bit for bit:
a block as its three convs, and a dense conv of a multiple of ``narrow.SAME_AS_GEMM``
output channels as its windows gathered into rows (``conv.im2col``) times the GEMM, which
sums each output in the same order (the stem conv: 249-279 us against 189-194 at batch 1
on the Zen 3 VM).  Other dense convs take the narrow kernel regardless: other channel
counts, and windows larger than the output (P-Net's, 4.5-5.6x: ``binders.gathers_windows``).

So a first run of a few aligned faces compiles neither.  Within :func:`bind_all`, ops bind
to them whether compiled or not, and a call then compiles them: ``tools.warmup`` binds
there when it prepares a job (``tinyface warmup``, and the first run of a command that
embeds many faces), and the benchmarks time the model so.
"""
from contextlib import contextmanager

from tinyface.jit_cache import has_code

_regardless = False


@contextmanager
def bind_all():
    """Within: ops bind to the deferred kernels whether or not they are compiled yet.  Not
    for use from several threads."""
    global _regardless
    before, _regardless = _regardless, True
    try:
        yield
    finally:
        _regardless = before


def ready(kernel):
    """May ops bind to ``kernel``, one of the deferred kernels (see the module doc)?"""
    return _regardless or has_code(kernel)
