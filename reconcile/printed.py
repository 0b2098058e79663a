"""Numbers as papers print them: one grammar for a printed value and its unit, shared by `reconcile which`, its
`--table` form and the report's published numbers.

    VALUE  := [LABEL ("=" | ":")] NUMBER [SCALE] [UNIT TEXT]        ("Total Parameters=110M", "4.1 GFLOPs")
    NUMBER := 3.8 | 2,307,720 | 3.8e9 | 3.64E+03 | 1.8x10^9 | 3.8 × 10^25 | 10^22
    SCALE  := k M G B T glued to the number ("300M"), or a word (thousand, million, billion, trillion, bn, ...)
    UNIT   := words as a column header prints them, scale in brackets included: "GFLOPs", "MAdds (M)",
              "FLOPs (B)", "params (M)", "Parameters (billions)", "#params", "n_params", "Non-Embedding Params",
              "Total train compute (PF-days)", "PFLOPs", "TFLOPs", "GMACs", "MFLOPs", "Million Mult-Adds",
              "multiply-adds", "(x10^9)"

`--unit TEXT` gives the unit of a bare number (the column header it sits under). The unit's words set what is
counted: multiply-accumulate words (MACs, MAdds, Mult-Adds, multiply-adds) one op per multiply-accumulate, FLOP
words two (papers often print multiply-accumulates as "FLOPs": a preference, never a filter); parameter words the
quantity `params`, with a family when the header names one (non-embedding, active, trainable, encoder, decoder,
total); training words (train, training, PF-days) the quantity `train-compute`. PF-days are petaflop/s-days:
1e15 FLOP/s x 86,400 s = 8.64e19 FLOP (Kaplan et al. 2020 §1.3; Brown et al. 2020 Table D.1 caption).

Precision: the last printed digit sets the tolerance of "equal at the printed precision" (`half_unit`);
trailing zeros of an integer are not significant ("300M" is known to the hundred million, "4.20M" to the ten
thousand). `attribution_half_unit` is the same with at least two significant digits: a tool is said to print the
number only when it agrees that far ("300M" is not what a tool printing 327M printed).

Commas: groups of three digits after a comma are thousands separators (2,307,720); any other comma ("4,1 GFLOPs")
is refused with a message, never read as 41. A single group ("1,234") is read as thousands, with a note saying so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Optional

from conventions import llm

from .errors import UserError

MACS, FLOPS, PARAMETERS = "multiply-accumulates", "FLOPs", "parameters"
COMPUTE, PARAMS, TRAIN_COMPUTE = "compute", "params", "train-compute"
PF_DAY_FLOPS = Decimal("8.64e19")  # 1e15 FLOP/s for 86,400 s

_SCALE_WORDS = {"k": 3, "thousand": 3, "thousands": 3, "m": 6, "million": 6, "millions": 6, "mil": 6, "mn": 6,
                "g": 9, "b": 9, "billion": 9, "billions": 9, "bn": 9, "t": 12, "trillion": 12, "trillions": 12}
_GLUED_SCALE = {"k": 3, "K": 3, "M": 6, "m": 6, "G": 9, "B": 9, "T": 12}
_PREFIXES = {"k": 3, "m": 6, "g": 9, "b": 9, "t": 12, "p": 15, "e": 18, "z": 21}
# unit words (lower case, "#" and trailing "." stripped); each may carry a prefix: GFLOPs, MMACs, Mparams
_COMPUTE_WORDS = {MACS: r"macs?|maccs?|madds?|mult-?adds?|multadds?|multiply-?adds?|multiply-?accumulates?|"
                        r"multiply-?accumulations?|fmas?",
                  FLOPS: r"flops?|floating-point-operations?"}
_PARAM_WORDS = r"params?|parameters?|n_?params|num_?params|nparams|param_?count"
_FILLER = {"number", "of", "no", "num", "count", "size", "model", "the", "in", "compute", "cost", "operations",
           "ops", "op", "per", "image", "sample", "inference", "forward", "pass", "approx", "approximately", "~", "≈",
           "#", "total", "all", "complexity", "computation", "computational", "budget", "estimated"}
_FAMILY_WORDS = {"non-embedding": llm.F_NON_EMBEDDING, "trainable": llm.F_ALL, "total": llm.F_ALL, "all": llm.F_ALL,
                 "active": llm.F_ACTIVE, "activated": llm.F_ACTIVE, "encoder": llm.F_ENCODER,
                 "decoder": llm.F_DECODER}
_TRAIN_WORDS = {"train", "training", "pretraining", "pre-training", "pretrain"}
# several words that name one thing, joined before the words are read
_PHRASES = ((r"non[-\s]?embed(?:ding)?s?", "non-embedding"),
            (r"peta-?flop(?:/s|s)?[-\s]*days?|pfs?(?:/s)?[-\s]*days?", "pf-days"),
            (r"mult(?:iply)?[-\s]+(?:adds?|accumulat(?:es?|ions?))", "mult-adds"),
            (r"floating[-\s]point\s+operations?", "flops"))
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")


@dataclass(frozen=True)
class Printed:
    """A number as someone printed it: its value in base units (FLOPs, multiply-accumulates or parameters), the
    half-width of its last significant digit, and what its unit says."""

    text: str
    value: Decimal
    half_unit: Decimal  # |candidate - value| <= half_unit: the candidate rounds to the printed digits
    unit: str = ""  # MACS, FLOPS, PARAMETERS or "" (no unit word)
    unit_text: str = ""  # the unit as printed ("GFLOPs", "Mult-Adds", "params (M)")
    scale: int = 0  # the power of ten the number was printed at (9 for "4.1G"), for writing values alike
    decimals: int = -1  # digits printed after the decimal point (-1: none, an integer mantissa)
    quantity: str = ""  # what the unit says is counted: COMPUTE, PARAMS, TRAIN_COMPUTE or "" (it does not say)
    family: str = ""  # a parameter family the unit names (conventions.llm F_* key: "Non-Embedding Params")
    factor: Decimal = Decimal(1)  # base units per printed unit beyond the scale (PF-days: 8.64e19)
    attribution_half_unit: Decimal = Decimal(0)  # half_unit at two significant digits or more
    notes: tuple[str, ...] = field(default=())  # how an ambiguous form was read (a single thousands comma)
    suffix: str = ""  # the scale letter as printed ("B" for "13.0B" or "billion", "G" for "GFLOPs")

    def __str__(self) -> str:
        return self.text

    @property
    def per_day(self) -> bool:
        return self.factor == PF_DAY_FLOPS

    def show(self, value: float) -> str:
        """`value` in the printed unit with one more decimal than printed: 4,111,512,576 for "4.1G" -> "4.11 G";
        3.1429e23 FLOPs for "3.64E+03 PF-days" -> "3.638e+03 PF-days"."""
        if self.per_day:
            days = value / float(PF_DAY_FLOPS)
            return (f"{days:.{max(self.decimals, 0) + 1}e} PF-days" if self.scale else
                    f"{days:,.{self.decimals + 1 if self.decimals >= 0 else 1}f} PF-days")
        suffix = {3: " k", 6: " M", 9: " G", 12: " T", 15: " P"}.get(self.scale)
        if suffix is not None and self.suffix:
            suffix = f" {self.suffix}"
        if suffix is None:
            return _n(value) if not self.scale else f"{value:.{max(self.decimals, 0) + 1}e}"
        return f"{value / 10 ** self.scale:,.{self.decimals + 1 if self.decimals >= 0 else 0}f}{suffix}"


def _n(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.6g}"


@dataclass(frozen=True)
class Unit:
    """What a unit text says: the kind of count, its power of ten, a factor (PF-days), quantity and family."""

    text: str = ""
    kind: str = ""  # MACS, FLOPS, PARAMETERS or ""
    scale: int = 0
    scaled: bool = False  # the text carries a scale ("(M)", "GFLOPs", "billion")
    factor: Decimal = Decimal(1)
    quantity: str = ""
    family: str = ""
    notes: tuple[str, ...] = ()
    letter: str = ""  # the scale as a letter: "B" for billion or (B), "G" for GFLOPs


_UNIT_HELP = ("expected a unit such as FLOPs, GFLOPs, MACs, MAdds, Mult-Adds, multiply-adds, params, #params, "
              "n_params, Non-Embedding Params, PF-days, or a column header such as 'FLOPs (B)' or 'params (M)'")


def _word_unit(word: str) -> Optional[tuple[str, int]]:
    """'gflops' -> (FLOPS, 9); 'madds' -> (MACS, 0); 'mparams' -> (PARAMETERS, 6); None if not a unit word."""
    for prefix_len in (0, 1):
        prefix, rest = word[:prefix_len], word[prefix_len:]
        if prefix and prefix not in _PREFIXES:
            continue
        power = _PREFIXES.get(prefix, 0)
        for kind, pattern in _COMPUTE_WORDS.items():
            if re.fullmatch(pattern, rest):
                return kind, power
        if re.fullmatch(_PARAM_WORDS, rest) and prefix in ("", "k", "m", "b", "g", "t"):
            return PARAMETERS, power
    return None


def parse_unit(text: str, value_text: str = "") -> Unit:
    """A unit as printed after a number or as a column header: 'GFLOPs', 'FLOPs (B)', 'params (M)', 'Parameters
    (billions)', '#params', 'Non-Embedding Params', 'Total train compute (PF-days)', '(x10^9)' -> Unit."""
    where = f"{value_text!r}" if value_text else f"unit {text!r}"
    lowered = re.sub(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+)", lambda m: "10^" + m.group(1), text.strip())
    lowered = lowered.translate(_SUPERSCRIPTS).lower()
    for pattern, joined in _PHRASES:
        lowered = re.sub(pattern, f" {joined} ", lowered)
    if re.search(r"flops?/s(?:ec)?\b", lowered):
        raise UserError(f"{where}: FLOP/s is a rate (operations per second), not a count")
    lowered = re.sub(r"(?:x|×|\*)\s*10\s*\^\s*([+-]?\d+)", r" e\1 ", lowered)  # (x10^9), (× 10^9)
    lowered = re.sub(r"(?<![\w.])10\s*\^\s*([+-]?\d+)", r" e\1 ", lowered)  # (10^9)
    lowered = re.sub(r"(?<![\w.])1e([+-]?\d+)", r" e\1 ", lowered)  # (1e9)
    words = [w.strip("#.:;,") for w in re.split(r"[\s()\[\]{},;|]+", lowered)]
    words = [w for w in words if w and w != "#"]
    kind, scale, scaled, factor, quantity, family, letter = "", 0, False, Decimal(1), "", "", ""

    def set_scale(power: int, word: str) -> None:
        nonlocal scale, scaled, letter
        if scaled:
            raise UserError(f"cannot read {where}: two scales ({word!r} and another)")
        scale, scaled = power, True
        letter = {"thousand": "k", "thousands": "k", "k": "k", "m": "M", "million": "M", "millions": "M", "mil": "M",
                  "mn": "M", "b": "B", "billion": "B", "billions": "B", "bn": "B", "g": "G", "t": "T",
                  "trillion": "T", "trillions": "T"}.get(word, word[:1].upper() if word[:1].isalpha() else "")

    notes: list[str] = []

    def set_kind(new: str, word: str) -> None:
        nonlocal kind
        if {kind, new} == {FLOPS, MACS}:  # "FLOPs (multiply-adds)": the words that define the unit decide
            if kind != MACS:
                notes.append(f"{text.strip()!r} names multiply-adds: read as multiply-accumulates")
            kind = MACS
            return
        if kind and kind != new:
            raise UserError(f"cannot read {where}: two units ({kind} and {new}, from {word!r})")
        kind = new

    for word in words:
        if word in _SCALE_WORDS:
            set_scale(_SCALE_WORDS[word], word)
        elif re.fullmatch(r"e[+-]?\d+", word):
            set_scale(int(word[1:]), word)
        elif word == "pf-days":
            set_kind(FLOPS, word)
            factor, quantity = PF_DAY_FLOPS, TRAIN_COMPUTE
        elif word in _TRAIN_WORDS:
            quantity = TRAIN_COMPUTE
        elif word in _FAMILY_WORDS:
            family = family if word in ("total", "all") and family else _FAMILY_WORDS[word]
        elif (found := _word_unit(word)) is not None:
            set_kind(found[0], word)
            if found[1]:
                set_scale(found[1], word)
        elif word in _FILLER:
            continue
        else:
            raise UserError(f"unknown unit {word!r} in {where}: {_UNIT_HELP}")
    if kind == PARAMETERS:
        if quantity == TRAIN_COMPUTE:
            raise UserError(f"cannot read {where}: parameters are not training compute")
        quantity = PARAMS
    elif kind and not quantity:
        quantity = COMPUTE
    if family and kind != PARAMETERS:
        family = ""  # "total train compute": 'total' says nothing about a parameter family
    return Unit(text.strip(), kind, scale, scaled, factor, quantity, family, tuple(notes), letter)


_LABELLED = re.compile(r"^(?P<label>[^\d=:~≈][^=:]*?)\s*[=:]\s*(?P<rest>[~≈]?\s*[\d.].*)$")
_NUMBER = re.compile(r"(?P<mantissa>[\d.,]*\d[\d.,]*|\.\d+)(?:\s*e\s*(?P<exp>[+-]?\d+))?", re.I)


def _mantissa(token: str, text: str) -> tuple[str, tuple[str, ...]]:
    """'2,307,720' -> '2307720'; '4,1' refused (a decimal comma is never read silently)."""
    notes: tuple[str, ...] = ()
    if token.count(".") > 1:
        raise UserError(f"cannot read {text!r} as a number: more than one decimal point")
    if "," in token:
        if not re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", token):
            guess = token.replace(",", ".") if token.count(",") == 1 and "." not in token else ""
            raise UserError(f"cannot read {text!r}: the comma in {token!r} is not a thousands separator (groups of "
                            f"three digits)" + (f"; a decimal comma? write {guess}" if guess else ""))
        if token.count(",") == 1 and "." not in token:
            notes = (f"{token!r} read as {token.replace(',', '')} (the comma as a thousands separator); a decimal "
                     f"comma would be {token.replace(',', '.')}: write it with a point",)
        token = token.replace(",", "")
    return token, notes


def parse_value(text: str, unit: Optional[str] = None) -> Printed:
    """'3.8e9', '3.8x10^9', '300M', '4.1 GFLOPs', '300M MAdds', '3.8 billion FLOPs', '15300 Million Mult-Adds',
    '2,307,720', 'Total Parameters=110M', '25.6 Params (M)', '3.64E+03 PF-days' -> Printed. `unit`: the column
    header of a bare number ('FLOPs (B)'). Trailing zeros of an integer mantissa are not significant ('300M' is
    known to the hundred million), digits after a decimal point are ('4.20M')."""
    original = text.strip()
    cleaned = re.sub(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+)", lambda m: "10^" + m.group(1), original)  # 10²³: 10^23
    cleaned = cleaned.translate(_SUPERSCRIPTS).replace("_", "").replace("\u202f", "").replace("\u2009", "")
    label = ""
    labelled = _LABELLED.match(cleaned)
    if labelled and re.search(r"[a-z#]", labelled["label"], re.I):
        label, cleaned = labelled["label"], labelled["rest"]
    cleaned = re.sub(r"^[~≈]\s*", "", cleaned)
    cleaned = re.sub(r"\s*[x×*]\s*10\s*\^\s*", "e", cleaned)  # 1.8x10^9, 3.8 × 10^25
    cleaned = re.sub(r"^10\s*\^\s*(?=[+-]?\d)", "1e", cleaned)  # 10^22
    match = _NUMBER.match(cleaned)
    if not match:
        raise UserError(f"cannot read {original!r} as a number: expected e.g. 3.8e9, 300M, 4.1 GFLOPs or 2307720")
    mantissa, notes = _mantissa(match["mantissa"], original)
    exponent = int(match["exp"] or 0)
    rest = cleaned[match.end():]
    glued = re.match(r"^([kKMGBT])(?![A-Za-z])", rest)  # "300M", "4.1G"
    glued_scale = _GLUED_SCALE[glued.group(1)] if glued else 0
    if glued:
        rest = rest[1:]
    words = " ".join(part for part in (label, rest.strip()) if part)
    if unit is not None and words.strip():
        raise UserError(f"VALUE {original!r} has its own unit ({words.strip()!r}); --unit is for a bare number")
    parsed = parse_unit(unit if unit is not None else words, original if unit is None else "")
    if glued and parsed.scaled:
        raise UserError(f"cannot read {original!r}: two scales ({glued.group(1)} and {parsed.text!r})")
    scale = glued_scale or parsed.scale
    try:
        value = Decimal(mantissa).scaleb(exponent + scale) * parsed.factor
    except InvalidOperation:
        raise UserError(f"cannot read {original!r} as a number") from None
    if value <= 0:
        raise UserError(f"{original!r}: the number must be positive")
    if "." in mantissa:
        decimals = len(mantissa.split(".")[1])
        last_digit = -decimals
    else:
        decimals = -1
        last_digit = len(mantissa) - len(mantissa.rstrip("0")) if mantissa.strip("0") else 0
    digits = mantissa.replace(".", "").lstrip("0")
    significant = max(len(digits) - (len(mantissa) - len(mantissa.rstrip("0")) if "." not in mantissa else 0), 1)
    shift = exponent + scale
    half = Decimal(5).scaleb(last_digit + shift - 1) * parsed.factor
    tighter = Decimal(5).scaleb(last_digit - (2 - significant) + shift - 1) * parsed.factor if significant < 2 \
        else half
    shown = f"{original} [{parsed.text}]" if unit is not None and parsed.text else original
    letter = (glued.group(1).upper() if glued.group(1) != "k" else "k") if glued else parsed.letter
    return Printed(shown, value, half, parsed.kind, parsed.text, scale or exponent, decimals, parsed.quantity,
                   parsed.family, parsed.factor, tighter, notes + parsed.notes, letter)
