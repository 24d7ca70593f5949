"""``InferenceSession``: onnxruntime's calling convention over tinyface.

Scripts written for onnxruntime swap engines by changing one import::

    sess = tinyface.InferenceSession("model.onnx")
    name = sess.get_inputs()[0].name
    (embedding,) = sess.run(None, {name: x})
"""
from dataclasses import dataclass

from tinyface.errors import InputError
from tinyface.runtime.model import Model


@dataclass
class NodeArg:
    """What onnxruntime's ``get_inputs()``/``get_outputs()`` return per tensor."""
    name: str
    shape: list          # ints, or the name of a free dimension (the batch: its name or "N")
    type: str = "tensor(float)"


class InferenceSession:
    def __init__(self, path_or_bytes, sess_options=None, providers=None, **kwargs):
        self.model = Model.load(path_or_bytes)

    @staticmethod
    def _args(infos):
        """Declared shapes as onnxruntime shows them: ints, dim_param names, or None.

        The batch (first) dimension is free in tinyface whatever the file says;
        it keeps its name when it has one and is shown as "N" otherwise.
        """
        args = []
        for vi in infos:
            names = vi.dim_names or (None,) * len(vi.shape)
            dims = [d if d is not None else names[i] for i, d in enumerate(vi.shape)]
            if dims:
                dims[0] = names[0] or "N"
            args.append(NodeArg(vi.name, dims))
        return args

    def get_inputs(self):
        return self._args(self.model.graph.inputs)

    def get_outputs(self):
        return self._args(self.model.graph.outputs)

    def get_providers(self):
        return ["TinyfaceNumba"]

    def run(self, output_names, input_feed, run_options=None):
        """Run and return the requested outputs (all when ``output_names`` is None)."""
        if not isinstance(input_feed, dict):
            raise InputError("input_feed must be a dict of input name -> numpy array")
        outputs = self.model.run(dict(input_feed))
        if not output_names:                  # None or [] means every output, as in onnxruntime
            return outputs
        names = self.model.output_names
        unknown = [n for n in output_names if n not in names]
        if unknown:
            raise InputError(f"unknown output names {unknown}; the model has {names}")
        return [outputs[names.index(n)] for n in output_names]
