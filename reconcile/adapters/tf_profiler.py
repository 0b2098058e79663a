"""TensorFlow's graph profiler (`tf.compat.v1.profiler`, float_operation view) on the Keras twins.

Two metric sets, told apart by the metric name:

* frozen (plain metric names): the Keras model traced as a concrete function at the spec's fixed batch, its
  variables frozen to constants (`convert_variables_to_constants_v2`), then profiled. One row per graph op the
  profiler counted, metric `<layer scope>/<op type>` in the TF1 form the document printed (`conv1/Conv2D`,
  `pool1/MaxPool`, `ip1/MatMul`; a repeated type in one layer gets TF1's `_1`, `_2` suffix), attributed to the
  canonical layer; `__total__` metric `float_ops`. Params: `trainable_params` from the Keras model (per layer and
  total) and the profiler's own `total_parameters`, which is 0 on a frozen graph (no variables are left).
* unfrozen (metric names prefixed `unfrozen:`, model `lenet` only): the document's TF1 set-up rebuilt in
  tf.compat.v1 graph mode from the layer IR (tf.compat.v1.layers is gone with Keras 3): the input held as a
  `Variable` initialised from `random_normal`, kernels from `glorot_uniform_initializer`, biases zeros, TF1 op
  names (`conv1/Conv2D`, ...), profiled before freezing. Metrics `unfrozen:<graph op name>`, `unfrozen:float_ops`,
  `unfrozen:<variable name>` (params) and `unfrozen:total_parameters`. The initialiser ops and the input
  Variable's `random_normal` are counted by the profiler too: their rows are attributed to the variable they
  initialise (layer `conv1/kernel`, `Variable`; layer_kind `initializer`) with a message saying so.

Ops the profiler has no FLOPs formula for (no `RegisterStatistics(<type>, "flops")`) are skipped silently by
tensorflow/python/profiler/tfprof_logger.py `_get_logged_ops`, i.e. counted as 0: each such op gets an
`unsupported` row naming its type. An op whose shape is not fully known is skipped the same way (its formula
raises ValueError, caught there), so an unknown batch is refused instead of recorded as 0.

TensorFlow is imported inside functions only: importing this module costs nothing.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from ..errors import UserError
from ..records import COMPUTE, ERROR, PARAMS, TOTAL, UNSUPPORTED, Emitter, Record
from . import distribution_version, missing

TOOL = "tf_profiler"
FRAMEWORK = "keras"
WORKER = "tf"
UNFROZEN = "unfrozen:"
UNFROZEN_MODELS = ("lenet",)  # the document's TF1 graph exists only for its LeNet
INPUT_VARIABLE = "Variable"  # the document's name of the input Variable (default tf.Variable name)
INITIALIZER = "initializer"  # layer_kind of the unfrozen route's initialiser-op rows (layer = the variable)

# Op types that do no floating-point arithmetic (data movement, variable bookkeeping, random-number generation):
# the profiler has no formula for them and none is missing, so they get no `unsupported` row. Any other op type
# without a formula is reported.
NO_ARITHMETIC = frozenset({
    "Const", "Placeholder", "Identity", "IdentityN", "NoOp", "StopGradient", "PreventGradient",
    "Reshape", "Squeeze", "ExpandDims", "Shape", "ShapeN", "Size", "Rank", "Pack", "Unpack", "StridedSlice", "Slice",
    "Transpose", "ConcatV2", "Split", "SplitV", "Tile", "BroadcastTo", "Fill", "ZerosLike", "OnesLike", "Range",
    "GatherV2", "Pad", "PadV2", "Select", "SelectV2", "Cast",
    "VariableV2", "VarHandleOp", "Assign", "AssignVariableOp", "ReadVariableOp", "VarIsInitializedOp",
    "RandomUniform", "RandomStandardNormal", "TruncatedNormal", "StatelessRandomUniformV2",
    "StatelessRandomNormalV2",
})

# Why an op type the profiler counts as 0 matters, for the `unsupported` message (TF 2.21 registers no "flops"
# statistics for these: tensorflow/python/profiler/internal/flops_registry.py, ops/nn_ops.py).
OP_NOTES = {
    "StatefulPartitionedCall": "it calls a nested tf.function the profiler does not look into (Keras 3 runs a "
                               "grouped Conv2D as a jit-compiled function)",
    "PartitionedCall": "it calls a nested tf.function the profiler does not look into",
    "FusedBatchNormV3": "batch norm in one fused op (TF1 graphs); Keras 3 decomposes BN into counted Mul/AddV2",
    "Einsum": "Keras 3 MultiHeadAttention computes Q K^T and A V with Einsum (its projections are counted MatMuls)",
    "Erf": "exact GELU", "Erfc": "exact GELU (Keras 3: 0.5 * x * erfc(-x / sqrt(2)))",
}


def version() -> str:
    found = distribution_version("tensorflow-cpu")
    return found if found != "not installed" else distribution_version("tensorflow")


def unavailable() -> Optional[str]:
    return missing("tensorflow-cpu", "tensorflow")


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    # Registers the FLOPs formulas the profiler uses, so get_stats_for_node_def sees them before profile() runs.
    from tensorflow.python.profiler.internal import flops_registry  # noqa: F401

    return tf


# ---------------------------------------------------------------------------------------------------- profiling

def _profile(graph: Any, options: dict) -> Any:
    tf = _tf()
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    return tf.compat.v1.profiler.profile(graph, options=builder(options).with_empty_output().build())


def _nodes(node: Any) -> Iterator[Any]:
    for child in node.children:
        yield child
        yield from _nodes(child)


def float_ops(graph: Any) -> tuple[int, dict[str, int]]:
    """(total, {op name: float ops}) from the profiler's GraphNodeProto tree (scope view: an op whose name is a
    prefix of others is their parent, e.g. `.../random_uniform` (the add) above `.../random_uniform/mul`, so every
    node's own `float_ops` is read, never `total_float_ops` below the root)."""
    root = _profile(graph, _tf().compat.v1.profiler.ProfileOptionBuilder.float_operation())
    per_op = {node.name: int(node.float_ops) for node in _nodes(root) if node.float_ops}
    if sum(per_op.values()) != root.total_float_ops:
        raise RuntimeError(f"profiler per-op float_ops sum {sum(per_op.values())} != total {root.total_float_ops}")
    return int(root.total_float_ops), per_op


def parameters(graph: Any) -> tuple[int, dict[str, int]]:
    """(total, {variable name: parameters}) from the profiler's trainable_variables_parameter view."""
    root = _profile(graph, _tf().compat.v1.profiler.ProfileOptionBuilder.trainable_variables_parameter())
    return int(root.total_parameters), {n.name: int(n.parameters) for n in _nodes(root) if n.parameters}


def flops_formula(graph: Any, op: Any) -> str:
    """'yes', 'no' (no registered formula: TF counts 0), 'shape' (shape not fully known: TF counts 0), or the
    formula's error. Mirrors tfprof_logger._get_logged_ops, which calls ops.get_stats_for_node_def."""
    from tensorflow.python.framework import ops

    try:
        stats = ops.get_stats_for_node_def(graph, op.node_def, "flops")
    except ValueError as exc:
        shapes = list(op.outputs) + list(op.inputs)
        return "shape" if not all(t.shape.is_fully_defined() for t in shapes) else f"error: {exc}"
    return "no" if stats.value is None else "yes"


# ------------------------------------------------------------------------------------------- op -> layer mapping

@dataclass(frozen=True)
class Scope:
    """A name scope in the graph that holds one layer call's ops."""

    scope: str  # graph name scope, e.g. "lenet_1/conv1_1" (Keras) or "conv1" (TF1)
    label: str  # the layer name used in metric labels (TF1 form: "ip1" in "ip1/Relu")
    layer: str  # canonical IR layer name
    kind: str
    activation: str = ""  # a fused activation's function name ("relu"), its ops go to `act_layer`
    act_layer: str = ""


@dataclass(frozen=True)
class OpRow:
    op: str  # graph op name
    type: str
    label: str  # metric label before any route prefix
    layer: str
    kind: str


def _scopes_from_ir(layers: list[tuple[str, Any]]) -> list[Scope]:
    """Scopes from (graph scope, IR layer) pairs; an ACT layer with attr `fused_with` joins its host's scope."""
    fused = {layer.attr("fused_with"): layer for _, layer in layers if layer.attr("fused_with")}
    scopes = []
    for scope, layer in layers:
        if layer.attr("fused_with"):
            continue
        act = fused.get(layer.name)
        scopes.append(Scope(scope, layer.name, layer.name, layer.kind, act.op if act else "",
                            act.name if act else ""))
    return scopes


def attribute(op: Any, scopes: list[Scope]) -> OpRow:
    """The layer an op belongs to: the longest scope containing it; inside a layer with a fused activation, ops
    of the activation's type (Relu) or in its sub-scope (Gelu/...) belong to the activation layer."""
    inside = [s for s in scopes if op.name.startswith(s.scope + "/")]
    if not inside:
        top = op.name.split("/")[0]
        return OpRow(op.name, op.type, f"{top}/{op.type}", top, "unknown")
    scope = max(inside, key=lambda s: len(s.scope))
    rest = op.name[len(scope.scope) + 1:].split("/")
    is_act = scope.activation and (op.type.lower() == scope.activation or
                                   (len(rest) > 1 and rest[0].lower() == scope.activation))
    layer, kind = (scope.act_layer, "act") if is_act else (scope.layer, scope.kind)
    return OpRow(op.name, op.type, f"{scope.label}/{op.type}", layer, kind)


def _tf1_suffixes(rows: list[OpRow]) -> list[OpRow]:
    """A second op of the same type in one layer gets TF1's uniquified name: MatMul, MatMul_1, ..."""
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        n = seen[row.label] = seen.get(row.label, -1) + 1
        out.append(row if n == 0 else OpRow(row.op, row.type, f"{row.label}_{n}", row.layer, row.kind))
    return out


def _zero_reason(row: OpRow, formula: str) -> tuple[str, str]:
    """(status, message) for an arithmetic op the profiler left out, i.e. counted as 0."""
    why = OP_NOTES.get(row.type, "")
    why = f"; {why}" if why else ""
    if formula == "no":
        return UNSUPPORTED, f"TF profiler has no FLOPs formula for {row.type}: counted as 0{why} (graph op {row.op})"
    if formula == "shape":
        return UNSUPPORTED, (f"TF profiler cannot count {row.type} without a fully known shape (lost inside the "
                             f"graph, e.g. after a nested function call): counted as 0 (graph op {row.op})")
    return ERROR, f"TF profiler FLOPs formula for {row.type} failed, counted as 0 (graph op {row.op}): {formula[7:]}"


def op_records(emit: Emitter, graph: Any, rows: list[OpRow], counted: dict[str, int], prefix: str = "",
               notes: Optional[dict[str, str]] = None) -> list[Record]:
    """One record per op the profiler counted, and one `unsupported` (or `error`) record per arithmetic op it
    silently counted as 0."""
    notes = notes or {}
    records = []
    by_name = {op.name: op for op in graph.get_operations()}
    for row in rows:
        metric = prefix + row.label
        if row.op in counted:
            message = notes.get(row.op, f"graph op {row.op}")
            records.append(emit.ok(row.layer, row.kind, COMPUTE, metric, counted[row.op], message))
        elif row.type not in NO_ARITHMETIC:
            formula = flops_formula(graph, by_name[row.op])
            if formula != "yes":  # "yes" but absent: the formula gave 0 (e.g. an empty tensor), nothing hidden
                status, message = _zero_reason(row, formula)
                records.append(emit.status(status, message, row.layer, row.kind, COMPUTE, metric))
    return records


def refuse_unknown_input(graph: Any) -> None:
    """An unknown batch makes every downstream formula raise, and tfprof_logger then counts 0 without a word."""
    unknown = [op.name for op in graph.get_operations()
               if op.type == "Placeholder" and not op.outputs[0].shape.is_fully_defined()]
    if unknown:
        raise UserError(f"graph input {unknown[0]} has an unknown batch or dimension: the TF profiler would count "
                        "0 FLOPs for every op depending on it; give the model a fixed batch and input shape")


# --------------------------------------------------------------------------------------------------- frozen route

def keras_model(spec: Any) -> Any:
    from ..frontends import keras_ir
    from ..models import load_factory

    if not spec.keras_factory:
        raise UserError(f"model {spec.name!r} has no Keras twin")
    return keras_ir.build(load_factory(spec.keras_factory), spec.input_shape)


def fixed_input_shape(model: Any, batch: Optional[int]) -> tuple[int, ...]:
    """The model's own (channels_last) input shape at `batch`; refuses any unknown dimension, because TF would
    then count 0 FLOPs for every op downstream without a word (facts: unknown batch -> total 0)."""
    if len(model.inputs) != 1:
        raise UserError(f"TF profiler adapter supports single-input models; {model.name!r} has {len(model.inputs)}")
    shape = (batch,) + tuple(model.inputs[0].shape[1:])
    if any(d is None or d <= 0 for d in shape):
        raise UserError(f"model {model.name!r}: input shape {shape} has an unknown batch or dimension; the TF "
                        "profiler counts 0 FLOPs for ops of unknown shape, so a fixed batch is required")
    return shape


@contextlib.contextmanager
def recording_scopes(model: Any) -> Iterator[list[tuple[Any, str]]]:
    """While tracing, record the TF name scope each leaf layer call runs in: Keras 3 uniquifies scopes in the
    traced graph (the first call of layer `conv2d` may run in `.../conv2d_1`, which is another layer's name), so
    only the scope seen at call time maps ops to layers reliably. Wraps `call` per instance (Operation.__call__
    looks `self.call` up at call time) and restores it afterwards."""
    from ..frontends import keras_ir

    tf = _tf()
    seen: list[tuple[Any, str]] = []
    patched = []

    def recorder(layer: Any, call: Any) -> Any:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            seen.append((layer, tf.compat.v1.get_default_graph().get_name_scope()))
            return call(*args, **kwargs)
        return recorded

    for layer, _, _ in keras_ir.layer_calls(model):
        if not any(layer is p for p in patched):
            object.__setattr__(layer, "call", recorder(layer, layer.call))
            patched.append(layer)
    try:
        yield seen
    finally:
        for layer in patched:
            object.__delattr__(layer, "call")


def frozen_graph(model: Any, batch: Optional[int]) -> tuple[Any, list[tuple[Any, str]]]:
    """The frozen inference graph of `model` at `batch`, and the (layer, scope) of every traced layer call."""
    tf = _tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec(fixed_input_shape(model, batch), model.inputs[0].dtype)
    with recording_scopes(model) as seen:
        function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    graph = convert_variables_to_constants_v2(function).graph
    refuse_unknown_input(graph)
    return graph, seen


def keras_scopes(model: Any, seen: list[tuple[Any, str]], aliases: dict[str, str], batch: int) -> list[Scope]:
    """Pair each recorded call scope with its IR layer (k-th call of a layer <-> its k-th IR layer)."""
    from ..frontends import keras_ir

    ir_layers: dict[int, list[Any]] = {}
    for layer, ir_layer in keras_ir.walk(model, aliases, batch):
        ir_layers.setdefault(id(layer), []).append(ir_layer)
    pairs, calls = [], {}
    for layer, scope in seen:
        index = calls[id(layer)] = calls.get(id(layer), -1) + 1
        group = ir_layers.get(id(layer), [])  # empty for shape-only layers (Flatten): their ops do no arithmetic
        bases = [lay for lay in group if not lay.attr("fused_with")]
        if index < len(bases):
            pairs.append((scope, bases[index]))
            pairs += [(scope, lay) for lay in group if lay.attr("fused_with") == bases[index].name]
    return _scopes_from_ir(pairs)


def trainable_params(emit: Emitter, model: Any, aliases: dict[str, str], batch: int) -> list[Record]:
    from ..frontends import keras_ir

    records, total = [], 0
    for layer, ir_layer in keras_ir.walk(model, aliases, batch):
        if ir_layer.attr("fused_with") or ir_layer.attr("shared_with"):
            continue
        value = sum(keras_ir.numel(w.shape) for w in getattr(layer, "trainable_weights", ()))
        records.append(emit.ok(ir_layer.name, ir_layer.kind, PARAMS, "trainable_params", value))
        total += value
    records.append(emit.ok(TOTAL, "", PARAMS, "trainable_params", total, "Keras model's trainable weights"))
    return records


def frozen_records(spec: Any, emit: Emitter) -> list[Record]:
    model = keras_model(spec)
    aliases = spec.aliases.get("keras", {})
    batch = spec.input_shape[0]
    graph, seen = frozen_graph(model, batch)
    scopes = keras_scopes(model, seen, aliases, batch)
    total, counted = float_ops(graph)
    rows = _tf1_suffixes([attribute(op, scopes) for op in graph.get_operations()])
    records = op_records(emit, graph, rows, counted)
    records.append(emit.ok(TOTAL, "", COMPUTE, "float_ops", total,
                           f"frozen concrete function at batch {batch}"))
    records += trainable_params(emit, model, aliases, batch)
    profiler_params, _ = parameters(graph)
    records.append(emit.ok(TOTAL, "", PARAMS, "total_parameters", profiler_params,
                           "profiler's trainable_variables_parameter on the frozen graph: freezing turned every "
                           "variable into a constant, so it finds none (the document printed 'Trainable params: 0' "
                           "after freezing too)"))
    return records


# ------------------------------------------------------------------------------------------------- unfrozen route

def _glorot_variable(name: str, shape: list[int]) -> Any:
    """tf.layers' defaults: kernel from glorot_uniform (tf.compat.v1.get_variable's default initialiser for float
    variables, init_ops.py), RefVariable as in TF1 graphs."""
    v1 = _tf().compat.v1
    return v1.get_variable(name, shape, initializer=v1.glorot_uniform_initializer(), use_resource=False)


def _zeros_variable(name: str, shape: list[int]) -> Any:
    v1 = _tf().compat.v1
    return v1.get_variable(name, shape, initializer=v1.zeros_initializer(), use_resource=False)


def _tf1_padding(layer: Any) -> Any:
    if layer.attr("padding_mode") == "same":
        return "SAME"
    if not any(layer.padding):
        return "VALID"
    return [[0, 0]] + [[p, p] for p in layer.padding] + [[0, 0]]


def _tf1_conv(layer: Any, x: Any) -> Any:
    tf = _tf()
    c_in, c_out = layer.input_shape[1], layer.output_shape[1]
    with tf.compat.v1.variable_scope(layer.name):  # tf.layers.conv2d: conv1/kernel, conv1/Conv2D, conv1/BiasAdd
        kernel = _glorot_variable("kernel", [*layer.kernel, c_in // layer.groups, c_out])
        x = tf.nn.conv2d(x, kernel, list(layer.stride), _tf1_padding(layer), dilations=list(layer.dilation),
                         name="Conv2D")
        return tf.nn.bias_add(x, _zeros_variable("bias", [c_out]), name="BiasAdd") if layer.bias else x


def _tf1_pool(layer: Any, x: Any) -> Any:
    tf = _tf()
    pool, op = (tf.nn.max_pool2d, "MaxPool") if layer.kind == "pool_max" else (tf.nn.avg_pool2d, "AvgPool")
    with tf.name_scope(layer.name):  # tf.layers.max_pooling2d: pool1/MaxPool
        return pool(x, list(layer.kernel), list(layer.stride), _tf1_padding(layer), name=op)


def _tf1_linear(layer: Any, x: Any) -> Any:
    tf = _tf()
    n_in, n_out = layer.input_shape[-1], layer.output_shape[-1]
    if x.shape.rank > 2:  # the document's `tf.reshape(pool2, [-1, 4 * 4 * 50])`: op "Reshape"
        x = tf.reshape(x, [-1, n_in])
    with tf.compat.v1.variable_scope(layer.name):  # tf.layers.dense: ip1/kernel, ip1/MatMul, ip1/BiasAdd
        x = tf.linalg.matmul(x, _glorot_variable("kernel", [n_in, n_out]), name="MatMul")
        return tf.nn.bias_add(x, _zeros_variable("bias", [n_out]), name="BiasAdd") if layer.bias else x


def _tf1_act(layer: Any, x: Any) -> Any:
    tf = _tf()
    # tf.layers.dense(..., tf.nn.relu, name='ip1') applies the activation inside its scope: op ip1/Relu.
    scope = layer.attr("fused_with") or layer.name
    with tf.name_scope(scope + "/"):  # trailing "/" re-enters the scope instead of opening ip1_1
        return getattr(tf.nn, layer.op)(x, name=layer.op.capitalize())


TF1_BUILDERS = {"conv": _tf1_conv, "pool_max": _tf1_pool, "pool_avg": _tf1_pool, "linear": _tf1_linear,
                "act": _tf1_act}


def document_graph(ir_model: Any) -> tuple[Any, Any]:
    """The document's TF1 graph for a conv/pool/dense model: `tf.Variable(tf.random_normal([N, H, W, C]))` as
    input, then the layers with tf.layers' names and initialisers. Returns (graph, input Variable)."""
    tf = _tf()
    n, c, *spatial = ir_model.input_shape
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.Variable(initial_value=tf.compat.v1.random_normal([n, *spatial, c]), use_resource=False)
        x = image
        for layer in ir_model.layers:
            if layer.kind not in TF1_BUILDERS:
                raise UserError(f"unfrozen TF1 route cannot build layer {layer.name!r} of kind {layer.kind}")
            x = TF1_BUILDERS[layer.kind](layer, x)
    return graph, image


def initialisers(graph: Any, image: Any) -> dict[str, str]:
    """{op name: variable it initialises} for the ops computing a variable's initial value: the input Variable's
    random_normal and every `<variable>/Initializer/...` op (tf.compat.v1.get_variable's naming, variables.py)."""
    tf = _tf()
    with graph.as_default():
        variables = [v.op.name for v in tf.compat.v1.global_variables()]
    input_scope = image.initial_value.op.name  # "random_normal": the document's tf.random_normal([1, 28, 28, 1])
    found = {}
    for op in graph.get_operations():
        if op.name == input_scope or op.name.startswith(input_scope + "/"):
            found[op.name] = image.op.name
        for var in variables:
            if op.name.startswith(var + "/Initializer/"):
                found[op.name] = var
    return found


def _initialiser_row(row: OpRow, variable: str, is_input: bool) -> tuple[OpRow, str]:
    """Initialiser ops are attributed to the variable they initialise (`conv1/kernel`, the input `Variable`), kind
    `initializer`: they are not compute of any model layer, so no layer's terms should be asked to explain them."""
    what = (f"the input {variable} (random_normal = RandomStandardNormal * stddev + mean)" if is_input else
            f"variable {variable} (glorot_uniform = RandomUniform * (max - min) + min)")
    return (OpRow(row.op, row.type, row.op, variable, INITIALIZER),
            f"initialiser op of {what}: runs once at initialisation, not per inference; counted only because the "
            "graph is profiled before freezing")


def unfrozen_records(spec: Any, emit: Emitter) -> list[Record]:
    from ..models import layer_ir

    ir_model = layer_ir(spec, "keras")
    graph, image = document_graph(ir_model)
    refuse_unknown_input(graph)
    scopes = _scopes_from_ir([(layer.name, layer) for layer in ir_model.layers])
    inits = initialisers(graph, image)
    total, counted = float_ops(graph)
    rows, notes = [], {}
    for op in graph.get_operations():
        row = attribute(op, scopes)
        # TF1 graph: the op's own name is the label the document's profiler printed (conv1/Conv2D).
        row = OpRow(row.op, row.type, row.op, row.layer, row.kind)
        if op.name in inits:
            row, notes[op.name] = _initialiser_row(row, inits[op.name], inits[op.name] == image.op.name)
        rows.append(row)
    records = op_records(emit, graph, rows, counted, UNFROZEN, notes)
    records.append(emit.ok(TOTAL, "", COMPUTE, UNFROZEN + "float_ops", total,
                           "document's TF1 graph (input as a Variable) profiled before freezing: includes the "
                           "initialiser ops"))
    params_total, per_variable = parameters(graph)
    owners = {s.scope: s for s in scopes}
    for name, value in per_variable.items():
        owner = owners.get(name.split("/")[0])
        layer, kind = (owner.layer, owner.kind) if owner else (name, "input")
        message = ("the input held as a trainable Variable: the profiler counts its elements as parameters"
                   if name == INPUT_VARIABLE else "")
        records.append(emit.ok(layer, kind, PARAMS, UNFROZEN + name, value, message))
    records.append(emit.ok(TOTAL, "", PARAMS, UNFROZEN + "total_parameters", params_total,
                           "profiler's trainable_variables_parameter before freezing, input Variable included"))
    return records


def count(spec: Any, emit: Emitter) -> list[Record]:
    records = frozen_records(spec, emit)
    if spec.name in UNFROZEN_MODELS:
        records += unfrozen_records(spec, emit)
    return records
