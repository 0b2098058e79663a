"""Caffe `.prototxt` -> layer IR, in two steps.

1. `parse_text`: a protobuf *text format* reader: `#` comments, "..." / '...' strings, numbers, identifiers
   (enums, true/false), `key: value`, `key { ... }` (the `:` before `{` is optional), `key: [a, b]` lists and
   repeated fields. Every field is kept in order with its line (a `Message`): Caffe reads singular fields as
   "last one wins", while Netscope's own parser groups them differently (reconcile.adapters.netscope rebuilds
   its view from the same fields). Malformed text raises UserError("PATH:LINE: reason").
2. `build_model`: Caffe's shape inference over the NetParameter, one handler per layer type in a table
   (fvcore jit_handles style). Shapes are channels-first with batch, as from every front end.

Conventions, chosen so the IR equals the PyTorch twin's where one exists:
- Convolution output rounds down. Pooling rounds up (Caffe's default round_mode CEIL) and, when padded, drops a
  last window that would start in the padding (caffe/src/caffe/layers/pooling_layer.cpp, Reshape).
- InnerProduct flattens its input from `axis` (default 1); its IR input shape is the flattened (N, K), which is
  what the torch twin's Linear sees after its reshape.
- `params` = the learnable blobs Caffe allocates: conv / inner-product weights, plus the bias if bias_term;
  Scale C (+C with bias_term); PReLU C. BatchNorm's three blobs (mean C, variance C, moving-average factor 1)
  are statistics, not learned (torch keeps them as buffers), so BatchNorm params = 0 and attr `caffe_blobs`
  keeps 2C+1. A following Scale is its own layer of kind `mul` with its 2C params, so BatchNorm + Scale = torch's
  BatchNorm2d(affine) = 2C.
- Data layers and layers that only move data (Dropout, Flatten, Reshape, Split, Silence) yield no IR layer, as
  in the torch front end. A type not described here becomes kind `unknown` (op = the type), its outputs assumed
  to have its first input's shape (attr `shape_assumed`): kept, never dropped.
- Activations have op = the function (relu, sigmoid, ...), as the torch front end writes it; every other layer
  has op = the Caffe type name.
- The IR is the inference net (Caffe phase TEST): layers whose include/exclude rules drop them in TEST are
  skipped.

Bounds, so that any file is read in bounded time and memory and any mistake is one line (PATH:LINE: reason):
a file of at most MAX_FILE_BYTES, strings of at most MAX_STRING_CHARS, numbers of at most MAX_NUMBER_CHARS characters (integers within int64, floats finite),
messages nested at most MAX_DEPTH deep (the parser checks the depth, so no RecursionError), sizes that must be
positive (num_output, kernel, stride, dilation; pad non-negative) and axes within the blob's rank.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from conventions.ir import (ACT, ADD, BN, CONCAT, CONV, LINEAR, MUL, POOL_AVG, POOL_MAX, SOFTMAX, UNKNOWN, Layer,
                            Model, Shape)

from ..errors import UserError

# ---------------------------------------------------------------------------------------------------------------
# Text format


class Ident(str):
    """An unquoted identifier value (an enum such as MAX, or true/false), as opposed to a quoted string."""


Scalar = Union[str, int, float]


@dataclass(frozen=True)
class Field:
    key: str
    value: Union[Scalar, "Message"]
    line: int


@dataclass(frozen=True)
class Message:
    fields: tuple[Field, ...] = ()
    line: int = 1

    def all(self, key: str) -> list:
        return [f.value for f in self.fields if f.key == key]

    def field(self, key: str) -> Optional[Field]:
        found = [f for f in self.fields if f.key == key]
        return found[-1] if found else None  # proto singular fields: the last one wins

    def get(self, key: str, default=None):
        f = self.field(key)
        return default if f is None else f.value

    def sub(self, key: str) -> "Message":
        value = self.get(key)
        return value if isinstance(value, Message) else Message(line=self.line)

    def __contains__(self, key: str) -> bool:
        return self.field(key) is not None


@dataclass(frozen=True)
class _Token:
    kind: str  # string | number | ident | punct
    text: str
    line: int

    def shown(self) -> str:
        return repr(self.text)


MAX_FILE_BYTES = 4 * 2 ** 20  # the largest public deploy prototxts are a few hundred KB
MAX_STRING_CHARS = 4096
MAX_NUMBER_CHARS = 40  # int64 (what protobuf's integer fields hold) has 19 digits
MAX_DEPTH = 64

# Possessive quantifiers (++, *+): a long string is matched in one pass, without a backtracking stack (a 5 MB
# quoted string took 1.2 GB with a plain alternation).
_TOKEN_RE = re.compile(r"""
    (?P<space>[ \t\r\f\v]++) | (?P<newline>\n) | (?P<comment>\#[^\n]*+)
  | (?P<string>"(?:[^"\\\n]++|\\.)*+"|'(?:[^'\\\n]++|\\.)*+')
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_0-9.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}<>\[\]:,;])
""", re.VERBOSE)
_CLOSER = {"{": "}", "<": ">"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _bad_token(text: str, pos: int) -> str:
    char = text[pos]
    if char in "\"'":
        return "unterminated string"
    if not char.isprintable() or char.isspace():
        return f"bad character U+{ord(char):04X}"
    bad = text[pos:pos + 40].split(None, 1)[0] if text[pos:pos + 40].strip() else char
    return f"bad token {bad!r}"


def _check_number(token: str, path: str, line: int) -> None:
    """Integers within int64 (protobuf's widest), floats finite, no number longer than MAX_NUMBER_CHARS."""
    if len(token) > MAX_NUMBER_CHARS:
        raise UserError(f"{path}:{line}: number {token[:20]}... is {len(token):,} characters long")
    if re.fullmatch(r"[-+]?\d+", token):
        if abs(int(token)) >= 2 ** 63:
            raise UserError(f"{path}:{line}: integer {token} does not fit in 64 bits")
    elif not math.isfinite(float(token)):
        raise UserError(f"{path}:{line}: number {token} is not finite")


def tokenize(text: str, path: str) -> list[_Token]:
    tokens, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise UserError(f"{path}:{line}: {_bad_token(text, pos)}")
        kind = m.lastgroup
        if kind == "newline":
            line += 1
        elif kind not in ("space", "comment"):
            token = m.group(0)
            if kind == "string" and len(token) > MAX_STRING_CHARS + 2:
                raise UserError(f"{path}:{line}: a string of {len(token) - 2:,} characters (at most "
                                f"{MAX_STRING_CHARS:,})")
            if kind == "number":
                _check_number(token, path, line)
            if kind == "ident" and len(token) > MAX_STRING_CHARS:
                raise UserError(f"{path}:{line}: an identifier of {len(token):,} characters")
            tokens.append(_Token(kind, token, line))
        pos = m.end()
    return tokens


def _scalar(tok: _Token) -> Scalar:
    if tok.kind == "string":
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), tok.text[1:-1])
    if tok.kind == "number":
        if re.fullmatch(r"[-+]?\d+", tok.text):
            return int(tok.text)
        value = float(tok.text)
        return value
    return Ident(tok.text)


class _Parser:
    """Recursive descent over the tokens; every error names the line where the reader can fix it."""

    def __init__(self, tokens: list[_Token], path: str):
        self.tokens, self.i, self.path, self.depth = tokens, 0, path, 0

    def error(self, line: int, reason: str) -> UserError:
        return UserError(f"{self.path}:{line}: {reason}")

    def peek(self, ahead: int = 0) -> Optional[_Token]:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> Optional[_Token]:
        tok = self.peek()
        self.i += tok is not None
        return tok

    def message(self, opener: Optional[_Token]) -> Message:
        if opener is not None and self.depth >= MAX_DEPTH:
            raise self.error(opener.line, f"blocks nested more than {MAX_DEPTH} deep")
        self.depth += opener is not None
        try:
            return self._message(opener)
        finally:
            self.depth -= opener is not None

    def _message(self, opener: Optional[_Token]) -> Message:
        fields: list[Field] = []
        while True:
            tok = self.take()
            if tok is None:
                if opener is not None:
                    raise self.error(opener.line, f"unbalanced brace: {opener.text!r} opened here is never closed")
                return Message(tuple(fields), 1)
            if tok.kind == "punct" and tok.text in "}>":
                if opener is not None and tok.text == _CLOSER[opener.text]:
                    return Message(tuple(fields), opener.line)
                raise self.error(tok.line, f"unbalanced brace: {tok.text!r} has no matching opening brace")
            if tok.kind == "punct" and tok.text in ",;":  # optional field separators
                continue
            if tok.kind != "ident":
                raise self.error(tok.line, f"unexpected {tok.shown()}: expected a field name")
            fields.extend(self.field(tok))

    def is_punct(self, tok: Optional[_Token], chars: str) -> bool:
        return tok is not None and tok.kind == "punct" and tok.text in chars

    def field(self, key: _Token) -> list[Field]:
        nxt = self.peek()
        if self.is_punct(nxt, "{<"):
            self.take()
            return [Field(key.text, self.message(nxt), key.line)]
        if not self.is_punct(nxt, ":"):
            found = f"{nxt.shown()}" if nxt else "end of file"
            raise self.error(key.line, f"expected ':' or '{{' after {key.text!r}, found {found}")
        self.take()
        nxt = self.peek()
        if self.is_punct(nxt, "{<"):
            self.take()
            return [Field(key.text, self.message(nxt), key.line)]
        if self.is_punct(nxt, "["):
            return [Field(key.text, v, key.line) for v in self.list(self.take())]
        return [Field(key.text, self.value(key), key.line)]

    def value(self, key: _Token) -> Scalar:
        tok = self.peek()
        # `key:` followed by the next field's name (`other:` / `other {`) means the value is missing.
        next_is_key = tok is not None and tok.kind == "ident" and self.is_punct(self.peek(1), ":{<")
        if tok is None or tok.kind not in ("string", "number", "ident") or next_is_key:
            raise self.error(key.line, f"missing value after '{key.text}:'")
        return _scalar(self.take())

    def list(self, opener: _Token) -> list:
        values: list = []
        while True:
            tok = self.peek()
            if tok is None:
                raise self.error(opener.line, "unbalanced bracket: '[' opened here is never closed")
            if self.is_punct(tok, "]"):
                self.take()
                return values
            if self.is_punct(tok, ","):
                self.take()
                continue
            if self.is_punct(tok, "{<"):
                self.take()
                values.append(self.message(tok))
            elif tok.kind in ("string", "number", "ident"):
                values.append(_scalar(self.take()))
            else:
                raise self.error(tok.line, f"unexpected {tok.shown()} in a list")


def parse_text(text: str, path: str = "<prototxt>") -> Message:
    """Protobuf text format -> Message. Raises UserError("PATH:LINE: reason") on malformed text."""
    return _Parser(tokenize(text, path), path).message(None)


# ---------------------------------------------------------------------------------------------------------------
# The Caffe net as written (no shapes yet): what the Netscope adapter reads too


@dataclass(frozen=True)
class CaffeLayer:
    name: str
    type: str  # V2 type name ("Convolution"); V1 enums (CONVOLUTION) are mapped
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    params: Message  # the whole `layer { }` message, every *_param block raw
    line: int


@dataclass(frozen=True)
class CaffeNet:
    name: str
    path: str
    inputs: tuple[tuple[str, Shape], ...]  # header `input:` blobs with their shapes
    layers: tuple[CaffeLayer, ...]  # every layer in file order, whatever its phase
    document: Message  # the parsed file, for readers with other rules (Netscope)


# Caffe V1 `layers { type: CONVOLUTION }` enum names -> V2 type strings.
_V1_TYPES = {"CONVOLUTION": "Convolution", "POOLING": "Pooling", "INNER_PRODUCT": "InnerProduct", "RELU": "ReLU",
             "SIGMOID": "Sigmoid", "TANH": "TanH", "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss",
             "DROPOUT": "Dropout", "CONCAT": "Concat", "ELTWISE": "Eltwise", "DATA": "Data", "LRN": "LRN",
             "SPLIT": "Split", "FLATTEN": "Flatten", "ACCURACY": "Accuracy", "DECONVOLUTION": "Deconvolution",
             "POWER": "Power", "SILENCE": "Silence", "MEMORY_DATA": "MemoryData", "DUMMY_DATA": "DummyData",
             "IMAGE_DATA": "ImageData", "HDF5_DATA": "HDF5Data", "WINDOW_DATA": "WindowData", "BNLL": "BNLL"}


class _Bad(Exception):
    """A Caffe-level problem in one layer; the builder adds path, line and layer."""

    def __init__(self, reason: str, line: Optional[int] = None):
        super().__init__(reason)
        self.line = line


def _int(m: Message, key: str, default: Optional[int] = None) -> int:
    f = m.field(key)
    if f is None:
        if default is None:
            raise _Bad(f"missing {key}")
        return default
    if not isinstance(f.value, int):
        raise _Bad(f"{key} must be an integer, got {f.value!r}", f.line)
    return f.value


def _ints(m: Message, key: str) -> list[int]:
    values = m.all(key)
    for v in values:
        if not isinstance(v, int):
            raise _Bad(f"{key} must be an integer, got {v!r}", m.field(key).line)
    return values


def _bool(m: Message, key: str, default: bool) -> bool:
    v = m.get(key)
    if v is None:
        return default
    if isinstance(v, Ident) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise _Bad(f"{key} must be true or false, got {v!r}", m.field(key).line)


def _enum(m: Message, key: str, default: str, numbers: dict[int, str]) -> str:
    v = m.get(key)
    if v is None:
        return default
    if isinstance(v, int) and v in numbers:
        return numbers[v]
    if isinstance(v, str):
        return v.upper()
    raise _Bad(f"bad {key} {v!r}", m.field(key).line)


def _strings(m: Message, key: str) -> tuple[str, ...]:
    values = m.all(key)
    if any(isinstance(v, Message) for v in values):
        raise _Bad(f"{key} must be a blob name", m.field(key).line)
    return tuple(str(v) for v in values)


def _layer_of(msg: Message, index: int, v1: bool) -> CaffeLayer:
    type_ = msg.get("type")
    if type_ is None or isinstance(type_, Message):
        raise _Bad("layer has no type")
    type_ = _V1_TYPES.get(str(type_).upper(), str(type_)) if v1 and isinstance(type_, Ident) else str(type_)
    name = msg.get("name")
    if isinstance(name, Message):
        raise _Bad("a layer name must be a string", msg.field("name").line)
    return CaffeLayer(str(name) if name is not None else f"{type_.lower()}{index}", type_,
                      _strings(msg, "bottom"), _strings(msg, "top"), msg, msg.line)


def _header_inputs(doc: Message) -> tuple[tuple[str, Shape], ...]:
    """`input: "data"` with `input_shape { dim: .. }` per input, or `input_dim` x4 per input (old form)."""
    names = [str(v) for v in doc.all("input")]
    if not names:
        return ()
    shape_msgs = [m for m in doc.all("input_shape") if isinstance(m, Message)]
    if shape_msgs:
        shapes = [tuple(_ints(m, "dim")) for m in shape_msgs]
    else:
        dims = _ints(doc, "input_dim")
        shapes = [tuple(dims[i:i + 4]) for i in range(0, len(dims), 4)]
    if len(shapes) != len(names) or any(not s or min(s) <= 0 for s in shapes):
        raise _Bad(f"{len(names)} input(s) {names} need one positive shape each (input_shape {{ dim: .. }} or "
                   f"4 input_dim per input), found {[list(s) for s in shapes]}", doc.field("input").line)
    return tuple(zip(names, shapes))


def net_from_document(doc: Message, path: str) -> CaffeNet:
    try:
        inputs = _header_inputs(doc)
    except _Bad as exc:
        raise UserError(f"{path}:{exc.line or 1}: {exc}") from None
    layers: list[CaffeLayer] = []
    for f in (f for f in doc.fields if f.key in ("layer", "layers")):
        try:
            if not isinstance(f.value, Message):
                raise _Bad(f"{f.key} must be a {{ }} block")
            layers.append(_layer_of(f.value, len(layers), v1=f.key == "layers"))
        except _Bad as exc:
            raise UserError(f"{path}:{exc.line or f.line}: {exc}") from None
    name = doc.get("name")
    return CaffeNet(str(name) if name is not None else Path(path).stem, path, inputs, tuple(layers), doc)


def read_net(path: Union[str, Path]) -> CaffeNet:
    """Read and parse a prototxt file (no shape inference): what the Netscope adapter starts from."""
    path_text = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise UserError(f"{path_text}:1: larger than {MAX_FILE_BYTES // 2 ** 20} MB; not a network "
                            "description this reader accepts")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"no such prototxt file {path_text}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path_text}: cannot read the prototxt ({type(exc).__name__}: {exc})") from None
    return net_from_document(parse_text(text, path_text), path_text)


def in_phase(layer: CaffeLayer, phase: str) -> bool:
    """Caffe's NetState rule filtering (phase only): include rules must match if any, exclude rules must not."""
    def hits(rule) -> bool:
        value = rule.get("phase") if isinstance(rule, Message) else None
        return value is None or {0: "TRAIN", 1: "TEST"}.get(value, str(value).upper()) == phase

    includes, excludes = layer.params.all("include"), layer.params.all("exclude")
    return (not includes or any(hits(r) for r in includes)) and not any(hits(r) for r in excludes)


# ---------------------------------------------------------------------------------------------------------------
# Shape inference: one handler per layer type

Handler = Callable[[CaffeLayer, tuple[Shape, ...]], tuple[Optional[Layer], tuple[Shape, ...]]]
_HANDLERS: dict[str, Handler] = {}
_KINDS: dict[str, Union[str, Callable[[Message], str]]] = {}

# Not IR kinds: what kind_of() says for layers that yield no IR layer.
INPUT_KIND, NOOP_KIND = "input", "noop"


def handles(*types: str, kind: Union[str, Callable[[Message], str]]):
    def wrap(fn: Handler) -> Handler:
        for t in types:
            _HANDLERS[t], _KINDS[t] = fn, kind
        return fn
    return wrap


def kind_of(layer: CaffeLayer) -> str:
    """The IR kind a Caffe layer becomes (input / noop for layers that yield no IR layer)."""
    kind = _KINDS.get(layer.type, UNKNOWN)
    return kind(layer.params) if callable(kind) else kind


def _make(cl: CaffeLayer, ins: tuple[Shape, ...], kind: str, out: Shape, **kw) -> Layer:
    return Layer(name=cl.name, kind=kind, input_shapes=ins, output_shape=out, **{"op": cl.type, **kw})


def _needs(ins: tuple[Shape, ...], count: int = 1, rank: int = 2) -> Shape:
    if len(ins) < count:
        raise _Bad(f"needs {count} bottom blob(s), has {len(ins)}")
    if len(ins[0]) < rank:
        raise _Bad(f"needs an input with at least {rank} dimensions, got {ins[0]}")
    return ins[0]


def _spatial(p: Message, key: str, n: int, default: Optional[int], hw: Optional[tuple[str, str]]) -> tuple[int, ...]:
    """A per-spatial-dimension setting: `key` repeated once or per dimension, or its _h/_w pair (2-D only)."""
    if hw and (hw[0] in p or hw[1] in p):
        if n != 2:
            raise _Bad(f"{hw[0]}/{hw[1]} need a 2-D input")
        return _int(p, hw[0], default), _int(p, hw[1], default)
    values = _ints(p, key)
    if not values:
        if default is None:
            raise _Bad(f"missing {key}" + (f" (or {hw[0]} and {hw[1]})" if hw else ""))
        return (default,) * n
    if len(values) in (1, n):
        return tuple(values) * (n // len(values))
    raise _Bad(f"{key} has {len(values)} values for {n} spatial dimensions")


def _at_least(key: str, values: "tuple[int, ...] | list[int] | int", minimum: int, p: Message) -> None:
    """Caffe CHECKs these at net set-up (conv_layer / base_conv_layer / pooling_layer LayerSetUp): a zero stride
    divides by zero, a negative size gives negative counts."""
    for v in (values if isinstance(values, (tuple, list)) else (values,)):
        if v < minimum:
            f = p.field(key)
            raise _Bad(f"{key} must be {'positive' if minimum == 1 else f'at least {minimum}'}, got {v}",
                       f.line if f else None)


def _axis(key: str, axis: int, rank: int, p: Message, allow_end: bool = False) -> int:
    """A blob axis (negative counts from the end) within the rank."""
    top = rank + 1 if allow_end else rank
    if not -rank <= axis < top:
        f = p.field(key)
        raise _Bad(f"{key} {axis} is outside the input's {rank} axes", f.line if f else None)
    return axis + rank if axis < 0 else axis


def _positive(out: tuple[int, ...], x: Shape) -> tuple[int, ...]:
    if min(out) < 1:
        raise _Bad(f"output size {out} is not positive for input {x}")
    return out


@handles("Convolution", kind=CONV)
def _convolution(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins, rank=3)
    p, n = cl.params.sub("convolution_param"), len(x) - 2
    c_out, groups, bias = _int(p, "num_output"), _int(p, "group", 1), _bool(p, "bias_term", True)
    kernel = _spatial(p, "kernel_size", n, None, ("kernel_h", "kernel_w"))
    stride = _spatial(p, "stride", n, 1, ("stride_h", "stride_w"))
    pad = _spatial(p, "pad", n, 0, ("pad_h", "pad_w"))
    dilation = _spatial(p, "dilation", n, 1, None)
    _at_least("num_output", c_out, 1, p)
    _at_least("kernel_size", kernel, 1, p)
    _at_least("stride", stride, 1, p)
    _at_least("pad", pad, 0, p)
    _at_least("dilation", dilation, 1, p)
    if groups < 1 or x[1] % groups or c_out % groups:
        raise _Bad(f"group {groups} must divide the input channels {x[1]} and num_output {c_out}")
    # caffe/src/caffe/layers/conv_layer.cpp compute_output_shape: integer division rounds down.
    out = _positive(tuple((i + 2 * q - (d * (k - 1) + 1)) // s + 1
                          for i, k, s, q, d in zip(x[2:], kernel, stride, pad, dilation)), x)
    weights = c_out * (x[1] // groups) * math.prod(kernel)
    return _make(cl, ins, CONV, (x[0], c_out) + out, kernel=kernel, stride=stride, padding=pad, dilation=dilation,
                 groups=groups, bias=bias, params=weights + (c_out if bias else 0)), ((x[0], c_out) + out,)


_POOL_METHODS = {0: "MAX", 1: "AVE", 2: "STOCHASTIC"}


def _pool_kind(m: Message) -> str:
    return {"MAX": POOL_MAX, "AVE": POOL_AVG}.get(_enum(m.sub("pooling_param"), "pool", "MAX", _POOL_METHODS),
                                                  UNKNOWN)


def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool, padded: bool) -> int:
    """caffe/src/caffe/layers/pooling_layer.cpp Reshape: ceil by default, and with any padding the last window
    must start inside the image (else it is dropped)."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if padded and (out - 1) * stride >= size + pad:
        out -= 1
    return out


@handles("Pooling", kind=_pool_kind)
def _pooling(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins, rank=3)
    p, n = cl.params.sub("pooling_param"), len(x) - 2
    kind = _pool_kind(cl.params)
    if _bool(p, "global_pooling", False):  # Caffe: kernel = the whole input, stride 1, no padding
        kernel, stride, pad, out, attrs = x[2:], (1,) * n, (0,) * n, (1,) * n, (("global", True),)
    else:
        kernel = _spatial(p, "kernel_size", n, None, ("kernel_h", "kernel_w"))
        stride = _spatial(p, "stride", n, 1, ("stride_h", "stride_w"))
        pad = _spatial(p, "pad", n, 0, ("pad_h", "pad_w"))
        ceil = _enum(p, "round_mode", "CEIL", {0: "CEIL", 1: "FLOOR"}) == "CEIL"
        _at_least("kernel_size", kernel, 1, p)
        _at_least("stride", stride, 1, p)
        _at_least("pad", pad, 0, p)
        if any(q >= k for q, k in zip(pad, kernel)):  # pooling_layer.cpp: CHECK_LT(pad_h_, kernel_h_)
            raise _Bad(f"pad {pad} must be smaller than the kernel {kernel}")
        out = _positive(tuple(pooled_size(i, k, s, q, ceil, any(pad))
                              for i, k, s, q in zip(x[2:], kernel, stride, pad)), x)
        attrs = ()
    shape = x[:2] + tuple(out)
    return _make(cl, ins, kind, shape, kernel=tuple(kernel), stride=stride, padding=pad, attrs=attrs), (shape,)


@handles("InnerProduct", kind=LINEAR)
def _inner_product(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins)
    p = cl.params.sub("inner_product_param")
    n_out, bias, axis = _int(p, "num_output"), _bool(p, "bias_term", True), _int(p, "axis", 1)
    _at_least("num_output", n_out, 1, p)
    axis = _axis("axis", axis, len(x), p)
    k = math.prod(x[axis:])  # Caffe flattens everything from `axis` on
    flat, out = x[:axis] + (k,), x[:axis] + (n_out,)
    return _make(cl, (flat,) + ins[1:], LINEAR, out, bias=bias, params=k * n_out + (n_out if bias else 0)), (out,)


_ACTIVATIONS = {"ReLU": "relu", "Sigmoid": "sigmoid", "TanH": "tanh", "ELU": "elu", "PReLU": "prelu",
                "ReLU6": "relu6", "BNLL": "softplus"}


@handles(*_ACTIVATIONS, kind=ACT)
def _activation(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins, rank=1)
    op = _ACTIVATIONS[cl.type]
    if cl.type == "ReLU" and cl.params.sub("relu_param").get("negative_slope", 0) != 0:
        op = "leaky_relu"
    params = 0
    if cl.type == "PReLU":
        shared = _bool(cl.params.sub("prelu_param"), "channel_shared", False)
        if not shared and len(x) < 2:
            raise _Bad(f"a per-channel PReLU needs an input with a channel axis, got {x}")
        params = 1 if shared else x[1]
    return _make(cl, ins, ACT, x, op=op, params=params), (x,) * max(len(cl.tops), 1)


@handles("BatchNorm", kind=BN)
def _batch_norm(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins)
    return _make(cl, ins, BN, x, params=0, attrs=(("caffe_blobs", 2 * x[1] + 1),)), (x,)


@handles("Scale", kind=MUL)
def _scale(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins)
    p = cl.params.sub("scale_param")
    bias = _bool(p, "bias_term", False)
    if len(ins) > 1:  # the scale factors come from the second bottom; only the bias is a parameter
        per_channel, scale_params = math.prod(ins[1]), 0
    else:
        axis, num_axes = _axis("axis", _int(p, "axis", 1), len(x), p), _int(p, "num_axes", 1)
        if num_axes < -1 or axis + num_axes > len(x):
            raise _Bad(f"num_axes {num_axes} from axis {axis} goes beyond the input's {len(x)} axes")
        per_channel = math.prod(x[axis:] if num_axes == -1 else x[axis:axis + num_axes])
        scale_params = per_channel
    return _make(cl, ins, MUL, x, bias=bias, params=scale_params + (per_channel if bias else 0)), (x,)


def _eltwise_kind(m: Message) -> str:
    op = _enum(m.sub("eltwise_param"), "operation", "SUM", {0: "PROD", 1: "SUM", 2: "MAX"})
    return {"SUM": ADD, "PROD": MUL}.get(op, UNKNOWN)  # the IR has no element-wise max kind


@handles("Eltwise", kind=_eltwise_kind)
def _eltwise(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins, count=2)
    if any(s != x for s in ins):
        raise _Bad(f"inputs must have equal shapes, got {list(ins)}")
    return _make(cl, ins, _eltwise_kind(cl.params), x), (x,)


@handles("Concat", kind=CONCAT)
def _concat(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins)
    p = cl.params.sub("concat_param")
    axis = _axis("axis", _int(p, "axis", _int(p, "concat_dim", 1)), len(x), p)
    if any(len(s) != len(x) or s[:axis] + s[axis + 1:] != x[:axis] + x[axis + 1:] for s in ins):
        raise _Bad(f"inputs differ outside the concat axis {axis}: {list(ins)}")
    out = x[:axis] + (sum(s[axis] for s in ins),) + x[axis + 1:]
    return _make(cl, ins, CONCAT, out), (out,)


@handles("Softmax", "SoftmaxWithLoss", kind=SOFTMAX)
def _softmax(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins)
    loss = cl.type == "SoftmaxWithLoss"  # softmax over the scores, then a scalar loss top
    return _make(cl, ins, SOFTMAX, x), (((),) if loss else (x,)) * max(len(cl.tops), 1)


@handles("Dropout", "Split", kind=NOOP_KIND)
def _pass_through(cl: CaffeLayer, ins: tuple[Shape, ...]):
    return None, (_needs(ins, rank=1),) * len(cl.tops)


@handles("Silence", kind=NOOP_KIND)
def _silence(cl: CaffeLayer, ins: tuple[Shape, ...]):
    return None, ()


@handles("Flatten", kind=NOOP_KIND)
def _flatten(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins)
    p = cl.params.sub("flatten_param")
    start, end = _axis("axis", _int(p, "axis", 1), len(x), p), _axis("end_axis", _int(p, "end_axis", -1), len(x), p)
    if start > end:
        raise _Bad(f"axis {start} is after end_axis {end}")
    return None, (x[:start] + (math.prod(x[start:end + 1]),) + x[end + 1:],)


@handles("Reshape", kind=NOOP_KIND)
def _reshape(cl: CaffeLayer, ins: tuple[Shape, ...]):
    x = _needs(ins, rank=1)
    p = cl.params.sub("reshape_param")
    dims = list(_ints(p.sub("shape"), "dim"))
    if dims.count(-1) > 1 or not dims or min(dims) < -1:
        raise _Bad(f"bad reshape dims {dims}: positive sizes, 0 (copy the input's) and at most one -1")
    if any(d == 0 and i >= len(x) for i, d in enumerate(dims)):
        raise _Bad(f"reshape dim 0 at position {dims.index(0)} copies an axis the input {x} does not have")
    dims = [x[i] if d == 0 else d for i, d in enumerate(dims)]  # 0 copies the input dimension
    if -1 in dims:
        known = -math.prod(dims)
        if known <= 0 or math.prod(x) % known:
            raise _Bad(f"cannot reshape {x} to {tuple(dims)}")
        dims[dims.index(-1)] = math.prod(x) // known
    if math.prod(dims) != math.prod(x):
        raise _Bad(f"cannot reshape {x} to {tuple(dims)}")
    return None, (tuple(dims),)


_DATA_TYPES = ("Input", "DummyData", "MemoryData", "Data", "ImageData", "HDF5Data", "WindowData", "AnnotatedData")


def _shape_of(m: Message) -> Shape:
    return tuple(_ints(m, "dim")) if isinstance(m, Message) else ()


def _data_shapes(cl: CaffeLayer) -> list[Shape]:
    m = cl.params
    if "input_param" in m:
        return [_shape_of(s) for s in m.sub("input_param").all("shape")]
    if cl.type == "DummyData":
        p = m.sub("dummy_data_param")
        legacy = zip(*(_ints(p, k) for k in ("num", "channels", "height", "width")))
        return [_shape_of(s) for s in p.all("shape")] or [tuple(dims) for dims in legacy]
    if cl.type == "MemoryData":
        p = m.sub("memory_data_param")
        return [tuple(_int(p, k) for k in ("batch_size", "channels", "height", "width"))]
    return []


@handles(*_DATA_TYPES, kind=INPUT_KIND)
def _data(cl: CaffeLayer, ins: tuple[Shape, ...]):
    shapes = _data_shapes(cl)
    if not shapes:
        raise _Bad("the prototxt does not give this data layer's shape (Caffe reads it from the data source); "
                   "use an Input layer or input + input_shape")
    if any(not s or min(s) <= 0 for s in shapes):
        raise _Bad(f"bad input shape {[list(s) for s in shapes]}")
    if len(shapes) == len(cl.tops):
        return None, tuple(shapes)
    if len(shapes) != 1:
        raise _Bad(f"{len(shapes)} shapes for {len(cl.tops)} tops")
    # One shape: Input/DummyData give it to every top; a Data-style layer's further tops are labels (N,).
    label = shapes[0] if cl.type in ("Input", "DummyData") else shapes[0][:1]
    return None, (shapes[0],) + (label,) * (len(cl.tops) - 1)


def _unknown(cl: CaffeLayer, ins: tuple[Shape, ...]):
    if not ins:
        raise _Bad("a layer type this reader does not know, with no bottom: its output shape cannot be inferred")
    layer = _make(cl, ins, UNKNOWN, ins[0], attrs=(("shape_assumed", "output shape = first input's shape"),))
    return layer, (ins[0],) * len(cl.tops)


# ---------------------------------------------------------------------------------------------------------------
# Net -> Model


def build_model(net: CaffeNet, name: Optional[str] = None, phase: str = "TEST") -> Model:
    blobs: dict[str, Shape] = dict(net.inputs)
    input_shape: Optional[Shape] = net.inputs[0][1] if net.inputs else None
    layers: list[Layer] = []
    for cl in net.layers:
        if not in_phase(cl, phase):
            continue
        try:
            missing = [b for b in cl.bottoms if b not in blobs]
            if missing:
                raise _Bad(f"bottom {missing[0]!r} is not produced by any earlier layer or input")
            layer, outs = _HANDLERS.get(cl.type, _unknown)(cl, tuple(blobs[b] for b in cl.bottoms))
        except _Bad as exc:
            raise UserError(f"{net.path}:{exc.line or cl.line}: layer {cl.name!r} ({cl.type}): {exc}") from None
        blobs.update(zip(cl.tops, outs))  # in place (bottom == top) simply rebinds the blob
        if input_shape is None and cl.type in _DATA_TYPES and outs:
            input_shape = outs[0]
        if layer is not None:
            layers.append(layer)
    if input_shape is None:
        raise UserError(f"{net.path}:1: no input shape: declare input + input_shape (or input_dim), or an Input "
                        "layer")
    return Model(name=name or Path(net.path).stem, framework="caffe", input_shape=input_shape, layers=tuple(layers))


def load(path: Union[str, Path], name: Optional[str] = None) -> Model:
    """Read a prototxt and infer every blob's shape as Caffe does. Raises UserError("PATH:LINE: reason")."""
    return build_model(read_net(path), name)
