"""The binder of the inverted-residual block: expand 1x1 -> depthwise 3x3 -> project 1x1.

``graph.passes.fuse_blocks`` makes the ``InvertedResidual`` op from three convs
(their epilogues already fused); it runs ``kernels.block.inverted_residual``,
which keeps the expanded map in cache by working in bands of output rows (see
there).  Shapes are checked by the three convs' own ``infer``.

With fewer images than threads, each image's output rows are cut into as many
bands as it takes to give every thread a task (``bands_for_threads``); the bands
recompute the expanded rows they share.

A block runs as its three convs instead, with the same result bit for bit, until the
fused kernel is compiled: it is one of ``runtime.deferred``'s kernels.
"""
from tinyface.graph.shapes import conv_output_size
from tinyface.kernels.block import inverted_residual
# Scratch per thread for a band's expanded and depthwise rows (measured: see
# ``kernels.tuning``); on MobileFaceNet one band per image except in the first block
# (56 x 56 -> 28 x 28, two bands).
from tinyface.kernels.tuning import BLOCK_SCRATCH_BYTES as SCRATCH_BYTES
from tinyface.runtime.deferred import ready


def scratch_pixels(rows, stride, width, out_width):
    """Pixels of the kernel's two scratches per thread for bands of ``rows`` output rows:
    the expanded input rows a band reads ((rows - 1) * stride + 3 of them, the last
    ones shared with the next band) and the band's depthwise rows."""
    return ((rows - 1) * stride + 3) * width, rows * out_width


def band_rows(out_height, width, out_width, channels, stride):
    """Output rows per band: the most whose scratch fits ``SCRATCH_BYTES`` (at least one)."""
    rows = out_height
    while rows > 1 and 4 * channels * sum(scratch_pixels(rows, stride, width, out_width)) > SCRATCH_BYTES:
        rows -= 1
    return rows


def bands_for_threads(rows, out_height, images, threads):
    """Output rows per band, at most ``rows``, so that ``images`` images make at least one
    task per thread where the map's height allows: with fewer images than threads each
    image is cut into ceil(threads / images) bands.  Zen 5, 2026-12-02, batch 1 on two
    threads: 2.09 -> 1.84 ms against the three convs unfused, 11 rounds of fresh processes,
    every round faster (the fourth session, on Zen 4, measured the opposite: 2.75 -> 2.89)."""
    if images >= threads:
        return rows
    return min(rows, -(-out_height // -(-threads // images)))


class BlockBinder:
    """Binds an ``InvertedResidual`` op, given the binders of its three convs (packed)."""

    def __init__(self, op, conv_binders):
        self.op = op
        self.convs = conv_binders

    def bind(self, ctx):
        expand, dw, project = self.convs
        if not ready(inverted_residual):
            return self._bind_unfused(ctx)
        calls = []
        x = ctx.contiguous(ctx.values[self.op.inputs[0]], calls)
        n, h, w, _ = x.shape
        channels = expand.weight.shape[1]
        stride = dw.op.strides[0]
        oh, ow = conv_output_size(h, 3, stride, 1, 1), conv_output_size(w, 3, stride, 1, 1)
        out = ctx.new_buffer((n, oh, ow, project.weight.shape[1]))
        ctx.values[self.op.outputs[0]] = out
        rows = bands_for_threads(band_rows(oh, w, ow, channels, stride), oh, n, ctx.threads)
        expanded_pixels, depthwise_pixels = scratch_pixels(rows, stride, w, ow)
        expanded = ctx.new_buffer((ctx.threads, expanded_pixels, channels))
        depthwised = ctx.new_buffer((ctx.threads, depthwise_pixels, channels))
        project_epilogue = project.epilogue.value(ctx, calls=calls)     # may add a copy of the residual
        calls.append((inverted_residual, (x, expand.weight, expand.panels, expand.epilogue.value(ctx), dw.weight,
                                          stride, dw.epilogue.value(ctx), project.weight, project.panels,
                                          project_epilogue, rows, expanded, depthwised, out)))
        return calls

    def _bind_unfused(self, ctx):
        """The three convs one after the other, each parallel over its rows."""
        calls = []
        for conv in self.convs:
            calls += conv.bind(ctx)
        for conv in self.convs[:2]:
            ctx.values.pop(conv.op.outputs[0])
        return calls
