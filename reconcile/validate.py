"""The parsers every command and the Python API share at the edge: input shapes, batch and other counts, token
totals, tool versions, timeouts and memory caps. Each returns the checked value or raises a UserError of one line
naming the option and what it accepts, so bad input never reaches a job."""
from __future__ import annotations

import math
import numbers
import os
import re
from typing import Any, Optional, Sequence, Union

from .errors import UserError

MAX_INPUT_ELEMENTS = 2 ** 31  # 8 GB of float32: beyond it an input shape is a typo, not a model
MAX_DIMS = 16
MAX_TIMEOUT_S = 24 * 3600.0  # a job that needs longer than a day is a hang, whatever the model
MAX_TOKENS = 1e18  # training tokens: more than any corpus; beyond it a number is a typo
MIN_MEMORY = 2 ** 28  # 256 MiB: below it not even a small model's forward fits
SHAPE_EXAMPLE = "1,3,32,32 or 1x3x32x32"


# ------------------------------------------------------------------------------------------------ shapes
def check_shape(shape: tuple[int, ...], text: str) -> tuple[int, ...]:
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise UserError(f"input shape {text}: {math.prod(shape):,} elements, more than the {MAX_INPUT_ELEMENTS:,} "
                        "this harness accepts")
    return shape


def parse_shape(text: str, option: str = "input shape") -> tuple[int, ...]:
    """'1,3,32,32' or '1x3x32x32' (one separator throughout) -> (1, 3, 32, 32): positive integers, at most 16."""
    if not isinstance(text, str):
        raise UserError(f"{option} must be text like {SHAPE_EXAMPLE}, not {type(text).__name__}")
    cleaned = text.strip().replace("×", "x")
    separator = "x" if "x" in cleaned.lower() and "," not in cleaned else ","
    parts = re.split(r"[xX]", cleaned) if separator == "x" else cleaned.split(",")
    shape: tuple[int, ...] = ()
    if len(parts) <= MAX_DIMS and all(p.strip().isdigit() and p.strip().isascii() and len(p.strip()) <= 12
                                      for p in parts):
        shape = tuple(int(part) for part in parts)
    if not shape or any(d <= 0 for d in shape):
        raise UserError(f"malformed {option} {text[:60]!r}: expected positive integers like {SHAPE_EXAMPLE}")
    return check_shape(shape, text)


def shape_value(value: Any, option: str = "input_shape", min_dims: int = 1) -> tuple[int, ...]:
    """An input shape from the API: text as parse_shape reads it, or a sequence of positive integers."""
    if isinstance(value, str):
        shape = parse_shape(value, option)
    elif isinstance(value, Sequence) and all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                                             for d in value):
        shape = tuple(int(d) for d in value)
        if not shape or len(shape) > MAX_DIMS or min(shape) <= 0:
            raise UserError(f"{option} must be 1 to {MAX_DIMS} positive integers, not {tuple(value)}")
        check_shape(shape, ",".join(map(str, shape)))
    else:
        raise UserError(f"{option} must be a shape like (1, 3, 224, 224) or '{SHAPE_EXAMPLE}', not {value!r}"[:200])
    if len(shape) < min_dims:
        raise UserError(f"{option} {','.join(map(str, shape))}: the input needs a batch dimension first (at least "
                        f"{min_dims} dimensions, e.g. 1,3,32,32 or 1,784)")
    return shape


def shape_text(shape: Sequence[int]) -> str:
    """The one way a shape is written in records and file names: 1x3x224x224."""
    return "x".join(str(int(d)) for d in shape)


# ------------------------------------------------------------------------------------------------ counts
def count_value(value: Any, option: str, minimum: int = 1, maximum: Optional[int] = None) -> int:
    """A whole number (int, or its decimal text) of at least `minimum`: --batch, --seq-len, --limit, batch=."""
    number: Optional[int] = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii() and len(value.strip()) < 19:
        number = int(value.strip())
    if number is None or number < minimum or (maximum is not None and number > maximum):
        bound = f" and at most {maximum:,}" if maximum is not None else ""
        raise UserError(f"{option} must be a whole number of at least {minimum}{bound}, not {value!r}"[:200])
    return number


def optional_count(value: Any, option: str, minimum: int = 1) -> Optional[int]:
    return None if value is None else count_value(value, option, minimum)


def parse_tokens(text: Union[str, float, int, None], option: str = "--tokens") -> Optional[float]:
    """Training tokens D: a positive finite number, '300e9', '3e11', '300_000_000_000', '2,048'."""
    if text is None:
        return None
    value = float("nan")
    if isinstance(text, numbers.Real) and not isinstance(text, bool):
        value = float(text)
    elif isinstance(text, str):
        try:
            value = float(text.strip().replace(",", "").replace("_", ""))
        except ValueError:
            pass
    if not (math.isfinite(value) and 0 < value <= MAX_TOKENS):
        raise UserError(f"{option} must be a positive finite number of tokens like 300e9 (at most {MAX_TOKENS:g}), "
                        f"not {text!r}"[:200])
    return value


# ------------------------------------------------------------------------------------------------ versions
def parse_versions(text: str, option: str = "--versions") -> list[str]:
    """'0.0.31-2005241907,0.1.1.post2209072238' -> PEP 440 normal forms, each once, in order."""
    from packaging.version import InvalidVersion, Version

    out: list[str] = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        try:
            version = str(Version(part.strip()))
        except InvalidVersion:
            raise UserError(f"{option}: {part.strip()[:60]!r} is not a version number (PEP 440, e.g. "
                            "0.1.1.post2209072238)") from None
        if version not in out:
            out.append(version)
    if not out:
        raise UserError(f"{option} needs at least one version, e.g. 0.0.31.post2005241907,0.1.1.post2209072238")
    return out


# ------------------------------------------------------------------------------------------------ time, memory
def check_timeout(timeout: Any, option: str = "timeout") -> float:
    """A finite number of seconds in (0, MAX_TIMEOUT_S]; anything else is the user's error."""
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise UserError(f"{option} must be a number of seconds, not {timeout!r}"[:200]) from None
    if isinstance(timeout, bool) or not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_TIMEOUT_S:
        raise UserError(f"{option} must be a finite number of seconds above 0 and at most {MAX_TIMEOUT_S:g} "
                        f"(24 h), not {timeout!r}"[:200])
    return seconds


def physical_memory() -> int:
    """Bytes of RAM of this machine (0 when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


_UNITS = {"": 2 ** 30, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


def parse_memory(text: Any, option: str = "--memory") -> int:
    """A memory cap per job in bytes: '4G', '4GiB', '512M', '1.5g', '8' (GiB), '50%' (of this machine's RAM), or
    a whole number of bytes from the API."""
    raw = str(text).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%|[kmgt]?)(?:i?b)?", raw, re.I)
    value = None
    if isinstance(text, numbers.Integral) and not isinstance(text, bool):
        value = int(text)
    elif match and isinstance(text, str):
        number = float(match.group(1))
        if match.group(2) == "%":
            value = int(physical_memory() * number / 100) if 0 < number <= 100 else None
        else:
            value = int(number * _UNITS[match.group(2).lower()])
    if value is None or value < MIN_MEMORY or value > 2 ** 50:
        raise UserError(f"{option} must be a size of at least 256M like 4G, 1536M or 16GiB, or a share of this "
                        f"machine's memory like 50%, not {str(text)[:40]!r}")
    return value


def memory_text(size: float) -> str:
    return f"{size / 2 ** 30:.1f} GiB" if size >= 2 ** 30 else f"{size / 2 ** 20:.0f} MiB"
