"""Prototxt fuzzer: mutations of the reference prototxts (and a second net that uses every layer type the reader
shapes), run through `reconcile formulas` in-process. Each case must exit 0 or 2 with, on failure, one stderr
line naming the file and line, no traceback, within a work and memory bound. The work bound counts the Python
calls a case makes (sys.setprofile), not seconds: a reader that went quadratic in its input fails it on any
machine, a busy machine never does (the tokeniser's regex is possessive, linear in the file: the Python-level
loops are what could blow up)."""
import random
import resource
import sys
from pathlib import Path

import pytest

from reconcile.cli import main

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = sorted((ROOT / "reference_models" / "prototxt").glob("*.prototxt"))
# Every layer type with shape rules (Concat, Eltwise, Scale, BatchNorm, PReLU, Flatten, Reshape, Softmax ...).
EVERY_TYPE = """name: "every"
input: "data"
input_shape { dim: 1 dim: 4 dim: 12 dim: 12 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 1 dilation: 1 group: 2 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true axis: 1 num_axes: 1 } }
layer { name: "prelu" type: "PReLU" bottom: "conv" top: "conv" }
layer { name: "side" type: "Convolution" bottom: "data" top: "side" convolution_param { num_output: 8 kernel_size: 1 } }
layer { name: "sum" type: "Eltwise" bottom: "conv" bottom: "side" top: "sum" eltwise_param { operation: SUM } }
layer { name: "cat" type: "Concat" bottom: "sum" bottom: "side" top: "cat" concat_param { axis: 1 } }
layer { name: "pool" type: "Pooling" bottom: "cat" top: "pool" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "flat" type: "Flatten" bottom: "pool" top: "flat" flatten_param { axis: 1 end_axis: -1 } }
layer { name: "shape" type: "Reshape" bottom: "flat" top: "shaped" reshape_param { shape { dim: 0 dim: -1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "shaped" top: "fc" inner_product_param { num_output: 10 axis: 1 } }
layer { name: "drop" type: "Dropout" bottom: "fc" top: "fc" include { phase: TEST } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
INTERESTING_INTS = ["0", "-1", "-7", "1", "3", "64", "9" * 19, str(2 ** 63), "1" * 4301, "1e400", "-0", "2.5"]
INTERESTING_CHARS = ["\x1c", "\u00a0", "\u2028", "\x00", "\ufeff", '"', "'", "{", "}", "[", "]", ":", "#", ",",
                     "\\", "<", ">", "\t", "\r", "é"]
INTERESTING_KEYS = ["axis", "end_axis", "num_axes", "dim", "concat_dim", "channel_shared", "bias_term", "group",
                    "round_mode", "global_pooling", "pool", "operation", "phase", "input_dim", "kernel_h", "stride_w"]
# Python calls one case may make: CALLS_BASE (the command on a small file) plus CALLS_PER_BYTE per byte of the
# file. Measured on the 300 cases (files of 0.1 to 400 KB): at most 14,302 calls on files under 5 KB, at most
# 0.63 calls per byte above 20 KB; the bounds are ~8 times that, so only a change of complexity (not of machine,
# load or a few more checks) reaches them. Tracing halves the interpreter's speed: every WORK_EVERY-th case is
# counted. The seconds per case are measured by `make bench` (bench/bench_run.py), not asserted here.
CALLS_BASE = 100_000
CALLS_PER_BYTE = 5
MAX_BYTES = 4 * 2 ** 20  # the reader refuses larger files before reading them
WORK_EVERY = 10
EXTRA_RSS_MB = 400


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits that keep most of the file (so shape inference still runs on the rest)."""
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(9)
        numbers = [i for i, c in enumerate(text) if c.isdigit() and (i == 0 or not text[i - 1].isalnum())]
        if op == 0 and numbers:  # a number -> an interesting one
            start = rng.choice(numbers)
            end = start
            while end < len(text) and (text[end].isdigit() or text[end] == "."):
                end += 1
            text = text[:start] + rng.choice(INTERESTING_INTS) + text[end:]
        elif op == 1:  # an odd character anywhere
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(INTERESTING_CHARS) + text[at:]
        elif op == 2:  # delete a span
            at = rng.randrange(len(text))
            text = text[:at] + text[at + rng.randint(1, 40):]
        elif op == 3:  # duplicate a span
            at = rng.randrange(len(text))
            text = text[:at] + text[at:at + rng.randint(1, 80)] * 2 + text[at + 80:]
        elif op == 4:  # a parameter that moves an axis or a size, inside some block
            blocks = [i for i, c in enumerate(text) if c == "{"]
            at = rng.choice(blocks) + 1
            text = text[:at] + f" {rng.choice(INTERESTING_KEYS)}: {rng.choice(INTERESTING_INTS)} " + text[at:]
        elif op == 5:  # deep nesting
            depth = rng.choice([70, 1000, 20000])
            text += "a { " * depth + "}" * rng.choice([depth, 0])
        elif op == 6:  # long strings and identifiers
            size = rng.choice([5000, 200_000])  # 5 MB and 20 MB: test_huge_string_is_refused_in_bounded_memory
            text += rng.choice([f'\nname: "{"x" * size}"\n', f"\nname: {'y' * size}\n", f"\nx: {'7' * size}\n"])
        elif op == 7:  # swap two lines
            lines = text.split("\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        else:  # change a layer's type
            types = ["Convolution", "Pooling", "InnerProduct", "Concat", "Reshape", "PReLU", "Flatten", "Scale",
                     "Eltwise", "BatchNorm", "Softmax", "SoftmaxWithLoss", "Input", "DummyData", "Mystery", "Split"]
            quoted = [i for i in range(len(text)) if text.startswith('type: "', i)]
            if quoted:
                at = rng.choice(quoted) + len('type: "')
                end = text.find('"', at)
                text = text[:at] + rng.choice(types) + text[end:]
    return text


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def formulas(path: Path, capsys) -> tuple[int, str]:
    try:
        main(["formulas", str(path), "--format", "csv"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.err


class WorkBound(BaseException):
    """Raised from the tracer to stop a case that never ends (BaseException: no `except Exception` swallows it)."""


def counted(call):
    """(call(), how many Python function calls it made): a count of work that does not depend on the machine or
    its load (a trace hook sees each Python call; the lines in between run untraced)."""
    calls = 0
    bound = 10 * CALLS_PER_BYTE * MAX_BYTES

    def tracer(frame, event, arg):
        nonlocal calls
        calls += 1  # the global hook is called for "call" events only; returning None traces no lines
        if calls > bound:
            raise WorkBound(f"more than {bound:,} calls")
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        result = call()
    finally:
        sys.settrace(previous)
    return result, calls


def check_case(path: Path, capsys, count_work: bool = True) -> int:
    if count_work:
        (code, err), calls = counted(lambda: formulas(path, capsys))
        size = path.stat().st_size
        assert calls < CALLS_BASE + CALLS_PER_BYTE * size, (calls, size, path.read_text(errors="replace")[:300])
    else:
        code, err = formulas(path, capsys)
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err[:500]
        assert path.name in lines[0], lines[0][:300]
    return code


CASES = 300


def corpus(folder: Path):
    """The fuzz cases, the same on every run (seeded): (case number, path of its prototxt). `make bench` times
    the same cases (bench/bench_run.py)."""
    rng = random.Random(15)
    bases = [p.read_text(encoding="utf-8") for p in REFERENCE] + [EVERY_TYPE]
    for case in range(CASES):
        path = folder / f"case{case}.prototxt"
        path.write_text(mutate(rng.choice(bases), rng), encoding="utf-8")
        yield case, path


@pytest.mark.system  # a fuzzer: hundreds of generated prototxts (make test-all)
def test_fuzzed_prototxts(tmp_path, capsys):
    baseline = max_rss_mb()
    outcomes = {0: 0, 2: 0}
    for case, path in corpus(tmp_path):
        outcomes[check_case(path, capsys, count_work=case % WORK_EVERY == 0)] += 1
        assert max_rss_mb() - baseline < EXTRA_RSS_MB, f"case {case}: memory grew to {max_rss_mb():.0f} MB"
    print(outcomes)
    assert outcomes[0] > 10 and outcomes[2] > 100, outcomes  # the mutations reach both outcomes


def test_every_type_net_reads(tmp_path, capsys):
    path = tmp_path / "every.prototxt"
    path.write_text(EVERY_TYPE)
    assert formulas(path, capsys)[0] == 0


LENET = (REFERENCE[0].read_text(encoding="utf-8") if REFERENCE else "")


@pytest.mark.parametrize("edit, reason", [
    (lambda t: t.replace("num_output: 20 kernel_size: 5 stride: 1", "num_output: 20 kernel_size: 5 stride: 0"),
     "stride must be positive, got 0"),
    (lambda t: t.replace("num_output: 20", "num_output: 0"), "num_output must be positive, got 0"),
    (lambda t: t.replace("num_output: 20", "num_output: -20"), "num_output must be positive, got -20"),
    (lambda t: t.replace("num_output: 20 kernel_size: 5", "num_output: 20 kernel_size: -5"),
     "kernel_size must be positive"),
    (lambda t: t.replace("num_output: 20 kernel_size: 5", "num_output: 20 kernel_size: 5 pad: -1"),
     "pad must be at least 0"),
    (lambda t: t.replace("num_output: 20 kernel_size: 5", "num_output: 20 kernel_size: 5 dilation: 0"),
     "dilation must be positive"),
    (lambda t: t.replace("num_output: 500", "num_output: 0"), "num_output must be positive"),
    (lambda t: t.replace("name: \"LeNet\"", "name:\x1c\"LeNet\""), "bad character U+001C"),
    (lambda t: t + "a { " * 1000 + "}" * 1000, "nested more than 64 deep"),
    (lambda t: t.replace("num_output: 500", "num_output: " + "1" * 4301), "is 4,301 characters long"),
    (lambda t: t.replace("num_output: 500", "num_output: 9223372036854775808"), "does not fit in 64 bits"),
    (lambda t: t + 'layer { name: "x" type: "Concat" bottom: "ip2" top: "x" concat_param { axis: 5 } }',
     "axis 5 is outside the input's 2 axes"),
    (lambda t: t + 'layer { name: "x" type: "Reshape" bottom: "ip2" top: "x" '
                   'reshape_param { shape { dim: 0 dim: 0 dim: 0 } } }', "copies an axis the input"),
    (lambda t: t + 'layer { name: "x" type: "InnerProduct" bottom: "ip2" top: "x" '
                   'inner_product_param { num_output: 3 axis: 4 } }', "axis 4 is outside"),
    (lambda t: t + 'layer { name: "x" type: "Flatten" bottom: "ip2" top: "x" flatten_param { axis: 9 } }',
     "axis 9 is outside"),
    (lambda t: t + 'layer { name: "x" type: "SoftmaxWithLoss" bottom: "ip2" top: "x" }\n'
                   'layer { name: "y" type: "PReLU" bottom: "x" top: "y" }', "needs an input with at least"),
    (lambda t: t.replace("pool: MAX kernel_size: 2 stride: 2", "pool: MAX kernel_size: 2 stride: 2 pad: 2", 1),
     "pad (2, 2) must be smaller than the kernel (2, 2)"),
])
def test_issue_cases_are_one_line(tmp_path, capsys, edit, reason):
    path = tmp_path / "bad.prototxt"
    path.write_text(edit(LENET), encoding="utf-8")
    code, err = formulas(path, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err[:400]
    assert reason in err and "bad.prototxt:" in err, err[:400]


@pytest.mark.parametrize("size_mb", [5, 20])
def test_huge_string_is_refused_in_bounded_memory(tmp_path, capsys, size_mb):
    # the issue: a 5 MB quoted string took 1.2 GB RSS, 20 MB took 4.8 GB
    path = tmp_path / "big.prototxt"
    path.write_text(LENET.replace('name: "LeNet"', 'name: "' + "x" * (size_mb * 2 ** 20) + '"'))
    before = max_rss_mb()
    code, err = formulas(path, capsys)
    assert code == 2 and "larger than 4 MB" in err and len(err.strip().splitlines()) == 1
    assert max_rss_mb() - before < 3 * size_mb + 50


def test_long_string_under_the_file_bound(tmp_path, capsys):
    path = tmp_path / "long.prototxt"
    path.write_text(LENET.replace('name: "LeNet"', 'name: "' + "x" * 3_000_000 + '"'))
    before = max_rss_mb()
    code, err = formulas(path, capsys)
    assert code == 2 and "a string of 3,000,000 characters" in err
    assert max_rss_mb() - before < 100
