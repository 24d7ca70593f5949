"""The other engines the tools run a model on: onnxruntime (optional) and ONNX's reference evaluator.

onnxruntime is not one of tinyface's dependencies; it is imported here only
when asked for, and its absence is a one-line ``TinyfaceError``.
"""
import importlib.util

import numpy as np
import onnx
from onnx import TensorProto, helper, shape_inference

from tinyface.errors import TinyfaceError

ONNXRUNTIME, ONNX_REFERENCE = "onnxruntime", "onnx-reference"


def onnxruntime_installed():
    return importlib.util.find_spec("onnxruntime") is not None


def import_onnxruntime():
    if not onnxruntime_installed():
        raise TinyfaceError("onnxruntime is not installed (pip install onnxruntime); "
                            "compare can use --against onnx-reference instead")
    import onnxruntime
    return onnxruntime


def ort_session(model, threads=0, optimize=True, profile_prefix=None):
    """An onnxruntime CPU session for ``model`` (a path, serialized bytes or a
    ``ModelProto``) on ``threads`` threads (0: its default).  ``optimize`` False turns
    its graph rewrites off (each ONNX node runs as itself); ``profile_prefix`` turns its
    profiler on, writing there."""
    ort = import_onnxruntime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile_prefix)
    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


def with_outputs(model, names):
    """A copy of ``model`` whose graph also outputs the values ``names``, each declared with
    its element type as ONNX's shape inference finds it (float where it finds none; a
    QuantizeLinear's output is uint8 or int8)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    inferred = shape_inference.infer_shapes(copy).graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in list(inferred.value_info) + list(inferred.output)}
    have = {o.name for o in copy.graph.output}
    copy.graph.output.extend(helper.make_tensor_value_info(n, types.get(n) or TensorProto.FLOAT, None)
                             for n in names if n not in have)
    return copy


def run_reference(model, names, feed, against):
    """The values ``names`` of ``model`` (a ``ModelProto``) on ``feed``, computed by
    ``against``: onnxruntime with its graph rewrites off, or ONNX's ReferenceEvaluator.
    Returns ``{name: array}`` and a description of the engine, e.g. 'onnxruntime 1.17.0'.

    A model that declares a fixed batch size is run on that many images at a time and
    the values are joined along their first axis."""
    names = list(names)
    if against == ONNXRUNTIME:
        ort = import_onnxruntime()
        session = ort_session(with_outputs(model, names), optimize=False)
        run, engine = (lambda part: session.run(names, part)), f"onnxruntime {ort.__version__}"
    elif against == ONNX_REFERENCE:
        from onnx.reference import ReferenceEvaluator
        evaluator = ReferenceEvaluator(model, new_ops=[_inference_batch_normalization()])

        def run(part):
            results = evaluator.run(None, part, intermediate=True)
            return [results[n] for n in names]
        engine = f"onnx {onnx.__version__} ReferenceEvaluator"
    else:
        raise TinyfaceError(f"unknown reference engine {against!r}: {ONNXRUNTIME} or {ONNX_REFERENCE}")
    batch = len(next(iter(feed.values())))
    step = _declared_batch(model) or batch
    parts = [run({k: v[i:i + step] for k, v in feed.items()}) for i in range(0, batch, step)]
    return {n: np.concatenate([p[k] for p in parts]) for k, n in enumerate(names)}, engine


def _inference_batch_normalization():
    """An evaluator op for BatchNormalization as inference: ONNX's evaluator (1.23) runs
    the op of opsets 9-13 with the batch's own statistics blended in whenever momentum is
    set, which its schema's default always is; the spec's one-output form uses the given
    mean and variance.  Computed by ``tinyface.reference.batch_normalization``."""
    from onnx.reference.op_run import OpRun

    from tinyface import reference

    class BatchNormalization(OpRun):
        op_domain = ""

        def _run(self, x, scale, bias, mean, var, epsilon=1e-5, training_mode=0, **_):
            y = reference.batch_normalization(x, scale, bias, mean, var, epsilon=epsilon,
                                              training_mode=training_mode)
            return (y.astype(x.dtype),)
    return BatchNormalization


def _declared_batch(model):
    """The fixed batch size the model's inputs declare, if they declare one."""
    initialisers = {i.name for i in model.graph.initializer}
    for vi in model.graph.input:
        dims = vi.type.tensor_type.shape.dim
        if vi.name not in initialisers and dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            return dims[0].dim_value
    return None
