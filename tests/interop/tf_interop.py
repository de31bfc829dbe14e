#!/usr/bin/env python3
"""TensorFlow interop test: frozen TF graphs must run in gradserve with TF's results.

Each case builds a small graph with TensorFlow (tf.function -> concrete function ->
convert_variables_to_constants_v2 -> frozen GraphDef), writes it as binary CASE.pb with
random inputs as .npy files, computes the expected outputs by running that same GraphDef
in a TensorFlow session, then runs

    gradserve-model run --graph CASE.pb --input NAME=FILE.npy ... \
        --fetch NODE:PORT ... --output-dir OUTDIR

which writes OUTDIR/NODE_PORT.npy per fetch, and compares.

Comparison:
  * dtype and shape must be equal;
  * int and bool outputs must be equal element for element;
  * float outputs: non-finite values must sit in the same places, and the normwise
    relative error  max|got - want| / max|want|  (max|want| taken as 1 when the
    expected tensor is all zeros) must be <= 1e-5. Normwise rather than elementwise
    because a reordered float32 sum legitimately changes small elements relative to
    their own size, while an error in the op shows up at the scale of the output.

Any op in a frozen graph outside SUPPORTED_OPS is reported as "UNSUPPORTED op X in
case Y" and fails the case. --dry-run builds the graphs and TF's outputs only.

Usage:
  tf_interop.py --gradserve-model PATH [--work-dir DIR] [--seed N] [--case NAME]
  tf_interop.py --dry-run [--list-ops] [--work-dir DIR] [--seed N] [--case NAME]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field

# Must be set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)

FLOAT_RTOL = 1e-5
TOOL_TIMEOUT_S = 120

SUPPORTED_OPS = frozenset(
    # math
    "Add AddV2 Sub Mul RealDiv Neg Abs Exp Log Sqrt Rsqrt Square Pow Maximum Minimum "
    "Equal Less Greater LogicalAnd Cast MatMul BatchMatMulV2 Sum Mean Max Min ArgMax "
    # nn
    "BiasAdd Relu Relu6 Elu Sigmoid Tanh Softmax LogSoftmax Conv2D MaxPool AvgPool "
    "FusedBatchNormV3 "
    # array
    "Const Placeholder PlaceholderWithDefault Identity StopGradient Reshape Transpose "
    "ConcatV2 Slice StridedSlice Squeeze ExpandDims Shape Fill ZerosLike OnesLike Pack "
    "GatherV2 OneHot Tile Pad SelectV2 "
    # TF2 freezing emits a NoOp that collects the variable reads as control inputs
    # ("^NoOp" on every output Identity) whenever the function reads a tf.Variable,
    # so no real frozen model loads without it.
    "NoOp".split()
)


# --------------------------------------------------------------------------- cases


@dataclass
class CaseSpec:
    """What a case builder returns.

    fn: the function to trace; takes the inputs in `inputs` order, returns a dict
        label -> tensor (labels only name outputs in messages).
    inputs: placeholder name -> value fed to it.
    shapes: placeholder name -> declared shape with None dims, where the graph must
        not know the full shape (e.g. a dynamic batch dimension).
    extra_feeds: non-signature nodes to feed, e.g. a PlaceholderWithDefault.
    """

    fn: object
    inputs: dict
    shapes: dict = field(default_factory=dict)
    extra_feeds: dict = field(default_factory=dict)


CASES = {}


def case(builder):
    CASES[builder.__name__] = builder
    return builder


def normal(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def uniform(rng, shape, low, high):
    return rng.uniform(low, high, shape).astype(np.float32)


@case
def binary_broadcast(rng):
    # Shapes [2,3,4] (op) [3,1] and (op) [4] exercise right-aligned broadcasting.
    def fn(x, y, z, p):
        return {
            "add": tf.raw_ops.Add(x=x, y=y),
            "addv2": x + z,
            "sub": y - x,
            "sub_scalar": 1.5 - x,
            # A Const whose TensorProto holds one float_val for four elements (splat).
            "add_splat": x + tf.constant(0.5, shape=[4]),
            "mul": x * z,
            "realdiv": x / p,
            "pow": tf.pow(p, z),
            "maximum": tf.maximum(x, y),
            "minimum": tf.minimum(z, x),
        }

    return CaseSpec(fn, {
        "x": normal(rng, (2, 3, 4)),
        "y": normal(rng, (3, 1)),
        "z": normal(rng, (4,)),
        "p": uniform(rng, (3, 4), 0.5, 2.0),
    })


@case
def unary_math(rng):
    def fn(x, pos):
        return {
            "neg": -x,
            "abs": tf.abs(x),
            "exp": tf.exp(x),
            "square": tf.square(x),
            "log": tf.math.log(pos),
            "sqrt": tf.sqrt(pos),
            "rsqrt": tf.math.rsqrt(pos),
        }

    return CaseSpec(fn, {"x": normal(rng, (4, 6)), "pos": uniform(rng, (4, 6), 0.05, 5.0)})


@case
def compare_logical_select(rng):
    x = normal(rng, (3, 5))
    # Copy some elements so Equal sees both outcomes on float data.
    y = np.where(rng.random((3, 5)) < 0.4, x, normal(rng, (3, 5)))
    ix = rng.integers(-3, 4, (3, 5), dtype=np.int32)
    iy = rng.integers(-3, 4, (5,), dtype=np.int32)

    def fn(x, y, ix, iy):
        return {
            "equal_f": tf.equal(x, y),
            "equal_i": tf.equal(ix, iy),
            "less": tf.less(x, y),
            "greater": tf.greater(x, 0.25),
            "and": tf.logical_and(x > -0.5, y < 0.5),
            "select": tf.where(x > y, x, y),
            "select_bcast": tf.where(ix > iy, x, -1.0),
        }

    return CaseSpec(fn, {"x": x, "y": y, "ix": ix, "iy": iy})


@case
def cast(rng):
    def fn(x, i):
        b = x > 0
        return {
            "f32_to_i32": tf.cast(x * 4.0, tf.int32),  # truncates toward zero
            "f32_to_i64": tf.cast(x * 4.0, tf.int64),
            "f32_to_bool": tf.cast(tf.cast(x * 2.0, tf.int32), tf.bool),
            "i32_to_f32": tf.cast(i, tf.float32),
            "bool_to_f32": tf.cast(b, tf.float32),
            "bool_to_i32": tf.cast(b, tf.int32),
        }

    return CaseSpec(fn, {"x": normal(rng, (4, 5)),
                         "i": rng.integers(-100, 100, (4, 5), dtype=np.int32)})


@case
def matmul(rng):
    def fn(a, b, at, bt):
        return {
            "plain": tf.matmul(a, b),
            "transpose_a": tf.matmul(at, b, transpose_a=True),
            "transpose_b": tf.matmul(a, bt, transpose_b=True),
            "transpose_ab": tf.matmul(at, bt, transpose_a=True, transpose_b=True),
        }

    return CaseSpec(fn, {
        "a": normal(rng, (5, 7)),
        "b": normal(rng, (7, 3)),
        "at": normal(rng, (7, 5)),
        "bt": normal(rng, (3, 7)),
    })


@case
def batch_matmul(rng):
    # tf.matmul on rank > 2 emits BatchMatMulV2 (adj_x / adj_y for the transposes),
    # which broadcasts the batch dimensions.
    def fn(a, b, c):
        return {
            "batched": tf.matmul(a, b),
            "adj_x": tf.matmul(b, b, transpose_a=True),
            "adj_y": tf.matmul(a, a, transpose_b=True),
            "bcast_rank": tf.matmul(a, c),
        }

    return CaseSpec(fn, {
        "a": normal(rng, (2, 3, 4)),
        "b": normal(rng, (2, 4, 5)),
        "c": normal(rng, (4, 6)),
    })


@case
def reductions(rng):
    def fn(x):
        return {
            "sum_all": tf.reduce_sum(x),
            "sum_axis1": tf.reduce_sum(x, axis=1),
            "sum_keep": tf.reduce_sum(x, axis=[0, 2], keepdims=True),
            "mean_neg_axis": tf.reduce_mean(x, axis=-1),
            "mean_keep": tf.reduce_mean(x, axis=[1], keepdims=True),
            "max": tf.reduce_max(x, axis=[0, 2]),
            "min_keep": tf.reduce_min(x, axis=-2, keepdims=True),
        }

    return CaseSpec(fn, {"x": normal(rng, (3, 4, 5))})


@case
def argmax(rng):
    # TF's ArgMax has no keep_dims attribute: tf.argmax never keeps the axis, so
    # "keep dims" is ExpandDims on the result.
    def fn(x):
        return {
            "axis0": tf.argmax(x, axis=0),
            "axis_neg": tf.argmax(x, axis=-1),
            "int32_out": tf.argmax(x, axis=1, output_type=tf.int32),
            "keep_dims": tf.expand_dims(tf.argmax(x, axis=1), axis=1),
        }

    return CaseSpec(fn, {"x": normal(rng, (4, 6, 3))})


@case
def activations(rng):
    def fn(x, b):
        h = tf.nn.bias_add(x, b)
        return {
            "bias_add": h,
            "relu": tf.nn.relu(h),
            "relu6": tf.nn.relu6(h * 4.0),
            "elu": tf.nn.elu(x),
            "sigmoid": tf.sigmoid(x),
            "tanh": tf.tanh(x),
        }

    return CaseSpec(fn, {"x": normal(rng, (2, 3, 8), scale=2.0), "b": normal(rng, (8,))})


@case
def softmax(rng):
    def fn(x, y):
        return {
            "softmax_2d": tf.nn.softmax(x),
            "softmax_3d": tf.nn.softmax(y),
            "log_softmax": tf.nn.log_softmax(x),
        }

    return CaseSpec(fn, {"x": normal(rng, (4, 10), scale=3.0), "y": normal(rng, (2, 3, 7))})


@case
def conv2d_same(rng):
    def fn(x, w):
        return {
            "stride1": tf.nn.conv2d(x, w, strides=1, padding="SAME"),
            "stride2": tf.nn.conv2d(x, w, strides=2, padding="SAME"),
            "dilated": tf.nn.conv2d(x, w, strides=1, padding="SAME", dilations=2),
        }

    return CaseSpec(fn, {"x": normal(rng, (2, 9, 8, 3)), "w": normal(rng, (3, 3, 3, 4))})


@case
def conv2d_valid(rng):
    def fn(x, w):
        return {
            "valid": tf.nn.conv2d(x, w, strides=1, padding="VALID"),
            "strided_hw": tf.nn.conv2d(x, w, strides=[1, 2, 3, 1], padding="VALID"),
            "dilated": tf.nn.conv2d(x, w, strides=1, padding="VALID", dilations=[1, 2, 1, 1]),
        }

    # Non-square kernel, odd sizes: exercises the output-size arithmetic.
    return CaseSpec(fn, {"x": normal(rng, (2, 10, 11, 2)), "w": normal(rng, (2, 3, 2, 5))})


@case
def pooling(rng):
    # AvgPool with SAME padding divides by the number of in-bounds elements.
    def fn(x):
        return {
            "max_valid": tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID"),
            "max_same": tf.nn.max_pool2d(x, ksize=3, strides=2, padding="SAME"),
            "avg_valid": tf.nn.avg_pool2d(x, ksize=[2, 3], strides=[1, 2], padding="VALID"),
            "avg_same": tf.nn.avg_pool2d(x, ksize=3, strides=2, padding="SAME"),
        }

    return CaseSpec(fn, {"x": normal(rng, (2, 7, 9, 3))})


@case
def fused_batch_norm(rng):
    # Inference form: y = (x - mean) * rsqrt(var + epsilon) * scale + offset. Only
    # output 0 is used; FusedBatchNormV3 has six outputs (y, batch/reserve stats).
    def fn(x, scale, offset, mean, var):
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, scale, offset, mean=mean, variance=var, epsilon=1e-3, is_training=False)
        return {"y": y}

    return CaseSpec(fn, {
        "x": normal(rng, (2, 5, 4, 6)),
        "scale": uniform(rng, (6,), 0.5, 1.5),
        "offset": normal(rng, (6,)),
        "mean": normal(rng, (6,)),
        "var": uniform(rng, (6,), 0.2, 2.0),
    })


@case
def shape_ops(rng):
    # The batch dimension is unknown, so Shape is not folded to a Const and Fill,
    # ZerosLike and OnesLike stay in the graph.
    def fn(x, s):
        return {
            "reshape": tf.reshape(x, [-1, 2, 6]),
            "transpose": tf.transpose(x, [1, 0]),
            "transpose_3d": tf.transpose(s, [2, 0, 1, 3]),
            "squeeze_all": tf.squeeze(s),
            "squeeze_axis": tf.squeeze(s, axis=[2]),
            "expand_dims": tf.expand_dims(x, axis=-1),
            "shape": tf.shape(x),
            "fill": tf.fill(tf.shape(x), 2.5),
            "zeros_like": tf.zeros_like(x),
            "ones_like": tf.ones_like(x),
        }

    return CaseSpec(
        fn,
        {"x": normal(rng, (3, 12)), "s": normal(rng, (1, 3, 1, 4))},
        shapes={"x": [None, 12]},
    )


@case
def concat_pack_tile_pad(rng):
    def fn(a, b, c):
        return {
            "concat_last": tf.concat([a, b, a], axis=-1),
            "concat_first": tf.concat([a, c], axis=0),
            "pack_0": tf.stack([a, c]),
            "pack_1": tf.stack([a, c, a], axis=1),
            "tile": tf.tile(a, [2, 3]),
            "pad": tf.pad(a, [[1, 0], [2, 3]]),
        }

    return CaseSpec(fn, {
        "a": normal(rng, (3, 4)),
        "b": normal(rng, (3, 2)),
        "c": normal(rng, (3, 4)),
    })


@case
def slicing(rng):
    # Python indexing becomes StridedSlice with begin/end/ellipsis/new_axis/shrink
    # masks; the "end" and "strides" Consts are often splats or all-zero protos.
    def fn(x):
        return {
            "slice": tf.slice(x, [1, 0, 2], [2, -1, 3]),
            "range_step": x[1:3, ::2],
            "shrink": x[:, -1],
            "ellipsis": x[..., 1:],
            "new_axis": x[tf.newaxis, 1],
            "reverse": x[::-1],
            "mixed": x[1:, :-1, ::-2],
        }

    return CaseSpec(fn, {"x": normal(rng, (4, 5, 6))})


@case
def gather_onehot(rng):
    # OneHot maps indices outside [0, depth) (here -1) to an all-off row.
    idx = rng.integers(0, 5, (3,), dtype=np.int32)
    labels = rng.integers(-1, 4, (6,), dtype=np.int32)

    def fn(x, idx, labels):
        return {
            "gather_axis0": tf.gather(x, idx),
            "gather_axis1": tf.gather(x, idx, axis=1),
            "one_hot": tf.one_hot(labels, 4),
            "one_hot_values": tf.one_hot(labels, 5, on_value=2.0, off_value=-1.0),
            "one_hot_axis0": tf.one_hot(labels, 4, axis=0),
        }

    return CaseSpec(fn, {"x": normal(rng, (5, 6, 2)), "idx": idx, "labels": labels})


@case
def placeholder_default(rng):
    # Two PlaceholderWithDefault nodes: "pwd_default" is not fed, so its default
    # Const flows through; "pwd_fed" is fed by name like a Placeholder.
    default = normal(rng, (2, 3))
    fed = normal(rng, (2, 3))

    def fn(x):
        d = tf.compat.v1.placeholder_with_default(tf.constant(default), [2, 3], name="pwd_default")
        f = tf.compat.v1.placeholder_with_default(tf.zeros([2, 3]), [2, 3], name="pwd_fed")
        return {
            "default": tf.identity(d) * x,
            "fed": f + x,
            "stop_gradient": tf.stop_gradient(x * 2.0),
        }

    return CaseSpec(fn, {"x": normal(rng, (2, 3))}, extra_feeds={"pwd_fed": fed})


@case
def mlp(rng):
    # Variables, so freezing has real work: ReadVariableOp -> Const (and NoOp).
    w1 = tf.Variable(normal(rng, (16, 32), scale=0.25))
    b1 = tf.Variable(normal(rng, (32,), scale=0.1))
    w2 = tf.Variable(normal(rng, (32, 10), scale=0.25))
    b2 = tf.Variable(normal(rng, (10,), scale=0.1))

    def fn(x):
        h = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w1), b1))
        return {"probs": tf.nn.softmax(tf.nn.bias_add(tf.matmul(h, w2), b2))}

    return CaseSpec(fn, {"x": normal(rng, (8, 16))}, shapes={"x": [None, 16]})


@case
def cnn(rng):
    w_conv = tf.Variable(normal(rng, (3, 3, 1, 4), scale=0.5))
    b_conv = tf.Variable(normal(rng, (4,), scale=0.1))
    w_fc = tf.Variable(normal(rng, (6 * 6 * 4, 10), scale=0.1))
    b_fc = tf.Variable(normal(rng, (10,), scale=0.1))

    def fn(x):
        h = tf.nn.conv2d(x, w_conv, strides=1, padding="SAME")
        h = tf.nn.relu(tf.nn.bias_add(h, b_conv))
        h = tf.nn.max_pool2d(h, ksize=2, strides=2, padding="VALID")
        h = tf.reshape(h, [-1, 6 * 6 * 4])
        return {"probs": tf.nn.softmax(tf.nn.bias_add(tf.matmul(h, w_fc), b_fc))}

    return CaseSpec(fn, {"x": normal(rng, (3, 12, 12, 1))}, shapes={"x": [None, 12, 12, 1]})


# --------------------------------------------------------------------------- running


@dataclass
class Result:
    name: str
    ops: list
    passed: bool = True
    max_err: str = "-"
    messages: list = field(default_factory=list)

    def fail(self, message):
        self.passed = False
        self.messages.append(message)


@dataclass
class Built:
    graph_def: object
    feeds: dict  # node name -> value (signature placeholders and extra feeds)
    fetches: list  # "node:port" in output order
    labels: list  # case label per fetch


def case_rng(seed, name):
    # Per-case stream from (seed, name): `--case NAME --seed N` reproduces exactly the
    # inputs that case had in a full run with the same seed.
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def build(name, seed):
    spec = CASES[name](case_rng(seed, name))
    signature = [
        tf.TensorSpec(spec.shapes.get(n, v.shape), tf.as_dtype(v.dtype), name=n)
        for n, v in spec.inputs.items()
    ]
    # No AutoGraph: the cases have no Python control flow to convert.
    concrete = tf.function(spec.fn, input_signature=signature,
                           autograph=False).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    outputs = concrete.structured_outputs
    labels = list(outputs)
    fetches = [outputs[label].name for label in labels]
    placeholders = {t.name.split(":")[0] for t in frozen.inputs}
    assert placeholders == set(spec.inputs), (placeholders, set(spec.inputs))
    return Built(
        graph_def=frozen.graph.as_graph_def(),
        feeds={**spec.inputs, **spec.extra_feeds},
        fetches=fetches,
        labels=labels,
    )


def graph_ops(graph_def):
    ops = {n.op for n in graph_def.node}
    for fdef in graph_def.library.function:
        ops.update(n.op for n in fdef.node_def)
    return sorted(ops)


def run_tf(graph_def, feeds, fetches):
    """Runs the frozen GraphDef itself, as gradserve will, in a TF1 session."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        return sess.run(fetches, {f"{n}:0": v for n, v in feeds.items()})


def output_file(out_dir, fetch):
    return os.path.join(out_dir, fetch.replace(":", "_") + ".npy")


def run_gradserve(tool, pb_path, input_files, fetches, out_dir):
    """Returns None on success, or the tool's failure message."""
    cmd = [tool, "run", "--graph", pb_path]
    for name, path in input_files.items():
        cmd += ["--input", f"{name}={path}"]
    for fetch in fetches:
        cmd += ["--fetch", fetch]
    cmd += ["--output-dir", out_dir]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"gradserve-model timed out after {TOOL_TIMEOUT_S} s"
    if proc.returncode != 0:
        message = (proc.stderr.strip() or proc.stdout.strip() or "(no output)")
        return f"gradserve-model exited {proc.returncode}: {message}"
    return None


def compare(got, want):
    """Returns (error, message): error is a float for float outputs, the number of
    differing elements for int/bool ones; message is None when within tolerance."""
    if got.dtype != want.dtype:
        return None, f"dtype {got.dtype}, expected {want.dtype}"
    if got.shape != want.shape:
        return None, f"shape {got.shape}, expected {want.shape}"
    if not np.issubdtype(want.dtype, np.floating):
        diff = int(np.count_nonzero(got != want))
        return diff, (f"{diff} of {want.size} elements differ" if diff else None)
    finite = np.isfinite(want)
    if not np.array_equal(finite, np.isfinite(got)) or not np.array_equal(
            got[~finite], want[~finite], equal_nan=True):
        return None, "non-finite values differ"
    got64, want64 = got[finite].astype(np.float64), want[finite].astype(np.float64)
    if want64.size == 0:
        return 0.0, None
    scale = np.max(np.abs(want64)) or 1.0
    err = float(np.max(np.abs(got64 - want64)) / scale)
    return err, (f"normwise rel err {err:.3e} > {FLOAT_RTOL:g}" if err > FLOAT_RTOL else None)


def format_err(errors):
    if None in errors:  # some output could not be compared (dtype or shape)
        return "-"
    floats = [e for e in errors if isinstance(e, float)]
    ints = [e for e in errors if isinstance(e, int)]
    parts = []
    if floats:
        parts.append(f"{max(floats):.2e}")
    if ints:
        parts.append("exact" if not any(ints) else f"{sum(ints)} diff")
    return " / ".join(parts) or "-"


def run_case(name, seed, work_dir, tool):
    case_dir = os.path.join(work_dir, name)
    os.makedirs(case_dir, exist_ok=True)
    built = build(name, seed)
    result = Result(name, graph_ops(built.graph_def))

    pb_path = os.path.join(case_dir, f"{name}.pb")
    with open(pb_path, "wb") as f:
        f.write(built.graph_def.SerializeToString())
    input_files = {}
    for input_name, value in built.feeds.items():
        input_files[input_name] = os.path.join(case_dir, f"input_{input_name}.npy")
        np.save(input_files[input_name], value)

    expected = run_tf(built.graph_def, built.feeds, built.fetches)
    for fetch, want in zip(built.fetches, expected):
        np.save(os.path.join(case_dir, "expected_" + fetch.replace(":", "_") + ".npy"), want)

    unsupported = [op for op in result.ops if op not in SUPPORTED_OPS]
    for op in unsupported:
        result.fail(f"UNSUPPORTED op {op} in case {name}")
    if unsupported or tool is None:
        return result, built

    out_dir = os.path.join(case_dir, "out")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    error = run_gradserve(tool, pb_path, input_files, built.fetches, out_dir)
    if error:
        result.fail(error)
        return result, built

    errors = []
    for fetch, label, want in zip(built.fetches, built.labels, expected):
        path = output_file(out_dir, fetch)
        if not os.path.exists(path):
            result.fail(f"{label} ({fetch}): gradserve wrote no {os.path.basename(path)}")
            continue
        err, message = compare(np.load(path), np.asarray(want))
        errors.append(err)
        if message:
            result.fail(f"{label} ({fetch}): {message}")
    result.max_err = format_err(errors)
    return result, built


def list_ops(graph_defs):
    """Prints each op type with the attributes TensorFlow put on it."""
    attrs = {}
    for graph_def in graph_defs:
        for node in graph_def.node:
            attrs.setdefault(node.op, set()).update(node.attr.keys())
    print("\nops and attributes in the frozen graphs:")
    for op in sorted(attrs):
        print(f"  {op}: {' '.join(sorted(attrs[op])) or '-'}")


def status(result, dry_run):
    if not result.passed:
        return "FAIL"
    return "BUILT" if dry_run else "PASS"


def print_table(results, dry_run):
    rows = [("case", "result", "max err", "ops")]
    rows += [(r.name, status(r, dry_run), r.max_err, " ".join(r.ops)) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print()
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gradserve-model", help="path to the gradserve-model tool")
    parser.add_argument("--dry-run", action="store_true",
                        help="build graphs and TensorFlow outputs only; do not run gradserve")
    parser.add_argument("--work-dir",
                        help="where graphs, inputs and outputs go (default: a temporary "
                             "directory, removed when every case passes)")
    parser.add_argument("--seed", type=int, help="random seed (default: from the clock)")
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="run only this case (repeatable)")
    parser.add_argument("--list-ops", action="store_true",
                        help="also print every op type in the graphs with its attributes")
    args = parser.parse_args()
    if not args.dry_run and not args.gradserve_model:
        parser.error("--gradserve-model is required unless --dry-run is given")
    tool = None
    if not args.dry_run:
        tool = os.path.abspath(args.gradserve_model)
        if not os.access(tool, os.X_OK):
            parser.error(f"not an executable: {tool}")

    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    print(f"tf_interop: seed {seed} (rerun with --seed {seed}); TensorFlow {tf.__version__}")
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="tf_interop_")
    os.makedirs(work_dir, exist_ok=True)
    print(f"tf_interop: work dir {work_dir}")

    names = args.case or list(CASES)
    results, graph_defs = [], []
    for name in names:
        result, built = run_case(name, seed, work_dir, tool)
        results.append(result)
        graph_defs.append(built.graph_def)
        print(f"[{status(result, args.dry_run)}] {name}")
        for message in result.messages:
            print("    " + message.replace("\n", "\n    "))

    if args.case is None:
        # Every supported op must be exercised by some case; a TF version that emits a
        # different op for the same API call shows up here.
        seen = {op for r in results for op in r.ops}
        missing = sorted(SUPPORTED_OPS - seen)
        if missing:
            print(f"tf_interop: supported ops not covered by any case: {' '.join(missing)}")
    else:
        missing = []

    print_table(results, args.dry_run)
    if args.list_ops:
        list_ops(graph_defs)

    failed = sum(not r.passed for r in results)
    if args.dry_run:
        print(f"\ntf_interop: dry run, {len(results) - failed} built, {failed} failed")
    else:
        print(f"\ntf_interop: {len(results) - failed} passed, {failed} failed")
    if args.work_dir is None and not failed and not missing:
        shutil.rmtree(work_dir)
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
