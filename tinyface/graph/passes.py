"""The load-time passes: pure functions from a list of ops to a new one.

Each pass merges an op into the conv or GEMM (or ScaleShift) that produces its
input, when that producer has no other reader and its output is not a graph
output; the merged op keeps the consumer's output name, so the rest of the
graph is untouched.  A pass applies its rule until it no longer matches, in
op order; :func:`optimise` runs the four merging passes until none changes
anything (folds first, see there), then :func:`fuse_blocks`.

* :func:`fold_batchnorm`: a BatchNorm (an affine ``ScaleShift`` marked
  ``trained``) after a conv/GEMM whose epilogue is still empty goes into its
  weights and bias: w' = w * s, b' = b * s + t.
* :func:`fold_scale_shift`: the same for a constant Mul/Add/Sub/Div.
* :func:`fuse_activation`: an activation becomes the producer's ``act1`` (or
  ``act2`` once a residual has been fused), or joins an affine ``ScaleShift``
  that has none.
* :func:`fuse_residual`: an Add of the producer's output and a value that
  exists when the producer runs becomes the producer's residual.
* :func:`fuse_quantized_residual`: an 8-bit Add (``QAdd``) of an integer conv's
  output and an earlier byte value becomes the conv's residual (``Requantize``).
* :func:`fuse_blocks`: each chain 1x1 conv -> 3x3 depthwise -> 1x1 conv,
  each conv read by the next alone, becomes one ``InvertedResidual``.

No pass changes an op: each returns a new list, sharing the ops it kept.
"""
from dataclasses import replace

from tinyface.graph import ops as O

# The block kernel computes its depthwise channels in vectors of 16 lanes.
BLOCK_CHANNEL_MULTIPLE = 16


def _readers(ops):
    """For each value, the indices of the ops that read it, once per read."""
    readers = {}
    for i, op in enumerate(ops):
        for v in op.inputs:
            readers.setdefault(v, []).append(i)
    return readers


def _merge_everywhere(ops, outputs, merge):
    """Apply ``merge(producer, op, pos, producer_of, j)`` -- the merged producer, or
    None -- to the first (op, input) it accepts, in order, until it accepts none."""
    ops = list(ops)
    while True:
        producer_of = {o: i for i, op in enumerate(ops) for o in op.outputs}
        readers = _readers(ops)
        for i, op in enumerate(ops):
            merged = None
            for pos, v in enumerate(op.inputs):
                j = producer_of.get(v)
                if j is None or v in outputs or len(readers.get(v, [])) != 1:
                    continue
                merged = merge(ops[j], op, pos, producer_of, j)
                if merged is not None:
                    ops[j] = replace(merged, outputs=op.outputs)
                    del ops[i]
                    break
            if merged is not None:
                break
        else:
            return ops


def _conv_like(op):
    return isinstance(op, (O.Conv, O.Gemm))


def _fold(prod, op):
    """``prod`` with the affine ``op`` folded into its weights, or None."""
    ep = prod.epilogue
    if ep.act1 or ep.residual is not None or op.act:
        return None
    channels = len(ep.bias)
    scale, shift = O.widen(op.scale, channels), O.widen(op.shift, channels)
    if scale is None or shift is None:
        return None
    return prod.scaled(scale, shift)


def fold_batchnorm(ops, outputs):
    def merge(prod, op, pos, producer_of, j):
        if isinstance(op, O.ScaleShift) and op.trained and not op.is_pure_activation() and _conv_like(prod):
            return _fold(prod, op)
        return None
    return _merge_everywhere(ops, outputs, merge)


def fold_scale_shift(ops, outputs):
    def merge(prod, op, pos, producer_of, j):
        if isinstance(op, O.ScaleShift) and not op.trained and not op.is_pure_activation() \
                and _conv_like(prod):
            return _fold(prod, op)
        return None
    return _merge_everywhere(ops, outputs, merge)


def _activation(op, channels):
    """The activation of the pure-activation ``op`` over ``channels`` channels, or None."""
    return (op.act or O.Activation.identity(len(op.scale))).widened(channels)


def fuse_activation(ops, outputs):
    def merge(prod, op, pos, producer_of, j):
        if not (isinstance(op, O.ScaleShift) and op.is_pure_activation()):
            return None
        if _conv_like(prod):
            ep = prod.epilogue
            act = _activation(op, len(ep.bias))
            if act is None:
                return None
            if not ep.act1 and ep.residual is None:
                return replace(prod, epilogue=replace(ep, act1=act))
            if ep.residual is not None and not ep.act2:
                return replace(prod, epilogue=replace(ep, act2=act))
            return None
        if isinstance(prod, O.ScaleShift) and not prod.act:
            channels = max(len(prod.scale), len(op.act.slope) if op.act else len(op.scale))
            act = _activation(op, channels)
            scale, shift = O.widen(prod.scale, channels), O.widen(prod.shift, channels)
            if act is None or scale is None:
                return None
            return replace(prod, scale=scale, shift=shift, act=act)
        return None
    return _merge_everywhere(ops, outputs, merge)


def fuse_residual(ops, outputs):
    def merge(prod, op, pos, producer_of, j):
        if not (isinstance(op, O.Add) and _conv_like(prod)):
            return None
        ep = prod.epilogue
        if ep.residual is not None or ep.act2:
            return None
        other = op.inputs[1 - pos]
        if producer_of.get(other, -1) >= j or other == op.inputs[pos]:     # -1: a graph input
            return None
        return replace(prod, inputs=prod.inputs + (other,), epilogue=replace(ep, residual=other))
    return _merge_everywhere(ops, outputs, merge)


def can_fuse_block(expand, dw, project):
    """Whether three convs, each reading the previous one's output, form a block the
    kernel runs: 1x1 stride 1, 3x3 depthwise (pad 1, stride 1 or 2, a multiple of 16
    channels) and 1x1 stride 1, with a residual on the last at most."""
    def pointwise(op):
        return op.kind == "pointwise" and op.strides == (1, 1)
    channels, _, kh, kw = dw.weight.shape
    return (pointwise(expand) and pointwise(project) and dw.kind == "depthwise"
            and (kh, kw) == (3, 3) and dw.pads == (1, 1, 1, 1) and dw.strides in ((1, 1), (2, 2))
            and channels % BLOCK_CHANNEL_MULTIPLE == 0
            and expand.epilogue.residual is None and dw.epilogue.residual is None
            and project.inputs[0] == dw.outputs[0] and dw.inputs[0] == expand.outputs[0])


def fuse_blocks(ops, outputs):
    """Each fusable conv -> depthwise -> conv chain as one block, placed where its last
    conv was."""
    readers = _readers(ops)

    def only_reader(v):
        """The op that alone reads ``v`` (not a graph output), if any."""
        found = readers.get(v, [])
        return ops[found[0]] if len(found) == 1 and v not in outputs else None

    fused = {}                  # id of a block's last conv -> the block; its first two -> None
    for expand in ops:
        if not isinstance(expand, O.Conv) or id(expand) in fused:
            continue
        dw = only_reader(expand.outputs[0])
        project = dw and only_reader(dw.outputs[0])
        if isinstance(dw, O.Conv) and isinstance(project, O.Conv) and can_fuse_block(expand, dw, project):
            fused[id(expand)] = fused[id(dw)] = None
            fused[id(project)] = O.InvertedResidual.of(expand, dw, project)
    return [fused.get(id(op), op) for op in ops if fused.get(id(op), op) is not None]


def fuse_quantized_residual(ops, outputs):
    """A ``QAdd`` whose operand is a ``QConv``'s (or ``QGemm``'s) output, read by it alone,
    becomes that op's fused residual: the op still rounds its own output to bytes first,
    then adds them as the QAdd does, so the result is the same bit for bit."""
    def merge(prod, op, pos, producer_of, j):
        if not (isinstance(op, O.QAdd) and isinstance(prod, (O.QConv, O.QGemm)) and prod.requant.residual is None):
            return None
        other = op.inputs[1 - pos]
        if producer_of.get(other, -1) >= j or other == op.inputs[pos]:
            return None
        own_scale, own_zero = (op.a_scale, op.a_zero) if pos == 0 else (op.b_scale, op.b_zero)
        r_scale, r_zero = (op.b_scale, op.b_zero) if pos == 0 else (op.a_scale, op.a_zero)
        rq = prod.requant
        if (own_scale, own_zero) != (rq.y_scale, rq.y_zero):
            return None
        requant = replace(rq, residual=other, residual_scale=r_scale, residual_zero=r_zero,
                          sum_scale=op.y_scale, sum_zero=op.y_zero, sum_lo=op.lo, sum_hi=op.hi)
        return replace(prod, inputs=prod.inputs + (other,), requant=requant)
    return _merge_everywhere(ops, outputs, merge)


MERGING_PASSES = (fold_batchnorm, fold_scale_shift, fuse_activation, fuse_residual, fuse_quantized_residual)


def optimise(ops, outputs):
    """The merging passes until none merges anything, then ``fuse_blocks``.

    After a pass merges something, the passes start again from the first: a fold
    goes before an activation fusion, since an activation joined to an affine
    ``ScaleShift`` would keep that ``ScaleShift`` from folding into its conv
    (conv -> Mul -> BatchNorm -> Relu is one conv: the Mul folds, then the
    BatchNorm, then the Relu fuses).
    """
    ops = list(ops)
    merged = True
    while merged:
        merged = False
        for merging in MERGING_PASSES:
            before = len(ops)             # every merge removes one op
            ops = merging(ops, outputs)
            if len(ops) < before:
                merged = True
                break
    return fuse_blocks(ops, outputs)
