"""Malformed models for the fuzzer (tests/fuzz_harness.py): seeds and mutations.

Seeds are small models built with ``onnx_builders`` (each op tinyface reads,
opsets 9 to 13) and two real files: MTCNN's P-Net (28 KB, free height and
width) and the opset-10 MobileFaceNet of tests/data (4 MB, picked rarely:
each of its cases costs ~100x a small one).  Three kinds of case:

* ``model_bytes``: the serialized file with bytes flipped, set, cut,
  dropped, repeated or inserted (a truncation alone in a third of cases);
* ``model_proto``: the parsed ``ModelProto`` edited field by field --
  a field deleted or duplicated, an int set to -1, 0, 2^31, 2^40, 2^63-1, a
  name replaced by another value's (cycles, undefined inputs, duplicate
  outputs, outputs never produced), an initialiser re-encoded as float16,
  float64, int64 or int8 or given the wrong element count or raw length, an
  attribute dropped or retyped;
* ``model_external``: the small conv model saved with external data, then its
  offsets and lengths sent past the end of the file, its location pointed
  outside the folder, at a directory, through symlinks (in, out, a loop),
  at a FIFO, or its data file cut short.

Every mutation is a function ``(rng, model) -> None`` editing in place, chosen
with a ``numpy.random.Generator``, so a case is reproducible from its number.
"""
import os
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.descriptor import FieldDescriptor
from onnx import TensorProto, numpy_helper

from onnx_builders import GraphBuilder, add_bn, add_conv

ROOT = Path(__file__).resolve().parent.parent
REAL_FILES = {"pnet": ROOT / "weights" / "mtcnn" / "pnet.onnx",
              "mobilefacenet": ROOT / "tests" / "data" / "models" / "mobilefacenet-relu6-opset10.onnx"}

# Integers a mutation writes into a field: signs, zero, powers of two around int32 and beyond.
INTERESTING_INTS = [-2**63, -2**40, -2**31, -7, -1, 0, 1, 2, 3, 7, 255, 2**16, 2**31 - 1, 2**31, 2**32,
                    2**40, 2**62, 2**63 - 1]
INTERESTING_FLOATS = [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e-30, 1e30, 0.5]
OTHER_DTYPES = [np.float16, np.float64, np.int64, np.int8, np.uint8, np.int32, np.bool_]


# -- seeds ------------------------------------------------------------------------------

def seed_cnn(rng):
    """conv (stride 2) -> BN -> PRelu -> max pool -> depthwise + residual -> clip ->
    global pool -> flatten -> Gemm -> softmax, on 3 x 12 x 12 (opset 13)."""
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 3, 16, stride=2)
    y = add_bn(g, y, rng, 16)
    y = g.add("PRelu", [y, g.const(rng.uniform(0, 0.3, (16, 1, 1)))])
    y = g.add("MaxPool", [y], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1])
    z = add_conv(g, y, rng, 16, 16, group=16)
    y = g.add("Add", [y, z])
    y = g.add("Clip", [y, g.const(np.float32(0)), g.const(np.float32(6))])
    y = g.add("GlobalAveragePool", [y])
    y = g.add("Flatten", [y])
    y = g.add("Gemm", [y, g.const(rng.standard_normal((5, 16))), g.const(rng.standard_normal(5))], transB=1)
    y = g.add("Softmax", [y], axis=1)
    return g.build({"x": ["N", 3, 12, 12]}, [y])


def seed_shapes(rng):
    """The exporters' shape idioms: Shape -> Gather -> Unsqueeze -> Concat -> Reshape,
    Constant nodes, Sub/Div by constants, Transpose, Squeeze/Unsqueeze, MatMul (opset 13)."""
    g = GraphBuilder(13)
    mean = g.constant_node(value=np.array([0.5, -0.25, 0.125], np.float32).reshape(1, 3, 1, 1))
    y = g.add("Sub", ["x", mean])
    y = g.add("Div", [y, g.const(np.float32(2.0))])
    y = add_conv(g, y, rng, 3, 4, k=1, pad=0)
    y = g.add("Relu", [y])
    batch = g.add("Gather", [g.add("Shape", [y]), g.constant_node(value_int=0)], axis=0)
    target = g.add("Concat", [g.add("Unsqueeze", [batch, g.const([0], dtype=np.int64)]),
                              g.constant_node(value_ints=[-1])], axis=0)
    y = g.add("Reshape", [y, target])
    y = g.add("MatMul", [y, g.const(rng.standard_normal((4 * 6 * 6, 6)))])
    y = g.add("Unsqueeze", [y, g.const([1], dtype=np.int64)])
    y = g.add("Transpose", [y], perm=[0, 2, 1])
    y = g.add("Squeeze", [y, g.const([2], dtype=np.int64)])
    return g.build({"x": ["N", 3, 6, 6]}, [y])


def seed_old_opset(rng):
    """Opset 9: Clip with min/max attributes, unfolded BN after a bias-free conv,
    Dropout, LeakyRelu, Flatten and a Gemm."""
    g = GraphBuilder(9)
    y = add_conv(g, "x", rng, 3, 8, bias=False)
    y = add_bn(g, y, rng, 8)
    y = g.add("Clip", [y], min=0.0, max=6.0)
    y = g.add("Dropout", [y])
    y = g.add("LeakyRelu", [y], alpha=0.1)
    y = g.add("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    y = g.add("Flatten", [y])
    y = g.add("Gemm", [y, g.const(rng.standard_normal((8 * 4 * 4, 3))), g.const(np.zeros(3))])
    y = g.add("Mul", [y, g.const(rng.standard_normal(3))])
    return g.build({"x": [1, 3, 8, 8]}, [y])


def seed_small_conv(rng):
    """conv 3x3 -> BN -> relu: the model whose weights go to external data."""
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 3, 8)
    y = add_bn(g, y, rng, 8)
    y = g.add("Relu", [y])
    return g.build({"x": ["N", 3, 6, 6]}, [y])


BUILT_SEEDS = [seed_cnn, seed_shapes, seed_old_opset, seed_small_conv]


def seed_model(rng, real_files=True):
    """A seed ModelProto: one built (fresh random weights), or a real file."""
    pick = rng.random()
    if real_files and pick < 0.02:
        return onnx.load(REAL_FILES["mobilefacenet"])
    if real_files and pick < 0.25:
        return onnx.load(REAL_FILES["pnet"])
    return BUILT_SEEDS[rng.integers(len(BUILT_SEEDS))](np.random.default_rng(rng.integers(2**32)))


# -- byte mutations ---------------------------------------------------------------------

def mutate_bytes(rng, data):
    """``data`` (a serialized model or an image file) with 1-4 byte-level mutations."""
    b = bytearray(data)
    if rng.random() < 1 / 3:
        return bytes(b[:rng.integers(0, len(b))])
    for _ in range(rng.integers(1, 5)):
        if not b:
            break
        at = int(rng.integers(len(b)))
        span = int(rng.integers(1, min(64, len(b) - at) + 1))
        what = rng.integers(6)
        if what == 0:
            b[at] ^= 1 << int(rng.integers(8))
        elif what == 1:
            b[at] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.integers(256)]))
        elif what == 2:
            del b[at:at + span]
        elif what == 3:
            b[at:at] = b[at:at + span]
        elif what == 4:
            b[at:at] = rng.bytes(span)
        else:
            del b[at:]
    return bytes(b)


# -- ModelProto mutations ---------------------------------------------------------------

def _fields(msg):
    """Every (message, field, index) set in ``msg`` and below; index None for the field itself."""
    for fd, value in msg.ListFields():
        yield msg, fd, None
        if fd.is_repeated:
            for i, item in enumerate(value):
                yield msg, fd, i
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    yield from _fields(item)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            yield from _fields(value)


def _pick_field(rng, model, want=None):
    found = [f for f in _fields(model) if want is None or want(f[1])]
    return found[rng.integers(len(found))] if found else None


def _value_names(model):
    g = model.graph
    return sorted({v.name for v in list(g.input) + list(g.output)} | {t.name for t in g.initializer}
                  | {o for n in g.node for o in list(n.output) + list(n.input)})


def delete_field(rng, model):
    found = _pick_field(rng, model)
    if not found:
        return
    msg, fd, i = found
    if i is None:
        msg.ClearField(fd.name)
    else:
        del getattr(msg, fd.name)[i]


def duplicate_field(rng, model):
    found = _pick_field(rng, model, lambda fd: fd.is_repeated)
    if found and found[2] is not None:
        msg, fd, i = found
        items = getattr(msg, fd.name)
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            items.add().CopyFrom(items[i])
        else:
            items.append(items[i])


_INT_TYPES = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT64,
              FieldDescriptor.TYPE_ENUM}


def set_int(rng, model):
    """An integer field (dims, dim_value, attribute ints, data_type, ...) set to an interesting value."""
    found = _pick_field(rng, model, lambda fd: fd.type in _INT_TYPES)
    if not found:
        return
    msg, fd, i = found
    value = int(rng.choice(INTERESTING_INTS)) if rng.random() < 0.8 else int(rng.integers(-3, 40))
    try:
        if i is None and not fd.is_repeated:
            setattr(msg, fd.name, value)
        elif i is not None:
            getattr(msg, fd.name)[i] = value
    except (ValueError, TypeError):          # out of the field's range: a smaller one
        set_int(rng, model)


def set_float(rng, model):
    found = _pick_field(rng, model, lambda fd: fd.type == FieldDescriptor.TYPE_FLOAT)
    if found:
        msg, fd, i = found
        value = float(rng.choice(INTERESTING_FLOATS))
        if i is None and not fd.is_repeated:
            setattr(msg, fd.name, value)
        elif i is not None:
            getattr(msg, fd.name)[i] = value


def rename(rng, model):
    """A value name (node input or output, graph input or output) replaced by another
    value's name, by "" or by a name nobody defines."""
    g = model.graph
    names = _value_names(model) + ["", "ghost"]
    places = [(n.input, k) for n in g.node for k in range(len(n.input))]
    places += [(n.output, k) for n in g.node for k in range(len(n.output))]
    places += [(v, None) for v in list(g.input) + list(g.output)]
    if places:
        where, k = places[rng.integers(len(places))]
        new = names[rng.integers(len(names))]
        if k is None:
            where.name = new
        else:
            where[k] = new


def retype_initializer(rng, model):
    """An initialiser re-encoded in another dtype (values kept), or its data_type changed alone."""
    g = model.graph
    if not g.initializer:
        return
    t = g.initializer[int(rng.integers(len(g.initializer)))]
    if rng.random() < 0.6:
        try:
            a = numpy_helper.to_array(t)
        except Exception:
            return
        t.CopyFrom(numpy_helper.from_array(a.astype(OTHER_DTYPES[rng.integers(len(OTHER_DTYPES))]), t.name))
    else:
        t.data_type = int(rng.choice(list(TensorProto.DataType.values()) + [999]))


def resize_initializer(rng, model):
    """An initialiser with the wrong element count: dims changed, or raw data cut or grown."""
    g = model.graph
    if not g.initializer:
        return
    t = g.initializer[int(rng.integers(len(g.initializer)))]
    if t.raw_data and rng.random() < 0.5:
        k = int(rng.integers(1, 9))
        t.raw_data = t.raw_data[:-k] if rng.random() < 0.5 else t.raw_data + rng.bytes(k)
    elif t.dims:
        t.dims[int(rng.integers(len(t.dims)))] += int(rng.choice([-1, 1, 2]))
    else:
        t.dims.append(int(rng.integers(1, 4)))


def drop_attribute(rng, model):
    nodes = [n for n in model.graph.node if n.attribute]
    if nodes:
        n = nodes[rng.integers(len(nodes))]
        del n.attribute[int(rng.integers(len(n.attribute)))]


def retype_attribute(rng, model):
    """An attribute's ints given as floats, or its type tag changed under its values."""
    attrs = [a for n in model.graph.node for a in n.attribute]
    if not attrs:
        return
    a = attrs[rng.integers(len(attrs))]
    if a.ints and rng.random() < 0.5:
        floats = [v + 0.5 for v in a.ints]
        del a.ints[:]
        a.floats.extend(floats)
        a.type = onnx.AttributeProto.FLOATS
    else:
        a.type = int(rng.choice(list(onnx.AttributeProto.AttributeType.values())))


PROTO_MUTATIONS = [delete_field, duplicate_field, set_int, set_int, set_float, rename, rename,
                   retype_initializer, resize_initializer, drop_attribute, retype_attribute]


def mutate_proto(rng, model):
    """1-3 ``PROTO_MUTATIONS`` applied to ``model`` in place; returns their names."""
    done = []
    for _ in range(rng.integers(1, 4)):
        mutation = PROTO_MUTATIONS[rng.integers(len(PROTO_MUTATIONS))]
        mutation(rng, model)
        done.append(mutation.__name__)
    return done


def mutated_model_bytes(rng, real_files=True):
    """A seed with ``mutate_proto`` applied, serialized, and the mutations' names (drawn
    again when protobuf will not serialize what a mutation made)."""
    while True:
        model = seed_model(rng, real_files)
        done = mutate_proto(rng, model)
        try:
            return model.SerializeToString(), done
        except Exception:            # e.g. an enum set to a value protobuf refuses to encode
            continue


# -- external data ------------------------------------------------------------------------

EXTERNAL_FILE = "weights.bin"


def save_external(model, folder):
    """``model`` saved in ``folder`` with every initialiser in one external file; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    onnx.save_model(copy, folder / "model.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location=EXTERNAL_FILE, size_threshold=0)
    return folder / "model.onnx"


def _set_entry(t, key, value):
    for e in t.external_data:
        if e.key == key:
            e.value = value
            return
    t.external_data.add(key=key, value=value)


def _drop_length(t):
    """Remove an external tensor's "length" entry (its dims alone then say how much to read)."""
    for k in reversed([k for k, e in enumerate(t.external_data) if e.key == "length"]):
        del t.external_data[k]


def mutate_external(rng, folder):
    """Save the small conv model with external data in ``folder`` and break it one way;
    returns (model path, what was done)."""
    path = save_external(seed_small_conv(np.random.default_rng(rng.integers(2**32))), folder)
    data = folder / EXTERNAL_FILE
    size = data.stat().st_size
    proto = onnx.load(path, load_external_data=False)
    t = proto.graph.initializer[int(rng.integers(len(proto.graph.initializer)))]
    what = ["offset past the end", "length past the end", "offset not a number", "negative offset",
            "huge dims", "negative dims", "wrong dtype", "location outside", "absolute location",
            "empty location", "location a directory", "symlink inside", "symlink outside",
            "symlink loop", "fifo", "file cut short", "file missing", "file a directory",
            "location with NUL"][rng.integers(19)]
    if what == "offset past the end":
        _set_entry(t, "offset", str(size + int(rng.integers(0, 2**40))))
    elif what == "length past the end":
        _set_entry(t, "length", str(size + int(rng.integers(1, 2**40))))
    elif what == "offset not a number":
        _set_entry(t, "offset", rng.choice(["abc", "1e3", "", "0x10", "--1"]))
    elif what == "negative offset":
        _set_entry(t, "offset", str(-int(rng.integers(1, 2**40))))
    elif what == "huge dims":
        t.dims[0] = int(rng.choice([2**20, 2**31, 2**40, 2**62]))
        _drop_length(t)
    elif what == "negative dims":
        t.dims[0] = -int(rng.integers(1, 9))
    elif what == "wrong dtype":
        t.data_type = int(rng.choice([TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.INT8,
                                      TensorProto.STRING, TensorProto.BFLOAT16, 999]))
    elif what == "location outside":
        _set_entry(t, "location", "../" + EXTERNAL_FILE)
        (folder.parent / EXTERNAL_FILE).write_bytes(data.read_bytes())
    elif what == "absolute location":
        _set_entry(t, "location", str(data))
    elif what == "empty location":
        _set_entry(t, "location", "")
    elif what == "location a directory":
        (folder / "sub").mkdir()
        _set_entry(t, "location", "sub")
    elif what == "symlink inside":
        os.symlink(data, folder / "link.bin")
        _set_entry(t, "location", "link.bin")
    elif what == "symlink outside":
        (folder.parent / "outside.bin").write_bytes(data.read_bytes())
        os.symlink(folder.parent / "outside.bin", folder / "link.bin")
        _set_entry(t, "location", "link.bin")
    elif what == "symlink loop":
        os.symlink(folder / "b.bin", folder / "a.bin")
        os.symlink(folder / "a.bin", folder / "b.bin")
        _set_entry(t, "location", "a.bin")
    elif what == "fifo":
        os.mkfifo(folder / "fifo.bin")
        _set_entry(t, "location", "fifo.bin")
    elif what == "file cut short":
        data.write_bytes(data.read_bytes()[:rng.integers(0, size)])
    elif what == "file missing":
        data.unlink()
    elif what == "file a directory":
        data.unlink()
        data.mkdir()
    else:
        _set_entry(t, "location", EXTERNAL_FILE + "\0.txt")
    onnx.save(proto, path)
    return path, what


# -- sizes far past the limits ---------------------------------------------------------------

def _with_dims(model, dims, index=0):
    t = model.graph.initializer[index]
    del t.dims[:]
    t.dims.extend(dims)
    return model


def big_model_cases(folder):
    """(what, source, input or None) of models that imply sizes far past the default limits:
    each must be refused (at load, or at run time before the run allocates) with next to
    nothing allocated.  ``input`` is a shape to run the model on."""
    rng = np.random.default_rng(0)

    def graph(build, shape=("N", 3, 6, 6), opset=13):
        g = GraphBuilder(opset)
        y = build(g)
        return g.build({"x": list(shape)}, [y])

    external = save_external(seed_small_conv(rng), folder / "external")
    proto = onnx.load(external, load_external_data=False)
    _drop_length(_with_dims(proto, [2**20, 2**20, 1, 1]).graph.initializer[0])
    onnx.save(proto, external)
    half = rng.standard_normal((2**20, 1)).astype(np.float32)
    return [
        ("weight of 2^40 elements, 864 bytes of data", _with_dims(seed_small_conv(rng), [2**20, 2**20, 1, 1]), None),
        ("weight of 2^64 elements (int64 overflow)", _with_dims(seed_small_conv(rng), [2**32, 2**32, 1, 1]), None),
        ("external weight of 2^40 elements", external, None),
        ("fold of a broadcast to 2^40 elements",
         graph(lambda g: g.add("Add", ["x", g.add("Reshape", [g.add("Add", [g.const(half), g.const(half.T)]),
                                                               g.const([-1], dtype=np.int64)])]), ("N", 1)), None),
        ("conv whose pads imply 2^42 elements",
         graph(lambda g: g.add("Conv", ["x", g.const(np.ones((2, 3, 1, 1)))], pads=[2**20] * 4)), None),
        ("input declared 2^30 x 2^30", graph(lambda g: g.add("Relu", ["x"]), ("N", 3, 2**30, 2**30)), None),
        ("model input size 100000x100000 in metadata", _metadata(seed_small_conv(rng), "100000x100000"), None),
        ("conv with pads 2^16 on a free-size input, run on 8 x 8",
         graph(lambda g: g.add("Conv", ["x", g.const(np.ones((2, 3, 1, 1)))], pads=[2**16] * 4),
               ("N", 3, "h", "w")), (1, 3, 8, 8)),
        ("two 1 GiB maps alive at once, run on 8 x 3 x 256 x 512", _two_big_maps(rng), (8, 3, 256, 512)),
        ("max pool kernel 2^30 with strides 2^31-1",
         graph(lambda g: g.add("MaxPool", ["x"], kernel_shape=[2**30, 2**30], pads=[2**30 - 1] * 4,
                               strides=[2**31 - 1] * 2)), (1, 3, 6, 6)),
    ]


def _metadata(model, size):
    model.metadata_props.add(key="tinyface.input_size", value=size)
    return model


def _two_big_maps(rng):
    """conv 1x1 3 -> 256 -> 256 on a free-size input: 2^28 elements each at 8 x 256 x 512."""
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 3, 256, k=1, pad=0)
    y = add_conv(g, g.add("Relu", [y]), rng, 256, 256, k=1, pad=0)
    return g.build({"x": ["N", 3, "h", "w"]}, [y])
