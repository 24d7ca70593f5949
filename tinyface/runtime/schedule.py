"""A schedule: a plan's steps bound to buffers for one input shape.

Choosing buffers and building each kernel's arguments is Python work (about
3 us per step, a sixth of a millisecond per MobileFaceNet run).  It depends
only on the input shapes, the batch size and the thread count, so it is done
once per such key (the binders' ``bind``); a run then copies the inputs into the
schedule's own buffers, makes the bound kernel calls in order and copies the
outputs out.

Buffers come from the schedule's own ``BufferPool``, several values sharing
one buffer when their lifetimes do not overlap.  The schedule owns them: they
are freed with it (``runtime.memory`` decides how many idle schedules are
kept).  One schedule is used by one run at a time, and a run's results are
copies.
"""
import math

import numba
import numpy as np

from tinyface.runtime.binders import BindContext, make_calls


class BufferPool:
    """The buffers of one schedule: flat arrays of bytes, each lent out as one value of
    any shape and dtype (float32, or bytes for 8-bit ops) that fits in it; ``nbytes``
    counts all it made.

    ``take`` lends the smallest free buffer that holds the request (a view of its
    first bytes), and makes a new one only when none does.  Sharing buffers across
    shapes keeps a schedule small: MobileFaceNet's batch-1 schedule on one thread takes
    2.9 MB, where a buffer per shape took 6.4 MB (docs/memory.md, "Buffers shared across
    shapes").
    """

    def __init__(self):
        self.free = []
        self.nbytes = 0

    def take(self, shape, dtype=np.float32):
        """An uninitialised C-contiguous array of ``shape`` and ``dtype``, a view of one of
        the pool's buffers (``_root`` of it is the buffer, to be given back)."""
        dtype = np.dtype(dtype)
        size = math.prod(shape) * dtype.itemsize
        fits = [i for i, buf in enumerate(self.free) if buf.nbytes >= size]
        if fits:
            buf = self.free.pop(min(fits, key=lambda i: self.free[i].nbytes))
        else:
            buf = np.empty(size, np.uint8)
            self.nbytes += size
        return buf[:size].view(dtype).reshape(shape)

    def give(self, buffer):
        """Return a buffer (``_root`` of an array ``take`` gave) to the free ones."""
        self.free.append(buffer)


def _root(array):
    """The buffer that owns ``array``'s memory (itself, or the base of a view)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


class Schedule:
    """The bound kernel calls of one plan for one (input shapes, batch, threads).

    ``segments`` is a list of ``(threads, calls)``: consecutive calls that run
    with the same Numba thread count, so the count is switched only between
    segments.  ``nbytes`` is the size of the buffers it owns.
    """

    def __init__(self, plan, feed, batch, threads, serial):
        pool = BufferPool()
        held = {}        # id -> buffer taken from the pool and not given back yet
        readers = {}     # id(buffer) -> how many live values are stored in it

        def take(shape, dtype=np.float32):
            buf = pool.take(shape, dtype)
            root = _root(buf)
            held[id(root)] = root
            readers[id(root)] = 0
            return buf

        def count_readers(value, change):
            """Add ``change`` to the live values stored in ``value``'s buffer; at none, the
            buffer goes back to the pool (a later step may take it)."""
            key = id(_root(value))
            if key in held:
                readers[key] += change
                if readers[key] == 0:
                    pool.give(held.pop(key))

        self.inputs = {name: take(x.shape) for name, x in feed.items()}
        ctx = BindContext(dict(self.inputs), batch, threads, take)
        values = ctx.values
        for value in self.inputs.values():
            count_readers(value, +1)
        self.threads = threads
        self.segments = []
        for i, (step, binder, dying) in enumerate(zip(plan.steps, plan.binders, plan.dying)):
            wanted = 1 if i in serial else threads
            ctx.threads = wanted
            calls = binder.bind(ctx)
            if not self.segments or self.segments[-1][0] != wanted:
                self.segments.append((wanted, []))
            self.segments[-1][1].extend(calls)
            for v in step.outputs:
                count_readers(values[v], +1)
            for v in dying:
                count_readers(values.pop(v), -1)
            for key in [key for key in held if readers[key] == 0]:    # the step's scratch
                pool.give(held.pop(key))
        self.outputs = [values[name] for name in plan.outputs]
        self.nbytes = pool.nbytes

    def run(self, feed):
        """Outputs for ``feed`` (already validated for this schedule's key), as new arrays."""
        for name, buf in self.inputs.items():
            np.copyto(buf, feed[name])
        current = self.threads
        try:
            for threads, calls in self.segments:
                if threads != current:
                    numba.set_num_threads(threads)
                    current = threads
                make_calls(calls)
        finally:
            if current != self.threads:
                numba.set_num_threads(self.threads)
        return [out.copy() for out in self.outputs]
