"""A loaded model: ONNX file -> graph -> fused, packed steps -> ``run``/``embed``."""
import warnings
from pathlib import Path

import numpy as np

from tinyface.errors import InputError, ModelError, TinyfaceError
from tinyface.graph.fuse import fuse
from tinyface.graph.lower import Lowering
from tinyface.graph.onnx_file import read_model
from tinyface.limits import current_limits
from tinyface.paths import default_model_path
from tinyface.runtime.metadata import read_info
from tinyface.runtime.plan import Plan
from tinyface.runtime.shapes import BATCH
from tinyface.runtime.sizes import check_run
from tinyface.runtime.steps import SoftmaxStep

RUN_CHUNK = 8        # images per plan run inside ``Model.run``


class Model:
    """A face-embedding (or any supported) ONNX model ready to run.

    ``run(x)`` takes a float32 NCHW batch (or a dict of named inputs) and
    returns the list of outputs in graph order.  ``embed(faces)`` takes
    aligned faces and returns float32 N x D embeddings.
    """

    def __init__(self, graph, plan, info, path=None, chunk=RUN_CHUNK):
        self.graph = graph
        self.plan = plan
        self.info = info
        self.path = path
        self.chunk = chunk                # images per plan run; None: the whole batch at once
        self.input_names = [vi.name for vi in graph.inputs]
        self.output_names = [vi.name for vi in graph.outputs]
        self._sizes_checked = None        # the last (input shapes, batch) whose sizes passed

    @property
    def steps(self):
        return self.plan.steps

    def run(self, x):
        """Outputs for a float32 NCHW batch (or a dict of named inputs), in graph order.

        Batches larger than ``chunk`` (``RUN_CHUNK``) run in chunks of that many
        images, so each layer's maps stay in cache (measured: about 6 % faster at
        batch 32), unless the model mixes the images of a batch (see
        :func:`images_independent`).  Sizes over :mod:`tinyface.limits` are refused
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

    def preprocess(self, faces):
        """Aligned faces (paths, PIL images, uint8 arrays) -> normalised NCHW float32."""
        from tinyface.face.image import load_rgb, resize_rgb
        if self.info.input_size is None:
            raise TinyfaceError(f"{self.graph.source}: the model's input size is unknown "
                                f"(no metadata and no fixed input shape)")
        if isinstance(faces, (str, Path, np.ndarray)) and not (isinstance(faces, np.ndarray) and faces.ndim == 4):
            faces = [faces]
        h, w = self.info.input_size
        batch = []
        for face in faces:
            img = load_rgb(face)
            if img.shape[:2] != (h, w):
                name = face if isinstance(face, (str, Path)) else "image"
                warnings.warn(f"{name}: {img.shape[1]}x{img.shape[0]} is not the model's input size "
                              f"{w}x{h}; resized (pass aligned {w}x{h} faces for faithful embeddings)",
                              stacklevel=3)
                img = resize_rgb(img, (h, w))
            batch.append(img)
        if not batch:
            raise InputError("no faces given")
        return self.info.normalise(np.stack(batch))

    def embed(self, faces, flip=False):
        """Embeddings (float32 N x D) of aligned faces; ``flip`` averages with the mirror image."""
        x = self.preprocess(faces)
        out = self.embed_tensor(x)
        if flip:
            out = (out + self.embed_tensor(np.ascontiguousarray(x[..., ::-1]))) / 2
        return out

    def embed_photo(self, image, all_faces=False, flip=False, **options):
        """Embedding of the largest face in a raw photo (or all faces): see tinyface.face.pipeline."""
        from tinyface.face.pipeline import embed_photo
        return embed_photo(self, image, all_faces, flip, **options)

    def embed_tensor(self, x):
        """Embeddings (float32 N x D) of a normalised NCHW batch (``run`` chunks it)."""
        return self.run(x)[0].reshape(len(x), -1).astype(np.float32)


def images_independent(low, steps):
    """Whether the images of a batch never meet, so that a batch may run in chunks: every
    value keeps the free batch as its first axis and nowhere else (no Transpose moving it,
    no Flatten at axis 0 merging it), and no softmax runs over that axis."""
    batch_first = all(len(s) > 0 and s[0] == BATCH and all(d is None or d < BATCH for d in s[1:])
                      for s in low.shapes.values())
    return batch_first and not any(isinstance(st, SoftmaxStep) and 0 in (st.axis, st.flatten_from)
                                   for st in steps)


def compile_graph(graph):
    """Lower, fuse and pack a graph into a runnable Plan."""
    low = Lowering(graph)
    steps, outputs = low.run()
    steps = fuse(steps, set(outputs))
    plan = Plan(steps, graph.inputs, outputs, [vi.name for vi in graph.outputs], graph.source, low.layouts)
    return plan.pack(), low


def load_model(source=None):
    """Load an ONNX model from a path, serialized bytes or an ``onnx.ModelProto``
    (default: the bundled one)."""
    path = default_model_path() if source is None else source
    if source is None and not path.is_file():
        raise ModelError(f"the bundled model is not at {path}: reinstall tinyface (its wheel and "
                         f"sdist carry the weights) or set TINYFACE_WEIGHTS to a folder that holds it")
    graph = read_model(path)
    plan, low = compile_graph(graph)
    model_path = path if isinstance(path, (str, Path)) else None
    return Model(graph, plan, read_info(graph, model_path), model_path,
                 RUN_CHUNK if images_independent(low, plan.steps) else None)
