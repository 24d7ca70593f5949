"""Small helpers that build tiny ONNX models with ``onnx.helper`` for tests.

    g = GraphBuilder(opset=13)
    y = g.add("Conv", ["x", g.const(w)], pads=[1, 1, 1, 1])
    y = g.add("Relu", [y])
    model = g.build(inputs={"x": ["N", 3, 8, 8]}, outputs=[y])
    check_against_ort(model)          # runs tinyface and onnxruntime at batch 1 and 3

Inputs are declared with a symbolic batch ("N") unless a test says otherwise,
so onnxruntime (the reference) accepts every batch size.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DEFAULT_ATOL = 1e-4


class GraphBuilder:
    """Accumulates nodes and initialisers; ``build()`` returns an onnx.ModelProto."""

    def __init__(self, opset=13):
        self.opset = opset
        self.nodes = []
        self.initializers = []
        self._count = 0

    def fresh(self, prefix="v"):
        self._count += 1
        return f"{prefix}{self._count}"

    def const(self, value, name=None, dtype=np.float32):
        """Add an initialiser (float32 unless ``dtype`` says otherwise); return its name."""
        name = name or self.fresh("c")
        arr = np.asarray(value, dtype=dtype)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def constant_node(self, name=None, **attr):
        """A ``Constant`` node (attr: value=<array>, value_float=, value_ints=, ...); return its output."""
        out = name or self.fresh("k")
        if "value" in attr and isinstance(attr["value"], np.ndarray):
            attr["value"] = numpy_helper.from_array(attr["value"], out + "_t")
        self.nodes.append(helper.make_node("Constant", [], [out], name=out + "_node", **attr))
        return out

    def add(self, op, inputs, outputs=None, name=None, n_outputs=1, **attrs):
        """Append a node; return its output name (or the list when there are several)."""
        if outputs is None:
            outputs = [self.fresh(op.lower() + "_out") for _ in range(n_outputs)]
        name = name or self.fresh(op + "_")
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), name=name, **attrs))
        return outputs[0] if len(outputs) == 1 else list(outputs)

    def build(self, inputs, outputs, name="tiny", elem_type=TensorProto.FLOAT, extra_initializers=()):
        """``inputs``: {name: shape} (ints, strings for symbolic dims, None for unknown);
        ``outputs``: names, or (name, shape) pairs."""
        ins = [helper.make_tensor_value_info(n, elem_type, s) for n, s in inputs.items()]
        outs = [helper.make_tensor_value_info(o[0], TensorProto.FLOAT, o[1]) if isinstance(o, tuple)
                else helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                for o in outputs]
        graph = helper.make_graph(self.nodes, name, ins, outs,
                                  initializer=self.initializers + list(extra_initializers))
        return make_model(graph, self.opset)


def make_model(graph, opset):
    """A ModelProto for ``graph`` at ``opset`` with an IR version onnxruntime accepts."""
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="tinyface-tests")
    model.ir_version = max(helper.find_min_ir_version_for(opsets, ignore_unknown=True), 4)
    return model


def ort_session(model):
    """An onnxruntime session (CPU, warnings silenced, graph optimisations off)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def ort_run(model, feed):
    return ort_session(model).run(None, feed)


def input_shape(model, batch, index=0):
    """The declared shape of graph input ``index`` with the batch (and free dims) filled in."""
    inits = {i.name for i in model.graph.initializer}
    vi = [v for v in model.graph.input if v.name not in inits][index]
    dims = []
    for i, d in enumerate(vi.type.tensor_type.shape.dim):
        dims.append(batch if i == 0 else (d.dim_value if d.HasField("dim_value") else 8))
    return tuple(dims)


def random_input(model, batch, seed=0, scale=1.0, index=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(input_shape(model, batch, index)) * scale).astype(np.float32)


def check_against_ort(model, batches=(1, 3), atol=DEFAULT_ATOL, rtol=0.0, seed=0, scale=1.0, engine=None):
    """Run ``model`` in tinyface and onnxruntime on random inputs at each batch size;
    assert every output agrees.  Returns the tinyface Model (for looking at its steps)."""
    import tinyface
    engine = engine or tinyface.load(model)
    sess = ort_session(model)
    name = sess.get_inputs()[0].name
    for batch in batches:
        x = random_input(model, batch, seed=seed + batch, scale=scale)
        ours = engine.run(x)
        ref = sess.run(None, {name: x})
        assert len(ours) == len(ref)
        for k, (a, b) in enumerate(zip(ours, ref)):
            assert a.shape == b.shape, f"batch {batch}, output {k}: shape {a.shape} vs onnxruntime {b.shape}"
            assert a.dtype == np.float32
            err = float(np.abs(a - b).max()) if a.size else 0.0
            bound = atol + rtol * float(np.abs(b).max()) if b.size else atol
            assert err <= bound, f"batch {batch}, output {k}: max abs diff {err:g} > {bound:g}"
    return engine


def step_kinds(engine):
    """[(kind, detail)] of a loaded tinyface model's fused steps."""
    return [(st.kind, st.detail()) for st in engine.steps]


def conv_weight(rng, co, ci, kh, kw):
    return (rng.standard_normal((co, ci, kh, kw)) / np.sqrt(ci * kh * kw)).astype(np.float32)


def bn_params(rng, c):
    """Non-trivial BatchNormalization statistics: scale, bias, mean, var."""
    return (rng.uniform(0.5, 1.5, c).astype(np.float32), rng.normal(0, 0.5, c).astype(np.float32),
            rng.normal(0, 0.5, c).astype(np.float32), rng.uniform(0.2, 2.0, c).astype(np.float32))


def add_conv(g, x, rng, ci, co, k=3, stride=1, pad=None, group=1, bias=True, **attrs):
    """A Conv node with random weights; returns its output."""
    w = g.const(conv_weight(rng, co, ci // group, k, k))
    ins = [x, w]
    if bias:
        ins.append(g.const(rng.normal(0, 0.1, co)))
    if pad is None and "auto_pad" not in attrs:
        pad = k // 2
    if pad is not None:
        attrs["pads"] = [pad] * 4 if isinstance(pad, int) else list(pad)
    return g.add("Conv", ins, kernel_shape=[k, k], strides=[stride, stride], group=group, **attrs)


def add_bn(g, x, rng, c, epsilon=None):
    s, b, m, v = bn_params(rng, c)
    attrs = {} if epsilon is None else {"epsilon": epsilon}
    return g.add("BatchNormalization", [x, g.const(s), g.const(b), g.const(m), g.const(v)], **attrs)


def _single_thread():
    """Run kernels on one thread while a module's tiny graphs run (import into a test
    module as a fixture): on a busy machine, waking Numba's thread pool for a 6x6 map
    costs ~100x the work.  Multi-threaded runs are covered by the bundled-model tests."""
    import tinyface
    before = tinyface.get_num_threads()
    tinyface.set_num_threads(1)
    yield
    tinyface.set_num_threads(before)


def single_thread_fixture():
    import pytest
    return pytest.fixture(scope="module", autouse=True)(_single_thread)


def supported_models():
    """(name, ModelProto, input size or None) of every kind of model tinyface runs: the
    bundled MobileFaceNet, each architecture ``tinyface export`` makes (the MobileFaceNets at
    64x64 to keep tests short), the three MTCNN nets (P-Net at 31x37) and ``op_mix_model``."""
    from tinyface.models import ARCHITECTURES, build
    from tinyface.paths import default_model_path, weights_dir
    weights = weights_dir()
    models = [("bundled", onnx.load(default_model_path()), None)]
    models += [(arch, build(arch, (112, 112) if "mobiface" in arch else (64, 64)), None) for arch in ARCHITECTURES]
    models += [(net, onnx.load(weights / f"mtcnn/{net}.onnx"), (31, 37) if net == "pnet" else None)
               for net in ("pnet", "rnet", "onet")]
    return models + [("op mix", op_mix_model(), None)]


def op_mix_file(folder):
    """``op_mix_model()`` saved as ``folder``/op_mix.onnx; returns the path."""
    path = folder / "op_mix.onnx"
    onnx.save(op_mix_model(), str(path))
    return path


def op_mix_model(seed=0):
    """A small two-output model of the ops MobileFaceNet does not use, for the tools' tests.

    Input x [N, 3, 20, 18]: normalised by Sub/Div, a 5x5/2 Conv with asymmetric pads,
    LeakyRelu, an unfolded BatchNormalization (after the activation), MaxPool 3x3/2
    with pads and ceil_mode, a depthwise Conv + PRelu added to a 1x1 Conv, Relu; then
    GlobalAveragePool -> Flatten -> Gemm (transB, alpha, beta) -> Softmax = "prob", and
    Transpose -> Reshape -> MatMul -> Mul -> Clip = "features".
    """
    rng = np.random.default_rng(seed)
    g = GraphBuilder(opset=13)
    y = g.add("Sub", ["x", g.const(np.full((1, 3, 1, 1), 0.25))])
    y = g.add("Div", [y, g.const(np.array([0.5, 0.6, 0.7]).reshape(1, 3, 1, 1))])
    y = add_conv(g, y, rng, 3, 12, k=5, stride=2, pad=[2, 1, 2, 2])
    y = g.add("LeakyRelu", [y], alpha=0.1)
    y = add_bn(g, y, rng, 12)
    pooled = g.add("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    dw = add_conv(g, pooled, rng, 12, 12, k=3, group=12)
    dw = g.add("PRelu", [dw, g.const(rng.uniform(0, 0.5, (12, 1, 1)))])
    y = g.add("Relu", [g.add("Add", [dw, add_conv(g, pooled, rng, 12, 12, k=1)])])
    flat = g.add("Flatten", [g.add("GlobalAveragePool", [y])])
    logits = g.add("Gemm", [flat, g.const(rng.standard_normal((10, 12))), g.const(rng.standard_normal(10))],
                   transB=1, alpha=0.5, beta=2.0)
    g.add("Softmax", [logits], outputs=["prob"], axis=1)
    rows = g.add("Reshape", [g.add("Transpose", [y], perm=[0, 2, 3, 1]), g.const([0, -1], dtype=np.int64)])
    feats = g.add("MatMul", [rows, g.const(rng.standard_normal((6 * 5 * 12, 8)) / 20)])
    g.add("Clip", [g.add("Mul", [feats, g.const(0.5)]), g.const(-1.0), g.const(4.0)], outputs=["features"])
    return g.build(inputs={"x": ["N", 3, 20, 18]}, outputs=["prob", "features"], name="op_mix")


def float_block(seed=0):
    """A small float net of the bundled model's shapes of layers: stem conv + ReLU6, an
    inverted-residual block with a residual Add, GDConv, a 1x1 conv, Flatten and a Gemm."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder(opset=13)
    relu6 = [g.const(0.0), g.const(6.0)]
    y = g.add("Clip", [add_conv(g, "x", rng, 3, 16, k=3, stride=2)] + relu6)
    e = g.add("Clip", [add_conv(g, y, rng, 16, 32, k=1)] + relu6)
    d = g.add("Clip", [add_conv(g, e, rng, 32, 32, k=3, group=32)] + relu6)
    p = add_conv(g, d, rng, 32, 16, k=1)
    s = g.add("Add", [y, p])
    gd = add_conv(g, s, rng, 16, 16, k=4, group=16, pad=0)
    f = g.add("Flatten", [add_conv(g, gd, rng, 16, 24, k=1)])
    w, b = g.const(rng.standard_normal((10, 24)) / 5), g.const(rng.normal(0, 0.1, 10))
    out = g.add("Gemm", [f, w, b], transB=1)
    return g.build(inputs={"x": [1, 3, 8, 8]}, outputs=[out])


def quantize_qdq(fp32_path, out_path, count=16, seed=1, **options):
    """onnxruntime's ``quantize_static`` of ``float_block``'s file into ``out_path``, QDQ,
    uint8 activations and int8 weights unless ``options`` say otherwise, calibrated on
    ``count`` random inputs."""
    from onnxruntime import quantization

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(seed)
            self.feeds = [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(count)]

        def get_next(self):
            return self.feeds.pop() if self.feeds else None

    quantization.quantize_static(str(fp32_path), str(out_path), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 **{"activation_type": quantization.QuantType.QUInt8,
                                    "weight_type": quantization.QuantType.QInt8, **options})
