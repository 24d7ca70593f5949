"""The inverted-residual block as one step: expand 1x1 -> depthwise 3x3 -> project 1x1.

``graph.fuse`` makes it from three conv steps (their epilogues already
fused); it runs ``kernels.block.inverted_residual``, which keeps the expanded
map in cache by working in bands of output rows (see there).  Shapes are
checked by the three convs' own ``infer``.
"""
from tinyface.kernels.block import inverted_residual
from tinyface.runtime.shapes import THREADS_KEY, conv_output_size
from tinyface.runtime.steps import Step, contiguous, new_buffer

# Scratch per thread for a band's expanded and depthwise rows: at most the size of
# the measured machine's L2 (1 MB), which on MobileFaceNet means one band per image
# except in the first block (56 x 56 -> 28 x 28, two bands).  Measured (batch 1,
# one thread, time against unfused): 32 KB 1.16, 128 KB 1.07, 256 KB 1.00,
# 1 MB 0.97, 4 MB 1.02 -- smaller bands cost more than their locality saves.
SCRATCH_BYTES = 1024 * 1024


def can_fuse(expand, dw, project):
    """Whether three conv steps, each reading the previous one's output, form a block
    the kernel runs: 1x1 stride 1, 3x3 depthwise (pad 1, stride 1 or 2, a multiple of 16
    channels, the GEMM tile's vector width) and 1x1 stride 1, with a residual on the last
    at most."""
    def pointwise(st):
        return st.kind == "pointwise" and st.strides == (1, 1)
    channels, _, kh, kw = dw.weight.shape
    return (pointwise(expand) and pointwise(project) and dw.kind == "depthwise"
            and (kh, kw) == (3, 3) and dw.pads == (1, 1, 1, 1) and dw.strides in ((1, 1), (2, 2))
            and channels % 16 == 0
            and expand.epilogue.residual is None and dw.epilogue.residual is None
            and project.inputs[0] == dw.outputs[0] and dw.inputs[0] == expand.outputs[0])


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


class InvertedResidualStep(Step):
    """expand (1x1) -> dw (depthwise 3x3) -> project (1x1, maybe a residual), from their
    ConvSteps; inputs: the block's input (and the residual), output: the projection's."""
    kind = "block"

    def __init__(self, expand, dw, project):
        super().__init__(f"{expand.name} .. {project.name}", expand.inputs[:1] + project.inputs[1:],
                         project.outputs)
        self.convs = (expand, dw, project)

    def pack(self):
        for conv in self.convs:
            conv.pack()

    def conv_shapes(self, shapes):
        """The three convs' (input shapes, output shapes)."""
        expand, dw, project = self.convs
        e = expand.infer(shapes[:1])
        d = dw.infer(e)
        return [(shapes[:1], e), (e, d), (d + shapes[1:], project.infer(d + shapes[1:]))]

    def infer(self, shapes):
        return self.conv_shapes(shapes)[2][1]

    def bind(self, env):
        expand, dw, project = self.convs
        threads = env[THREADS_KEY]
        if len(env[self.inputs[0]]) < threads:
            return self._bind_unfused(env)
        calls = []
        x = contiguous(env, env[self.inputs[0]], calls)
        n, h, w, _ = x.shape
        channels = expand.packed.shape[1]
        stride = dw.strides[0]
        oh, ow = conv_output_size(h, 3, stride, 1, 1), conv_output_size(w, 3, stride, 1, 1)
        out = new_buffer(env, (n, oh, ow, project.packed.shape[1]))
        env[self.outputs[0]] = out
        rows = band_rows(oh, w, ow, channels, stride)
        expanded_pixels, depthwise_pixels = scratch_pixels(rows, stride, w, ow)
        expanded = new_buffer(env, (threads, expanded_pixels, channels))
        depthwised = new_buffer(env, (threads, depthwise_pixels, channels))
        project_args = list(project.epilogue.args(env, 4))
        project_args[4] = contiguous(env, project_args[4], calls)
        calls.append((inverted_residual, (x, expand.packed, expand.epilogue.args(env, 4), dw.packed, stride,
                                          dw.epilogue.args(env, 4), project.packed, tuple(project_args),
                                          rows, expanded, depthwised, out)))
        return calls

    def _bind_unfused(self, env):
        """The three convs one after the other, each parallel over its rows: with fewer
        images than threads, splitting each image into bands cost more than the fusion
        saved (batch 1, 2 threads: 2.75 -> 2.89-2.98 ms)."""
        calls = []
        for conv in self.convs:
            calls += conv.bind(env)
        for conv in self.convs[:2]:
            env.pop(conv.outputs[0])
        return calls

    def params(self):
        return sum(conv.params() for conv in self.convs)

    def macs(self, in_shapes, out_shapes):
        return sum(conv.macs(ins, outs) for conv, (ins, outs) in zip(self.convs, self.conv_shapes(in_shapes)))

    def work(self, in_shapes, out_shapes):
        return sum(conv.work(ins, outs) for conv, (ins, outs) in zip(self.convs, self.conv_shapes(in_shapes)))

    def detail(self):
        """E.g. ``3x3/2 64->128->64 clip[0,6] | clip[0,6] | +residual``: the depthwise
        kernel and stride, the channels, then each conv's epilogue."""
        expand, dw, project = self.convs
        channels = f"{expand.in_channels}->{dw.in_channels}->{project.weight.shape[0]}"
        epilogues = " | ".join(conv.epilogue.describe() or "linear" for conv in self.convs)
        return f"3x3/{dw.strides[0]} {channels} {epilogues}"
