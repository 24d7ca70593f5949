"""The memory a plan's steps allocate, checked against :mod:`tinyface.limits` first.

An op allocates its outputs (float32), and some ops more:

* a dense convolution (``Conv`` of kind "conv") a zero-padded copy of its
  input, at most N x C x (H + pad_top + pad_bottom) x (W + pad_left + pad_right)
  (``kernels.conv``), or with no more terms per output than output channels perhaps
  its windows as rows instead (``kernels.conv.im2col``: ``runtime.deferred``);
* an inverted-residual block its expanded and depthwise maps when it runs as
  three convs (``runtime.block``: fewer images than threads);
* a softmax two copies of its input with the axis moved last.

``Op.allocated`` lists those arrays; ``graph.shapes.check_shapes`` holds each
against ``MAX_TENSOR_ELEMENTS`` (lowering calls it for one image, the batch
and unknown dims counted as 1), and :func:`check_run` also sums the bytes a
run keeps alive at once against ``MAX_RUN_BYTES``, before the run binds any
buffer.  Smaller scratch is not counted: a block's bands (``SCRATCH_BYTES``
per thread), ``conv2d``'s patch rows, contiguous copies of strided views.  The
schedule's pool can hold more than this sum: a buffer freed early that is too
small for a later value stays beside the one made for it (measured up to 1.38x
the sum, for MTCNN's nets; docs/memory.md, "Buffers shared across shapes").
"""
from tinyface.errors import InputError
from tinyface.graph.shapes import BATCH, elements, fmt
from tinyface.limits import check_limit

FLOAT_BYTES = 4


def check_run(plan, feed, batch, total_batch):
    """Refuse a run of ``batch`` images at once (of ``total_batch`` in all) whose arrays
    exceed ``MAX_TENSOR_ELEMENTS`` or whose live values exceed ``MAX_RUN_BYTES``.

    Walks the steps in order with the plan's liveness (``plan.dying``): before a
    step, the values still to be read are alive; the step adds what it allocates.
    The run's own copies of the inputs count, and so do the outputs for the whole
    batch (a run returns copies, ``Model.run`` concatenates its chunks).
    """
    per_step = plan.check(feed)
    shape_of = {name: (BATCH,) + x.shape[1:] for name, x in feed.items()}
    live = {name: FLOAT_BYTES * elements(shape, batch) for name, shape in shape_of.items()}
    alive = sum(live.values())
    peak, peak_step = alive, None
    largest = (0, None, None)                       # (elements, step, shape)
    for step, dying, (ins, outs) in zip(plan.steps, plan.dying, per_step):
        sizes = [(elements(shape, batch), shape) for shape in step.allocated(ins, outs)]
        for count, shape in sizes:
            if count > largest[0]:
                largest = (count, step, shape)
        during = alive + FLOAT_BYTES * sum(n for n, _ in sizes)
        if during > peak:
            peak, peak_step = during, step
        for name, shape in zip(step.outputs, outs):
            shape_of[name] = shape
            live[name] = FLOAT_BYTES * elements(shape, batch)
            alive += live[name]
        for name in dying:
            alive -= live.pop(name, 0)
    count, step, shape = largest
    if step is not None:
        check_limit("MAX_TENSOR_ELEMENTS", count, InputError,
                    f"{plan.source}: {step.kind} step '{step.name}': for {batch} image(s), an array of shape "
                    f"{fmt(shape)}")
    returned = FLOAT_BYTES * sum(elements(shape_of[name], total_batch) for name in plan.outputs)
    where = f" (most at {peak_step.kind} step '{peak_step.name}')" if peak_step else ""
    check_limit("MAX_RUN_BYTES", peak + returned, InputError,
                f"{plan.source}: a run of {batch} image(s) of shape "
                f"{', '.join(fmt(x.shape[1:]) for x in feed.values())}{where}")
