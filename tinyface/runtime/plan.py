"""A plan: the fused steps of one model, checked per input shape, then run.

``check`` walks every step's ``infer`` for a concrete input shape (the batch
kept symbolic) before any kernel runs, and caches the result, so a bad shape
is reported by name and never reaches a Numba kernel.
"""
import numpy as np

from tinyface.errors import InputError
from tinyface.runtime.shapes import BATCH, BATCH_KEY, fmt


class Plan:
    def __init__(self, steps, inputs, outputs, output_names, source):
        self.steps = steps
        self.inputs = inputs              # [ValueInfo]: declared graph inputs
        self.outputs = outputs            # internal names of the plain-layout outputs
        self.output_names = output_names  # the graph's output names
        self.source = source
        self._checked = {}

    def pack(self):
        for st in self.steps:
            if hasattr(st, "pack"):
                st.pack()
        return self

    def validate_feed(self, feed):
        """Check names, dtype, rank, fixed dims and finiteness; return the batch size."""
        names = [vi.name for vi in self.inputs]
        missing = [n for n in names if n not in feed]
        extra = [n for n in feed if n not in names]
        if missing or extra:
            raise InputError(f"{self.source}: expected inputs {names}, got {sorted(feed)}")
        batch = None
        for vi in self.inputs:
            x = feed[vi.name]
            if not isinstance(x, np.ndarray):
                raise InputError(f"input '{vi.name}': expected a numpy array, got {type(x).__name__}")
            if x.dtype != np.float32:
                raise InputError(f"input '{vi.name}': expected dtype float32, got {x.dtype}")
            if x.ndim != len(vi.shape):
                raise InputError(f"input '{vi.name}': expected rank {len(vi.shape)} "
                                 f"{fmt((BATCH,) + vi.shape[1:])}, got shape {tuple(x.shape)}")
            for axis, (want, got) in enumerate(zip(vi.shape[1:], x.shape[1:]), start=1):
                if want is not None and want != got:
                    raise InputError(f"input '{vi.name}': expected shape {fmt((BATCH,) + vi.shape[1:])}, "
                                     f"got {tuple(x.shape)} (axis {axis})")
            if x.shape[0] == 0:
                raise InputError(f"input '{vi.name}': empty batch")
            if batch not in (None, x.shape[0]):
                raise InputError(f"inputs disagree on the batch size ({batch} vs {x.shape[0]})")
            batch = x.shape[0]
            if not np.isfinite(x).all():
                raise InputError(f"input '{vi.name}': contains NaN or infinite values")
        return batch

    def check(self, feed):
        """Infer every step's shapes for this feed (batch symbolic); cached per shape."""
        key = tuple((n, x.shape[1:]) for n, x in sorted(feed.items()))
        if key not in self._checked:
            shapes = {n: (BATCH,) + tuple(x.shape[1:]) for n, x in feed.items()}
            per_step = []
            for st in self.steps:
                outs = st.infer([shapes[v] for v in st.inputs])
                per_step.append(([shapes[v] for v in st.inputs], outs))
                shapes.update(zip(st.outputs, (tuple(o) for o in outs)))
            self._checked[key] = per_step
        return self._checked[key]

    def run(self, feed):
        batch = self.validate_feed(feed)
        self.check(feed)
        env = dict(feed)
        env[BATCH_KEY] = batch
        for st in self.steps:
            st.run(env)
        return [env[name] for name in self.outputs]
