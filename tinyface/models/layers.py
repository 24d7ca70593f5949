"""Writing a :class:`NetSpec` and its weights as a standard ONNX graph (opset 13).

:class:`LayerWriter` adds one layer per method call, as plain ONNX nodes:

* conv layer  -> Conv (no bias) -> BatchNormalization (unfolded, eps 1e-5)
                 -> PRelu (slope shape (C, 1, 1)) | Relu | nothing
* add         -> Add
* flatten     -> Flatten(axis=1)
* dense       -> Gemm(transB=1), i.e. x W^T + b with W (out, in) -> Relu?
* mean        -> Add -> Mul by 0.5

Initialisers carry the weight names of :mod:`tinyface.models.weights`; a
layer's output tensor carries the layer's name (intermediate tensors get a
suffix: ``L.conv``, ``L.bn``), except the net's output, named ``embedding``.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinyface.models.netspec import BN_EPS, Add, Conv, Dense, Flatten, Mean, NetSpec

OPSET = 13
IR_VERSION = 8


class LayerWriter:
    """Accumulates the nodes and initialisers of one graph.

    ``weights`` maps weight names to arrays; each method takes the input
    tensor name(s) and returns the name of the tensor it produced.
    """

    def __init__(self, weights):
        self.weights = weights
        self.nodes = []
        self.initializers = []

    def param(self, key: str, shape=None) -> str:
        array = np.asarray(self.weights[key], dtype=np.float32)
        if shape is not None:
            array = array.reshape(shape)
        self.initializers.append(numpy_helper.from_array(array, key))
        return key

    def node(self, op: str, inputs, output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=f"{output}/{op}", **attrs))
        return output

    def conv_bn_act(self, layer: Conv, x: str) -> str:
        n, (kh, kw), s, p = layer.name, layer.kernel, layer.stride, layer.pad
        y = self.node("Conv", [x, self.param(f"{n}.weight")], f"{n}.conv",
                      kernel_shape=[kh, kw], strides=[s, s], pads=[p, p, p, p], group=layer.groups)
        bn = [self.param(f"{n}.bn.{k}") for k in ("weight", "bias", "running_mean", "running_var")]
        y = self.node("BatchNormalization", [y, *bn], f"{n}.bn" if layer.act else n, epsilon=BN_EPS)
        if layer.act == "prelu":
            slope = self.param(f"{n}.prelu.weight", (layer.out_channels, 1, 1))
            return self.node("PRelu", [y, slope], n)
        if layer.act == "relu":
            return self.node("Relu", [y], n)
        return y

    def add(self, name: str, a: str, b: str) -> str:
        return self.node("Add", [a, b], name)

    def flatten(self, name: str, x: str) -> str:
        return self.node("Flatten", [x], name, axis=1)

    def dense(self, layer: Dense, x: str) -> str:
        n = layer.name
        inputs = [x, self.param(f"{n}.weight"), self.param(f"{n}.bias")]
        if layer.act is None:
            return self.node("Gemm", inputs, n, transB=1)
        y = self.node("Gemm", inputs, f"{n}.gemm", transB=1)
        return self.node("Relu", [y], n)

    def mean(self, name: str, a: str, b: str) -> str:
        half = f"{name}.half"
        self.initializers.append(numpy_helper.from_array(np.array(0.5, dtype=np.float32), half))
        return self.node("Mul", [self.node("Add", [a, b], f"{name}.sum"), half], name)

    def layer(self, layer) -> str:
        if isinstance(layer, Conv):
            return self.conv_bn_act(layer, layer.input)
        if isinstance(layer, Add):
            return self.add(layer.name, layer.a, layer.b)
        if isinstance(layer, Flatten):
            return self.flatten(layer.name, layer.input)
        if isinstance(layer, Dense):
            return self.dense(layer, layer.input)
        if isinstance(layer, Mean):
            return self.mean(layer.name, layer.a, layer.b)
        raise TypeError(f"unknown layer {layer!r}")


def to_onnx(net: NetSpec, weights, metadata: dict[str, str]) -> onnx.ModelProto:
    """The ONNX model of ``net``: input ``input`` [N, 3, H, W] float32 -> ``embedding`` [N, D].

    The batch dimension is the symbolic ``N``.  ``metadata`` goes into
    ``metadata_props``.  The model passes ``onnx.checker.check_model``.
    """
    g = LayerWriter(weights)
    for layer in net.layers:
        g.layer(layer)
    g.nodes[-1].output[0] = "embedding"
    h, w = net.input_size
    graph = helper.make_graph(
        g.nodes, net.arch,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, h, w])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", net.embedding_size])],
        initializer=g.initializers)
    model = helper.make_model(graph, producer_name="tinyface", ir_version=IR_VERSION,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.doc_string = f"{net.arch} {h}x{w}, {net.activation}"
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model
