"""A loaded model: ONNX file -> graph -> optimised ops -> packed plan -> ``run``.

The engine runs any supported graph; what a face model adds (its metadata,
preprocessing, embeddings) is ``tinyface.face.model.FaceModel``, a subclass.
"""
from pathlib import Path

import numpy as np

from tinyface.errors import InputError
from tinyface.graph.lower import lower
from tinyface.graph.onnx_file import read_model
from tinyface.graph.ops import images_independent
from tinyface.kernels.tuning import RUN_CHUNK        # images per plan run inside ``Model.run``
from tinyface.limits import current_limits
from tinyface.runtime.plan import Plan
from tinyface.runtime.sizes import check_run


class Model:
    """An ONNX model ready to run: ``run(x)`` takes a float32 NCHW batch (or a dict
    of named inputs) and returns the list of outputs in graph order.

    ``Model.load(source)`` reads and compiles one; a
    subclass's ``load`` makes an instance of the subclass.
    """

    def __init__(self, graph, plan, path=None, chunk=RUN_CHUNK):
        self.graph = graph
        self.plan = plan
        self.path = path
        self.chunk = chunk                # images per plan run; None: the whole batch at once
        self.input_names = [vi.name for vi in graph.inputs]
        self.output_names = [vi.name for vi in graph.outputs]
        self._sizes_checked = None        # the last (input shapes, batch) whose sizes passed

    @classmethod
    def load(cls, source):
        """Read and compile an ONNX model from a path, serialized bytes or an
        ``onnx.ModelProto``."""
        graph = read_model(source)
        plan, low = compile_graph(graph)
        return cls(graph, plan, source if isinstance(source, (str, Path)) else None,
                   RUN_CHUNK if images_independent(low.shapes, plan.steps) else None)

    @property
    def steps(self):
        """The plan's op records (``graph.ops``), in run order."""
        return self.plan.steps

    def run(self, x):
        """Outputs for a float32 NCHW batch (or a dict of named inputs), in graph order.

        Batches larger than ``chunk`` (``RUN_CHUNK``) run in chunks of that many
        images, so each layer's maps stay in cache (measured: about 6 % faster at
        batch 32), unless the model mixes the images of a batch (see
        :func:`~tinyface.graph.ops.images_independent`).  Sizes over :mod:`tinyface.limits` are refused
        before anything is allocated.
        """
        feed = x if isinstance(x, dict) else self._single_feed(x)
        batch = self.plan.validate_feed(feed)         # once, for the whole batch
        chunk = self.chunk or batch
        self._check_sizes(feed, batch, chunk)
        if batch <= chunk:
            return self.plan.run(feed, batch)
        parts = [self.plan.run({k: v[i:i + chunk] for k, v in feed.items()}, min(chunk, batch - i))
                 for i in range(0, batch, chunk)]
        return [np.concatenate(outs) for outs in zip(*parts)]

    def _check_sizes(self, feed, batch, chunk):
        """``sizes.check_run`` for this feed's shapes, skipped when they are the last ones checked."""
        key = (tuple((name, x.shape) for name, x in sorted(feed.items())), current_limits())
        if key != self._sizes_checked:
            check_run(self.plan, {k: v[:chunk] for k, v in feed.items()}, min(batch, chunk), batch)
            self._sizes_checked = key

    def _single_feed(self, x):
        if len(self.input_names) != 1:
            raise InputError(f"model has inputs {self.input_names}; pass a dict of arrays")
        return {self.input_names[0]: x}


def compile_graph(graph):
    """Lower and optimise a graph, and pack its ops into a runnable Plan."""
    ops, outputs, low = lower(graph)
    return Plan(ops, graph.inputs, outputs, [vi.name for vi in graph.outputs], graph.source, low.layouts), low
