"""A plan: the fused steps of one model, checked per input shape, then run.

``check`` walks every step's ``infer`` for a concrete input shape (the batch
kept symbolic) before any kernel runs, and caches the result, so a bad shape
is reported by name and never reaches a Numba kernel.  ``run`` then binds the
steps to buffers once per input shape, batch size and thread count (a
``Schedule``) and makes the bound kernel calls.
"""
import threading
from collections import OrderedDict

import numba
import numpy as np

from tinyface.errors import InputError
from tinyface.runtime.schedule import BufferPool, Schedule
from tinyface.runtime.shapes import ALLOC_KEY, BATCH, BATCH_KEY, THREADS_KEY, fmt


def _shape_key(feed):
    """What the shape checks depend on: each input's name and shape past the batch axis."""
    return tuple((n, x.shape[1:]) for n, x in sorted(feed.items()))


# A step with less work than this many GEMM multiply-adds (over the whole batch;
# see ``Step.work``) runs on one thread: waking a second worker costs more than it
# saves (measured on 2 cores).
PARALLEL_MIN_MACS = 1_000_000

# Schedules kept per calling thread (least recently used dropped first); their
# buffers stay in the thread's pool either way.
SCHEDULES_KEPT = 16


class Plan:
    def __init__(self, steps, inputs, outputs, output_names, source):
        self.steps = steps
        self.inputs = inputs              # [ValueInfo]: declared graph inputs
        self.outputs = outputs            # internal names of the plain-layout outputs
        self.output_names = output_names  # the graph's output names
        self.source = source
        self._checked = {}
        self._serial = {}
        self._local = threading.local()      # per calling thread: a buffer pool and its schedules
        self.dying = self._liveness()

    def _liveness(self):
        """For each step, the values whose last reader it is (outputs never die)."""
        last = {}
        for i, st in enumerate(self.steps):
            for v in st.inputs:
                last[v] = i
        dying = [[] for _ in self.steps]
        keep = set(self.outputs)
        for v, i in last.items():
            if v not in keep:
                dying[i].append(v)
        return dying

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
            if 0 in x.shape:
                raise InputError(f"input '{vi.name}': shape {tuple(x.shape)} has a zero-size dimension")
            if batch not in (None, x.shape[0]):
                raise InputError(f"inputs disagree on the batch size ({batch} vs {x.shape[0]})")
            batch = x.shape[0]
            if not np.isfinite(x).all():
                raise InputError(f"input '{vi.name}': contains NaN or infinite values")
        return batch

    def check(self, feed):
        """Infer every step's shapes for this feed (batch symbolic); cached per shape."""
        key = _shape_key(feed)
        if key not in self._checked:
            shapes = {n: (BATCH,) + tuple(x.shape[1:]) for n, x in feed.items()}
            per_step = []
            for st in self.steps:
                outs = st.infer([shapes[v] for v in st.inputs])
                per_step.append(([shapes[v] for v in st.inputs], outs))
                shapes.update(zip(st.outputs, (tuple(o) for o in outs)))
            self._checked[key] = per_step
        return self._checked[key]

    def serial_steps(self, feed, batch):
        """Indices of the steps too small to be worth a second thread, for this feed."""
        key = (_shape_key(feed), batch)
        if key not in self._serial:
            self._serial[key] = {i for i, (st, (ins, outs)) in enumerate(zip(self.steps, self.check(feed)))
                                 if st.work(ins, outs) * batch < PARALLEL_MIN_MACS}
        return self._serial[key]

    def new_env(self, feed):
        """A value environment for running steps by hand (tests, benchmarks)."""
        env = dict(feed)
        env[BATCH_KEY] = self.validate_feed(feed)
        env[ALLOC_KEY] = lambda shape: np.empty(shape, np.float32)
        env[THREADS_KEY] = numba.get_num_threads()
        return env

    def run(self, feed, batch=None):
        """Outputs for ``feed``; ``batch`` given means the caller already validated it."""
        if batch is None:
            batch = self.validate_feed(feed)
        self.check(feed)
        return self.schedule(feed, batch).run(feed)

    def schedule(self, feed, batch):
        """The calling thread's ``Schedule`` for this feed's shapes, batch and thread count."""
        local = self._local
        if not hasattr(local, "pool"):
            local.pool, local.schedules = BufferPool(), OrderedDict()
        threads = numba.get_num_threads()
        key = (_shape_key(feed), batch, threads)
        found = local.schedules.pop(key, None)       # put back below, as the most recent
        if found is None:
            serial = self.serial_steps(feed, batch) if threads > 1 else ()
            found = Schedule(self, feed, batch, threads, serial, local.pool)
            if len(local.schedules) >= SCHEDULES_KEPT:
                local.schedules.popitem(last=False)
        local.schedules[key] = found
        return found
