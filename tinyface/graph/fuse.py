"""Graph rewrites on the lowered steps: fold and fuse into conv epilogues.

Each rule merges a step into the conv/GEMM step that produces its input, when
that producer has no other consumer (and is not a graph output):

1. an affine ScaleShift with no activation (a BatchNormalization, or a
   constant Mul/Add/Sub/Div) after a conv/GEMM whose epilogue is still empty
   is folded into the weights and bias: w' = w * s, b' = b * s + t;
2. a pure activation becomes the producer's ``act1`` (or ``act2`` once a
   residual has been fused);
3. an Add of the producer's output and another value that already exists when
   the producer runs becomes the producer's residual;
4. an activation after an affine ScaleShift joins that ScaleShift.

The output name of the merged step is kept, so the rest of the graph is
untouched.  Applied until nothing changes.  Then each chain of a 1x1 conv, a
3x3 depthwise conv and a 1x1 conv, where each conv's output is read by the
next alone, becomes one inverted-residual block step (``runtime.block``).
"""
from tinyface.runtime import steps as S
from tinyface.runtime.block import InvertedResidualStep, can_fuse


def fuse(steps, outputs):
    steps = list(steps)
    changed = True
    while changed:
        changed = False
        producer = {o: i for i, st in enumerate(steps) for o in st.outputs}
        consumers = _consumers(steps)
        for i, st in enumerate(steps):
            for pos, v in enumerate(st.inputs):
                j = producer.get(v)
                if j is None or v in outputs or len(consumers.get(v, [])) != 1:
                    continue
                if _merge(steps[j], st, pos, producer, j):
                    steps[j].outputs = list(st.outputs)
                    del steps[i]
                    changed = True
                    break
            if changed:
                break
    return _fuse_blocks(steps, outputs)


def _consumers(steps):
    """For each value, the indices of the steps that read it, once per read."""
    consumers = {}
    for i, st in enumerate(steps):
        for v in st.inputs:
            consumers.setdefault(v, []).append(i)
    return consumers


def _fuse_blocks(steps, outputs):
    """Replace each fusable conv -> depthwise -> conv chain by one block step, placed
    where its last conv was."""
    consumers = _consumers(steps)

    def only_reader(v):
        """The step that alone reads ``v`` (not a graph output), if any."""
        readers = consumers.get(v, [])
        return steps[readers[0]] if len(readers) == 1 and v not in outputs else None

    fused = {}                  # id of a block's last conv -> the block; its first two -> None
    for expand in steps:
        if not isinstance(expand, S.ConvStep) or id(expand) in fused:
            continue
        dw = only_reader(expand.outputs[0])
        project = dw and only_reader(dw.outputs[0])
        if isinstance(dw, S.ConvStep) and isinstance(project, S.ConvStep) and can_fuse(expand, dw, project):
            fused[id(expand)] = fused[id(dw)] = None
            fused[id(project)] = InvertedResidualStep(expand, dw, project)
    return [fused.get(id(st), st) for st in steps if fused.get(id(st), st) is not None]


def _merge(prod, st, pos, producer, prod_index):
    """Try to merge ``st`` (reading ``prod``'s output at input ``pos``) into ``prod``."""
    conv_like = isinstance(prod, (S.ConvStep, S.GemmStep))
    if isinstance(st, S.ScaleShiftStep):
        if conv_like:
            return _fold_scale_shift(prod, st)
        if isinstance(prod, S.ScaleShiftStep) and st.is_pure_activation() and not prod.fused_act:
            channels = max(len(prod.scale), len(st.act.slope))
            act = _widen(st.act, channels)
            scale, shift = S.widen(prod.scale, channels), S.widen(prod.shift, channels)
            if act is None or scale is None:
                return False
            prod.scale, prod.shift, prod.act, prod.fused_act = scale, shift, act, True
            return True
        return False
    if isinstance(st, S.AddStep) and conv_like and prod.epilogue.residual is None \
            and not prod.epilogue.fused_act2:
        other = st.inputs[1 - pos]
        other_index = producer.get(other, -1)     # -1: a graph input
        if other_index >= prod_index or other == st.inputs[pos]:
            return False
        prod.epilogue.residual = other
        prod.inputs.append(other)
        return True
    return False


def _fold_scale_shift(prod, st):
    ep = prod.epilogue
    channels = len(ep.bias)
    if st.is_pure_activation():
        act = _widen(st.act, channels)
        if act is None:
            return False
        if not ep.fused_act1 and ep.residual is None:
            ep.act1, ep.fused_act1 = act, True
            return True
        if ep.residual is not None and not ep.fused_act2:
            ep.act2, ep.fused_act2 = act, True
            return True
        return False
    if ep.fused_act1 or ep.residual is not None or st.fused_act:
        return False
    scale, shift = S.widen(st.scale, channels), S.widen(st.shift, channels)
    if scale is None or shift is None:
        return False
    prod.scale_output(scale, shift)
    return True


def _widen(act, channels):
    slope = S.widen(act.slope, channels)
    if slope is None:
        return None
    return type(act)(slope, act.lo, act.hi, act.learned)

