"""Netscope, dgschwend's web-based Caffe CNN analyzer, re-encoded from its source (it is a web page, so it cannot
run here). It reads the prototxt only and works out its own shapes, so this adapter walks the parsed prototxt the
way Netscope does, not the Caffe IR.

Two rule sets, both recorded by one `count()` under their own `tool_version`; `version()` joins them with "+"
("51c947a+a5f7aa4"):

- "51c947a", the older analyzer: the compiled page `assets/js/netscope.js` at dgschwend/netscope commit
  51c947aed1e3 (bundle module 3 `Analyzer.prototype.analyze`; graph building in module 5 caffe.coffee
  `generateNetwork`; the TOTAL row in module 12 `Renderer.summarizeTable`). It has no batch, no conv groups, no
  dilation and no biases: conv macc = kw*kh*Hout*Wout*Cin*Cout, conv params = kw*kh*Cin*Cout, inner-product
  params = K*N.
- "a5f7aa4": `src/analyzer.coffee` at commit a5f7aa480ac5 (`Analyzer.analyze`), whose conv `macc` is a FLOP-like
  count: (2n-1)*Hout*Wout*Cout*batch/group + has_bias*Cout with n = kw*kh*Cin (the full Cin: the /group divides
  the whole product, it does not shrink n), bias added once per output channel, not per output element; conv
  params = kw*kh*Cin*Cout/group + has_bias*Cout; inner-product params + has_bias*N; dilation widens the kernel in
  the shape only. It is the change dgschwend/netscope pull request #31 describes ("FLOP - MACC calculation
  correction": count the additions and the biases), which the maintainer answered "This analyzer does not count
  FLOPS, but MACCs" and left open; whether a5f7aa4 is that PR's commit is not recorded. Either way the a5f7aa4
  `macc` label is not a MACC. The caffe.coffee and renderer that went with a5f7aa4 are not stored; graph building
  and the TOTAL row follow the nearest stored build with batch support, `assets/js/netscope.js` at a6faa763973b
  (whose own conv rule is the in-between macc = kw*kh*Hout*Wout*Cin*Cout*batch/group, params with bias; not
  recorded here).

Shared rules (both versions): pooling output rounds UP, ceil((in + 2*pad - k)/stride) + 1, WITHOUT Caffe's rule
that drops a last window starting in the padding; MAX pooling `comp` / AVE pooling `add` = kernel_area * output
elements (global pooling: input elements); ReLU (and Dropout!) `comp` = elements; BatchNorm `add` = `div` =
elements, param = 2*C; Scale `macc` = elements and no params; Softmax `exp` = `add` = `div` = elements; Eltwise
`add` = elements whatever the operation, because the analyzer reads `n.eltwise_param` (absent: the parameters
live in `n.attribs`) and so always takes SUM; Concat sums channels, no ops.

Records: one metric per Netscope column, under Netscope's own labels: `macc`, `comp`, `add`, `div`, `exp`
(quantity compute), `param` (params) and `activation` (memory). Per layer (its Details table, one row per graph
node, including the input blob) only non-zero values are recorded, as its Summary shows them; a missing metric
means Netscope shows 0. `__total__` rows hold all seven columns as its Summary TOTAL computes them, which adds
the first row twice (51c947a: every column; a6faa76: all but activation); the message says so when that adds
anything. A layer type the analyzer does not know gives an `unsupported` row naming the type; Netscope then
propagates zero or NaN shapes, so every layer fed by it is `unsupported` too, never a made-up number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Callable, Optional

from ..frontends import prototxt
from ..frontends.prototxt import Ident, Message
from ..records import COMPUTE, MEMORY, PARAMS, SKIPPED, TOTAL, UNSUPPORTED, Emitter, Record

TOOL = "netscope"
FRAMEWORK = "caffe"
WORKER = "pure"
OLD, NEW = "51c947a", "a5f7aa4"

METRICS = (("macc", COMPUTE), ("comp", COMPUTE), ("add", COMPUTE), ("div", COMPUTE), ("exp", COMPUTE),
           ("param", PARAMS), ("activation", MEMORY))


def version() -> str:
    return f"{OLD}+{NEW}"


def unavailable() -> None:
    return None


class NetscopeCrash(RuntimeError):
    """Netscope itself would throw (a JavaScript TypeError) before showing any table."""


class _NaN(Exception):
    """A value Netscope computes as NaN / undefined: the layer and everything fed by it are not countable."""


# ---------------------------------------------------------------------------------------------------------------
# The prototxt as Netscope's PEG parser (bundle module 6) sees it: keys and unquoted identifiers lower-cased;
# consecutive `key: value` pairs form one object in which a repeated key becomes an array; every `key { }` block
# is its own object, and a block's elements are merged by assignment, so a later element overwrites a key.


def _js_elements(msg: Message) -> list[dict]:
    elements: list[dict] = []
    pairs: Optional[dict] = None
    for f in msg.fields:
        key = f.key.lower()
        if isinstance(f.value, Message):
            pairs = None
            elements.append({key: _js_object(f.value)})
            continue
        if pairs is None:
            pairs = {}
            elements.append(pairs)
        value = f.value.lower() if isinstance(f.value, Ident) else f.value
        pairs[key] = (_as_list(pairs[key]) + [value]) if key in pairs else value
    return elements


def _js_object(msg: Message) -> dict:
    merged: dict = {}
    for element in _js_elements(msg):
        merged.update(element)
    return merged


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _first(*values):
    """CoffeeScript's `a ? b`: the first value that is not null/undefined."""
    return next((v for v in values if v is not None), None)


def _truthy(value) -> bool:
    """JavaScript truthiness: "false" is a non-empty string, hence true."""
    return value not in (None, 0, "") and value == value


def _num(value, what: str) -> Fraction:
    """JavaScript arithmetic on a parsed value, exactly (Fractions): a one-element array acts as its element."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        raise _NaN(f"{what} is not set (undefined, so NaN)")
    if isinstance(value, list):
        raise _NaN(f"{what} is repeated {value}: NaN in JavaScript arithmetic")
    try:
        return Fraction(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError):
        raise _NaN(f"{what} = {value!r} is not a number") from None


def _param(attribs: dict, key: str) -> dict:
    value = attribs.get(key)
    if not isinstance(value, dict):
        raise _NaN(f"no {key} (the analyzer reads fields of undefined)")
    return value


# ---------------------------------------------------------------------------------------------------------------
# The graph, as caffe.coffee generateNetwork builds it (identical in the 51c947a and a6faa76 bundles)


@dataclass(eq=False)
class _Node:
    name: str
    type: Optional[str]
    attribs: dict
    parents: list["_Node"] = field(default_factory=list)
    children: list["_Node"] = field(default_factory=list)

    def add_child(self, child: "_Node") -> None:
        if child not in self.children:
            self.children.append(child)
            if self not in child.parents:
                child.parents.append(self)

    def detach_children(self) -> list["_Node"]:
        children, self.children = self.children, []
        for child in children:
            child.parents.remove(self)
        return children


@dataclass(frozen=True)
class _Graph:
    nodes: tuple[_Node, ...]  # Netscope's table order (sortTopologically)
    lost: Optional[str]  # a layer Netscope took for the net header (see _graph)


def _header_and_layers(doc: Message) -> tuple[dict, list[dict], Optional[str]]:
    """CaffeParser.parse + generateLayers: the first top-level element is the header; later `layer`/`layers`
    elements are layers, kept if they have no include.phase or phase "train" (Netscope's default phase)."""
    elements = _js_elements(doc)
    header, descs = (elements[0], elements[1:]) if elements else ({}, [])
    if descs and ("input_dim" in descs[0] or "input_shape" in descs[0]):
        header = {**header, **descs[0]}
    lost = header.get("layer") or header.get("layers")  # a file that opens with `layer {` loses that layer
    layers = [d.get("layer") or d.get("layers") for d in descs if d.get("layer") or d.get("layers")]
    layers = [d for d in layers if d.get("include", {}).get("phase") in (None, "train")]
    return header, layers, (str(lost.get("name")) if isinstance(lost, dict) else None)


def _graph(doc: Message) -> _Graph:
    header, layers, lost = _header_and_layers(doc)
    nodes: list[_Node] = []
    table: dict[str, _Node] = {}

    def create(name: str, type_, attribs: dict) -> _Node:
        nodes.append(_Node(name, type_, attribs))
        return nodes[-1]

    def get(name) -> _Node:  # getSingleNode: a blob that is not a layer name becomes an 'implicit' node
        key = str(name)
        if key not in table:
            table[key] = create(key, "implicit", {})
        return table[key]

    def get_many(names, exclude) -> list[_Node]:
        return [get(n) for n in _as_list(names) if n not in _as_list(exclude)]

    for desc in layers:
        attribs = {k: v for k, v in desc.items() if k not in ("name", "type", "top", "bottom")}
        table[str(desc.get("name"))] = create(str(desc.get("name")), desc.get("type"), attribs)
    inplace: dict[str, list[_Node]] = {}
    for desc in layers:
        node, top, bottom = table[str(desc.get("name"))], desc.get("top"), desc.get("bottom")
        if top is not None:
            if isinstance(top, str) and top == bottom:  # JS `===`: two arrays are never equal
                inplace.setdefault(top, []).append(node)
                continue
            for child in get_many(top, [desc.get("name")]):
                node.add_child(child)
        if bottom is not None:
            for parent in get_many(bottom, top if top is not None else []):
                parent.add_child(node)
    for blob, ops in inplace.items():  # chain in-place layers after the layer named like the blob
        current = table.get(blob)
        if current is None:
            raise NetscopeCrash(f"in-place layer {ops[0].name!r} works on blob {blob!r}, which is neither a layer "
                                "name nor used elsewhere: Netscope's generateNetwork throws a TypeError")
        children = current.detach_children()
        for op in ops:
            current.add_child(op)
            current = op
        for child in children:
            current.add_child(child)
    _mark_inputs(header, table)
    return _Graph(_topological(nodes), lost)


def _mark_inputs(header: dict, table: dict[str, _Node]) -> None:
    """Header `input:` blobs with `input_dim` / `input_shape.dim` (4 per input) become 'data' nodes."""
    inputs = header.get("input")
    shape = header.get("input_shape")
    dims = _first(header.get("input_dim"), shape.get("dim") if isinstance(shape, dict) else None)
    if inputs is None or not isinstance(dims, list) or len(_as_list(inputs)) * 4 != len(dims):
        return  # Netscope logs 'Inconsistent input dimensions.' and leaves the blobs implicit
    for i, name in enumerate(_as_list(inputs)):
        node = table.get(str(name))
        if node is None:
            raise NetscopeCrash(f"input {name!r} is used by no layer: Netscope's generateNetwork throws a TypeError")
        node.type = "data"
        node.attribs = {**node.attribs, "input_param": {"shape": {"dim": dims[4 * i:4 * i + 4]}}}


def _topological(nodes: list[_Node]) -> tuple[_Node, ...]:
    """network.coffee sortTopologically: depth-first from the last node, children in order, each finished node
    put in front."""
    order: list[_Node] = []
    state: dict[int, str] = {}
    for start in reversed(nodes):
        if state.get(id(start)) == "perm":
            continue
        state[id(start)] = "temp"
        stack = [(start, iter(start.children))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if state.get(id(child)) == "temp":
                    raise NetscopeCrash("the graph has a cycle: Netscope throws 'Graph is not a DAG.'")
                if state.get(id(child)) != "perm":
                    state[id(child)] = "temp"
                    stack.append((child, iter(child.children)))
                    break
            else:
                stack.pop()
                state[id(node)] = "perm"
                order.insert(0, node)
    return tuple(order)


# ---------------------------------------------------------------------------------------------------------------
# Per-layer-type rules. A handler gets the node's attribs and its parents' output dims (parents[0] is the
# analyzer's `parent`) and returns what the analyzer stores in n.analysis.


@dataclass(frozen=True)
class Dims:
    batch: Fraction  # always 1 under the 51c947a rules, which have no batch
    ch: Fraction
    h: Fraction
    w: Fraction

    @property
    def elements(self) -> Fraction:
        return self.w * self.h * self.ch * self.batch


@dataclass(frozen=True)
class Analysis:
    out: Optional[Dims]  # None: Netscope's shapes are meaningless from here on
    values: dict[str, Fraction] = field(default_factory=dict)  # metric -> value (macc, ..., param, activation)
    problem: str = ""  # set: this row is `unsupported`
    note: str = ""  # a remark on otherwise-recorded values


Handler = Callable[[dict, list[Dims]], Analysis]


def _parent(parents: list[Dims]) -> Dims:
    if not parents:
        raise _NaN("it has no input Netscope can see")
    return parents[0]


def _data(batch: bool) -> Handler:
    def handler(attribs: dict, parents: list[Dims]) -> Analysis:
        shape = attribs.get("input_param", {}).get("shape") if isinstance(attribs.get("input_param"), dict) else None
        if isinstance(shape, dict):
            dim = _as_list(shape.get("dim"))
            if len(dim) < 4:
                raise _NaN(f"input shape {dim} has fewer than 4 dims (the analyzer reads dim[0..3])")
            b, c, h, w = (_num(dim[i], f"dim[{i}]") for i in range(4))
            out = Dims(b if batch else Fraction(1), c, h, w)
        elif isinstance(attribs.get("transform_param"), dict) and "crop_size" in attribs["transform_param"]:
            if batch:  # sets batchOut = 1, then overwrites it with the undefined batchIn
                raise _NaN("a crop_size Data layer leaves the batch undefined (NaN downstream)")
            crop = _num(attribs["transform_param"]["crop_size"], "crop_size")
            out = Dims(Fraction(1), Fraction(3), crop, crop)  # 'assume RGB'
        else:
            raise _NaN("Unknown Input Dimensions")
        return Analysis(out, {"activation": out.elements})
    return handler


def _window(p: dict) -> tuple[Fraction, ...]:
    """kernel, stride and pad per axis, the per-axis fields (kernel_w ...) winning over the shared ones, as the
    analyzer reads them for convolution and (a5f7aa4) pooling."""
    return (_num(_first(p.get("kernel_w"), p.get("kernel_size")), "kernel_w"),
            _num(_first(p.get("kernel_h"), p.get("kernel_size")), "kernel_h"),
            _num(_first(p.get("stride_w"), p.get("stride"), 1), "stride_w"),
            _num(_first(p.get("stride_h"), p.get("stride"), 1), "stride_h"),
            _num(_first(p.get("pad_w"), p.get("pad"), 0), "pad_w"),
            _num(_first(p.get("pad_h"), p.get("pad"), 0), "pad_h"))


def _conv(later: bool) -> Handler:
    def handler(attribs: dict, parents: list[Dims]) -> Analysis:
        p, x = _param(attribs, "convolution_param"), _parent(parents)
        kw, kh, sw, sh, pw, ph = _window(p)
        numout = _num(p.get("num_output"), "num_output")
        group, dilation, has_bias = Fraction(1), Fraction(1), 0
        if later:
            group = _num(_first(p.get("group"), 1), "group")
            dilation = _num(_first(p.get("dilation"), 1), "dilation")
            has_bias = 0 if _first(p.get("bias_term"), "true") == "false" else 1
        w_out = math.floor((x.w + 2 * pw - (dilation * (kw - 1) + 1)) / sw) + 1
        h_out = math.floor((x.h + 2 * ph - (dilation * (kh - 1) + 1)) / sh) + 1
        if later:
            n = kw * kh * x.ch  # vector_length: the full Cin
            macc = (2 * n - 1) * (w_out * h_out) * numout * x.batch / group + has_bias * numout
        else:
            macc = kw * kh * (w_out * h_out) * x.ch * numout
        param = kw * kh * x.ch * numout / group + has_bias * numout
        return Analysis(Dims(x.batch, numout, Fraction(h_out), Fraction(w_out)),
                        {"macc": macc, "param": param, "activation": w_out * h_out * numout * x.batch})
    return handler


def _inner_product(later: bool) -> Handler:
    def handler(attribs: dict, parents: list[Dims]) -> Analysis:
        p, x = _param(attribs, "inner_product_param"), _parent(parents)
        numout = _num(p.get("num_output"), "num_output")
        has_bias = 1 if later and _first(p.get("bias_term"), "true") != "false" else 0
        k = x.w * x.h * x.ch
        return Analysis(Dims(x.batch, numout, Fraction(1), Fraction(1)),
                        {"macc": k * numout * x.batch, "param": k * numout + has_bias * numout,
                         "activation": numout * x.batch})
    return handler


def _pooling(later: bool) -> Handler:
    def handler(attribs: dict, parents: list[Dims]) -> Analysis:
        p, x = _param(attribs, "pooling_param"), _parent(parents)
        pool = _first(p.get("pool"), "MAX")
        if not isinstance(pool, str):
            raise _NaN(f"pool = {pool!r} has no toUpperCase (TypeError)")
        if _truthy(_first(p.get("global_pooling"), 0)):  # note: `global_pooling: false` is truthy here
            w_out = h_out = 1
            ops = x.w * x.h * x.ch * x.batch
        else:
            if later:  # the 51c947a build reads kernel_size / stride / pad only
                kw, kh, sw, sh, pw, ph = _window(p)
            else:
                kw = kh = _num(p.get("kernel_size"), "kernel_size")
                sw = sh = _num(_first(p.get("stride"), 1), "stride")
                pw = ph = _num(_first(p.get("pad"), 0), "pad")
            w_out = math.ceil((x.w + 2 * pw - kw) / sw) + 1  # no clipping of a window starting in the padding
            h_out = math.ceil((x.h + 2 * ph - kh) / sh) + 1
            ops = w_out * h_out * kh * kw * x.ch * x.batch
        out = Dims(x.batch, x.ch, Fraction(h_out), Fraction(w_out))
        values = {"activation": out.elements}
        kind = {"MAX": "comp", "AVE": "add"}.get(pool.upper())
        if kind is None:
            return Analysis(out, values, problem=f"Unknown pooling type {pool.upper()} (no ops counted)")
        return Analysis(out, {kind: ops, **values})
    return handler


def _lrn(later: bool) -> Handler:
    def handler(attribs: dict, parents: list[Dims]) -> Analysis:
        x = _parent(parents)
        lrn = attribs.get("lrn_param") if later else _param(attribs, "lrn_param")
        size = _num(_first(lrn.get("local_size") if isinstance(lrn, dict) else None, 1 if later else None),
                    "local_size")
        n = x.elements
        return Analysis(x, {"macc": n * size, "add": n, "exp": n, "div": 2 * n, "param": Fraction(2),
                            "activation": n})
    return handler


def _elementwise(*metrics: str) -> Handler:
    """Shape-preserving layers counting `metrics` = input elements each (ReLU, Softmax, BatchNorm, Scale)."""
    def handler(attribs: dict, parents: list[Dims]) -> Analysis:
        x = _parent(parents)
        return Analysis(x, {**{m: x.elements for m in metrics}, "activation": x.elements})
    return handler


def _batch_norm(attribs: dict, parents: list[Dims]) -> Analysis:
    x = _parent(parents)
    return Analysis(x, {"add": x.elements, "div": x.elements, "param": 2 * x.ch, "activation": x.elements})


def _eltwise(attribs: dict, parents: list[Dims]) -> Analysis:
    x = _parent(parents)
    note = ""
    op = attribs.get("eltwise_param", {}).get("operation") if isinstance(attribs.get("eltwise_param"), dict) else None
    if op is not None and str(op).upper() != "SUM":
        note = (f"the prototxt says {str(op).upper()}, but the analyzer reads n.eltwise_param (always undefined) "
                "and counts SUM")
    if any((p.w, p.h) != (x.w, x.h) for p in parents):
        note = "ELTWISE: input dimensions dont agree"
    return Analysis(x, {"add": x.elements, "activation": x.elements}, note=note)


def _concat(attribs: dict, parents: list[Dims]) -> Analysis:
    x = _parent(parents)
    out = Dims(x.batch, sum((p.ch for p in parents), Fraction(0)), x.h, x.w)
    note = "CONCAT: input dimensions dont agree!" if any((p.w, p.h) != (x.w, x.h) for p in parents) else ""
    return Analysis(out, {"activation": out.elements}, note=note)


def _flatten(attribs: dict, parents: list[Dims]) -> Analysis:
    x = _parent(parents)
    out = Dims(x.batch, x.ch * x.w * x.h, Fraction(1), Fraction(1))
    return Analysis(out, {"activation": out.elements})


def _accuracy(attribs: dict, parents: list[Dims]) -> Analysis:
    return Analysis(_parent(parents))


def _implicit(later: bool) -> Handler:
    """A blob that is not named after a layer (or an undeclared input)."""
    def handler(attribs: dict, parents: list[Dims]) -> Analysis:
        if not parents:
            raise _NaN("a blob no layer produces: its shape is '?'")
        if later:
            return Analysis(parents[0], {"activation": parents[0].elements})
        # 51c947a compiles `d.wIn = +((parent?.wOut) != null)`: every dim becomes 1 (true)
        one = Fraction(1)
        return Analysis(Dims(one, one, one, one), {"activation": one},
                        note="the 51c947a build gives a blob not named after its layer the shape 1x1x1")
    return handler


def _not_encoded(type_: str) -> Handler:
    def handler(attribs: dict, parents: list[Dims]) -> Analysis:
        raise _NaN(f"Netscope has a rule for {type_!r} that this encoding does not reproduce")
    return handler


def _table(later: bool) -> dict[str, Handler]:
    """Layer type (lower-cased, as the analyzer switches on it) -> rule."""
    table = {
        "data": _data(later), "convolution": _conv(later), "innerproduct": _inner_product(later),
        "inner_product": _inner_product(later), "pooling": _pooling(later), "batchnorm": _batch_norm,
        "lrn": _lrn(later), "concat": _concat, "relu": _elementwise("comp"), "dropout": _elementwise("comp"),
        "softmax": _elementwise("exp", "add", "div"), "softmaxwithloss": _elementwise("exp", "add", "div"),
        "softmax_loss": _elementwise("exp", "add", "div"), "flatten": _flatten, "eltwise": _eltwise,
        "scale": _elementwise("macc"), "implicit": _implicit(later), "accuracy": _accuracy,
        "deconvolution": _not_encoded("deconvolution"), "crop": _not_encoded("crop"),
    }
    if later:  # types the a5f7aa4 analyzer added
        table.update({"input": table["data"], "bn": _batch_norm, "normalize": table["lrn"],
                      "relu6": table["relu"], "elu": table["relu"], "prelu": table["relu"]})
        table.update({t: _not_encoded(t) for t in ("power", "permute", "priorbox", "reshape", "python",
                                                    "roipooling")})
    return table


@dataclass(frozen=True)
class Rules:
    version: str
    handlers: dict[str, Handler]
    total_repeats_activation: bool  # summarizeTable adds the first row's activation twice (51c947a only)


RULES = (Rules(OLD, _table(later=False), total_repeats_activation=True),
         Rules(NEW, _table(later=True), total_repeats_activation=False))


def analyze(graph: _Graph, rules: Rules) -> list[tuple[_Node, Analysis]]:
    results: dict[int, Analysis] = {}
    rows = []
    for node in graph.nodes:
        broken = next((p for p in node.parents if results[id(p)].out is None), None)
        handler = rules.handlers.get(str(node.type).lower()) if node.type is not None else None
        if broken is not None:
            result = Analysis(None, problem=f"its input {broken.name!r} could not be analysed, so Netscope's "
                                            "shapes and counts here are meaningless")
        elif handler is None:
            result = Analysis(None, problem=f"Netscope {rules.version} has no rule for layer type "
                                            f"{str(node.type)!r} (analyzer: onerror 'Unknown Layer')")
        else:
            try:
                result = handler(node.attribs, [results[id(p)].out for p in node.parents])
            except _NaN as exc:
                result = Analysis(None, problem=f"Netscope {rules.version} cannot count this {node.type} layer: "
                                                f"{exc}")
        results[id(node)] = result
        rows.append((node, result))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Records


def _value(x: Fraction):
    return int(x) if x.denominator == 1 else float(x)


def _first_summary_entry(rows: list[tuple[_Node, Analysis]]) -> dict[str, Fraction]:
    """Renderer.summarizeTable folds rows named 'prefix/...' into the row before when the prefixes agree; its
    TOTAL then starts from a copy of the first folded entry and adds every entry, the first one included."""
    if not rows:
        return {}
    name, values = rows[0][0].name, dict(rows[0][1].values)
    for node, result in rows[1:]:
        slash = node.name.find("/")
        if slash <= 0 or name[:slash] != node.name[:slash]:
            break
        name = node.name[:slash]
        for metric, v in result.values.items():
            values[metric] = values.get(metric, 0) + v
    return values


def _kind(node: _Node, layers: dict[str, prototxt.CaffeLayer]) -> str:
    if node.name in layers:
        return prototxt.kind_of(layers[node.name])
    return prototxt.INPUT_KIND if node.type == "data" else "implicit"


def records_for(graph: _Graph, rules: Rules, layers: dict[str, prototxt.CaffeLayer],
                emit: Emitter) -> list[Record]:
    rows = analyze(graph, rules)
    records: list[Record] = []
    lost = ("Netscope takes the first top-level block for the net header, so this layer is missing from its table"
            if graph.lost else "")
    if graph.lost and all(node.name != graph.lost for node, _ in rows):
        records.append(emit.status(UNSUPPORTED, lost, graph.lost, _kind(_Node(graph.lost, None, {}), layers)))
    for node, result in rows:
        kind = _kind(node, layers)
        if result.problem:  # a blob named after the lost layer is an implicit node with no producer
            problem = f"{lost}; {result.problem}" if node.name == graph.lost else result.problem
            records.append(emit.status(UNSUPPORTED, problem, node.name, kind))
        for metric, quantity in METRICS:
            value = result.values.get(metric, 0)
            if value:
                records.append(emit.ok(node.name, kind, quantity, metric, _value(value), result.note))
    records.extend(_totals(rows, rules, emit))
    return records


def _totals(rows: list[tuple[_Node, Analysis]], rules: Rules, emit: Emitter) -> list[Record]:
    repeated = _first_summary_entry(rows)
    if not rules.total_repeats_activation:
        repeated.pop("activation", None)
    skipped = [node.name for node, result in rows if result.out is None]
    records = []
    for metric, quantity in METRICS:
        total = sum((result.values.get(metric, 0) for _, result in rows), Fraction(0)) + repeated.get(metric, 0)
        notes = []
        if repeated.get(metric):
            notes.append(f"includes the first row ({rows[0][0].name}) twice, as Netscope's TOTAL does: "
                         f"+{_value(repeated[metric]):,}")
        if skipped:
            notes.append(f"excludes layers Netscope could not count: {', '.join(skipped)}")
        records.append(emit.ok(TOTAL, "", quantity, metric, _value(total), "; ".join(notes)))
    return records


def count(spec, emit: Emitter) -> list[Record]:
    if spec.prototxt is None:
        return [emit.status(SKIPPED, f"model {spec.name!r} has no Caffe prototxt; Netscope reads only prototxts")]
    net = prototxt.read_net(spec.prototxt)
    graph = _graph(net.document)
    layers = {layer.name: layer for layer in net.layers}
    records: list[Record] = []
    for rules in RULES:
        records.extend(records_for(graph, rules, layers, replace(emit, tool_version=rules.version)))
    return records
