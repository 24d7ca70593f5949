"""A plan: the fused ops of one model and their binders, checked per input shape, then run.

``steps`` are the op records (``graph.ops``), ``binders`` their packed binders
(``runtime.binders``), one per op.  ``check`` walks every op's ``infer`` for a
concrete input shape (the batch kept symbolic) before any kernel runs, and
caches the result, so a bad shape is reported by name and never reaches a
Numba kernel.  ``run`` then binds the ops to buffers once per input shape,
batch size and thread count (a ``Schedule``), makes the bound kernel calls,
and leaves the schedule in the process-wide cache of ``runtime.memory`` for
the next run of that key.  ``trace`` runs the steps one at a time instead,
for tools that look at them.
"""
import numba
import numpy as np

from tinyface.errors import InputError
from tinyface.graph.ops import infer_shapes
from tinyface.graph.shapes import BATCH, fmt
from tinyface.kernels.tuning import PARALLEL_MIN_MACS    # steps with less work (``Op.work``) run on one thread
from tinyface.runtime.binders import BindContext, binder, make_calls
from tinyface.runtime.memory import SCHEDULES, LRUDict
from tinyface.runtime.schedule import Schedule
from tinyface.runtime.threads import launches


def _shape_key(feed):
    """What the shape checks depend on: each input's name and shape past the batch axis."""
    return tuple((n, x.shape[1:]) for n, x in sorted(feed.items()))


# Shape checks kept per plan (least recently used dropped first).  An entry is
# each step's input and output shapes: for MobileFaceNet's 24 steps about 10 KB.
CHECKS_KEPT = 256


class Plan:
    def __init__(self, steps, inputs, outputs, output_names, source, layouts):
        self.steps = list(steps)           # the op records
        self.binders = [binder(op) for op in self.steps]     # their weights packed
        self.inputs = inputs              # [ValueInfo]: declared graph inputs
        self.outputs = outputs            # internal names of the plain-layout outputs
        self.output_names = output_names  # the graph's output names
        self.source = source
        self.layouts = layouts            # value -> "nhwc" | "plain": how a 4-D value is stored
        self._checked = LRUDict(CHECKS_KEPT)
        self._token = SCHEDULES.register(self)
        self.dying = self._liveness()

    def __getstate__(self):
        """Pickled (e.g. sent to a ``spawn`` process or a cluster worker) without its
        caches, whose token means nothing in another process, and without its binders:
        their packed weights follow the tile widths of the CPU this process compiles for
        (``gemm.pack_panels``, ``quantized.pack_quads``), so the process that unpickles
        the plan packs them again for its own."""
        state = dict(self.__dict__)
        del state["_checked"], state["_token"], state["binders"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.binders = [binder(op) for op in self.steps]
        self._checked = LRUDict(CHECKS_KEPT)
        self._token = SCHEDULES.register(self)

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
        per_step = self._checked.get(key)
        if per_step is None:
            per_step = infer_shapes(self.steps, {n: (BATCH,) + tuple(x.shape[1:]) for n, x in feed.items()})
            self._checked.put(key, per_step)
        return per_step

    def serial_steps(self, feed, batch):
        """Indices of the steps too small to be worth a second thread, for this feed."""
        return {i for i, (st, (ins, outs)) in enumerate(zip(self.steps, self.check(feed)))
                if st.work(ins, outs) * batch < PARALLEL_MIN_MACS}

    def new_context(self, feed):
        """A binding context for running steps by hand (tests, benchmarks): buffers are
        new arrays, the thread count the calling thread's."""
        return BindContext(dict(feed), self.validate_feed(feed), numba.get_num_threads(),
                           lambda shape, dtype=np.float32: np.empty(shape, dtype))

    def trace(self, feed):
        """Run the steps one at a time, yielding ``(step, calls, ctx)`` after each: its bound
        kernel calls (made once already) and the binding context, whose ``values`` hold
        its outputs.

        For tools that look at single steps (``tinyface compare``, ``tinyface bench
        --per-step``), not the fast path: each step binds buffers of its own and keeps
        them, and runs on the thread count a schedule would give it (set while the
        caller has the step).  A value no later step reads leaves ``ctx.values`` when
        the caller asks for the next step.
        """
        ctx = self.new_context(feed)
        threads = ctx.threads
        self.check(feed)
        serial = self.serial_steps(feed, ctx.batch) if threads > 1 else ()
        try:
            for i, (step, op_binder, dying) in enumerate(zip(self.steps, self.binders, self.dying)):
                ctx.threads = 1 if i in serial else threads
                numba.set_num_threads(ctx.threads)
                calls = op_binder.bind(ctx)
                with launches():
                    make_calls(calls)
                yield step, calls, ctx
                for v in dying:
                    ctx.values.pop(v, None)
        finally:
            numba.set_num_threads(threads)

    def run(self, feed, batch=None):
        """Outputs for ``feed``; ``batch`` given means the caller already validated it.

        The schedule goes back to the cache only after a complete run: one
        interrupted (KeyboardInterrupt between two kernel calls) is dropped.
        """
        if batch is None:
            batch = self.validate_feed(feed)
        self.check(feed)
        threads = numba.get_num_threads()
        key = (_shape_key(feed), batch, threads)
        schedule = SCHEDULES.take(self._token, key) or self.schedule(feed, batch, threads)
        with launches():
            outputs = schedule.run(feed)
        SCHEDULES.give(self._token, key, schedule)
        return outputs

    def schedule(self, feed, batch, threads=None):
        """A new ``Schedule`` for this feed's shapes, batch and thread count
        (default: the calling thread's)."""
        threads = threads or numba.get_num_threads()
        serial = self.serial_steps(feed, batch) if threads > 1 else ()
        return Schedule(self, feed, batch, threads, serial)
