"""``InferenceSession``: onnxruntime's calling convention over tinyface.

Scripts written for onnxruntime swap engines by changing one import::

    sess = tinyface.InferenceSession("model.onnx")
    name = sess.get_inputs()[0].name
    (embedding,) = sess.run(None, {name: x})
"""
from dataclasses import dataclass

from tinyface.errors import InputError
from tinyface.runtime.model import load_model


@dataclass
class NodeArg:
    """What onnxruntime's ``get_inputs()``/``get_outputs()`` return per tensor."""
    name: str
    shape: list          # ints, or a string for a free dimension (the batch is "N")
    type: str = "tensor(float)"


class InferenceSession:
    def __init__(self, path_or_bytes, sess_options=None, providers=None, **kwargs):
        self.model = load_model(path_or_bytes)

    @staticmethod
    def _args(infos):
        args = []
        for vi in infos:
            dims = [d if d is not None else f"dim_{i}" for i, d in enumerate(vi.shape)]
            if dims:
                dims[0] = "N"
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
        if output_names is None:
            return outputs
        names = self.model.output_names
        unknown = [n for n in output_names if n not in names]
        if unknown:
            raise InputError(f"unknown output names {unknown}; the model has {names}")
        return [outputs[names.index(n)] for n in output_names]
