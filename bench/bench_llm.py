"""Benchmark and measurement for language models (issue 13).

    python bench/bench_llm.py formulas   # `reconcile formulas preset:gpt3-175b`: wall time and peak RSS
                                         # (targets: < 60 s, < 2 GiB; the model is built on the meta device)
    python bench/bench_llm.py tools [SPEC [T]]  # default hf:gpt2 1024: forward FLOPs per token by every
                                         # convention and every counter that runs, eager and SDPA attention,
                                         # each explained in basis terms; and the T=128 -> 256 scaling test
Each counter runs in its own forked process (calflops and DeepSpeed patch torch functionals for good).
"""
from __future__ import annotations

import multiprocessing as mp
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_formulas() -> int:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "reconcile", "formulas", "preset:gpt3-175b"], cwd=ROOT,
                            capture_output=True, text=True)
    seconds = time.monotonic() - started
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    if result.returncode != 0:
        print(result.stderr.strip()[-500:])
        return 1
    print(f"formulas preset:gpt3-175b: {seconds:.1f} s (target 60), peak RSS {peak_gib:.2f} GiB (target 2)")
    return 0 if seconds < 60 and peak_gib < 2 else 1


def _run(args):
    tool, spec_text, seq_len = args
    import torch

    from reconcile import llm_report, models

    torch.set_num_threads(1)
    spec = models.resolve(spec_text, seq_len=seq_len)
    module = models.torch_module(spec)
    try:
        return llm_report.TOOL_TOTALS[tool](module, models.example_input(spec, module, tool))
    except Exception as exc:  # a counter that cannot run on this model: say why
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:160]


def measure(tool: str, spec_text: str, seq_len: int):
    with mp.get_context("fork").Pool(1) as pool:
        return pool.apply(_run, ((tool, spec_text, seq_len),))


def bench_tools(model: str = "hf:gpt2", seq_len: int = 1024) -> int:
    from conventions import llm
    from reconcile import llm_report, models

    def shapes_at(text: str, t: int) -> llm.Shapes:
        return models.llm_shapes(models.resolve(text, seq_len=t))

    base = shapes_at(model, seq_len)
    print(f"{model}, seq_len {seq_len}, forward FLOPs per token")
    for e in llm.evaluate_all(base, llm.FORWARD):
        print(f"  convention  {e.name:<45} {float(e.value):>16,.0f}  = {e.basis_text}")
    for attn in ("eager", "sdpa"):
        text = f"{model}{'&' if '?' in model else '?'}attn_implementation={attn}"
        for tool in llm_report.TOOL_TOTALS:
            started = time.monotonic()
            total = measure(tool, text, seq_len)
            if isinstance(total, str):
                print(f"  {attn:<5} {tool:<18} did not run: {total}")
                continue
            combo = llm.explain_total(total, base, seq_len)
            words = llm.format_combo(combo) if combo else "no combination of the basis terms fits"
            print(f"  {attn:<5} {tool:<18} {total / seq_len:>16,.1f} per token  = {words}"
                  f"  ({time.monotonic() - started:.0f} s)")
            scale = llm_report.scaling(tool, lambda t, tool=tool, text=text: measure(tool, text, t),
                                       lambda t, text=text: shapes_at(text, t), (128, 256))
            print(f"        {scale.sentence(lambda t, text=text: shapes_at(text, t))}")
    return 0


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "formulas"
    if what == "formulas":
        sys.exit(bench_formulas())
    sys.exit(bench_tools(sys.argv[2] if len(sys.argv) > 2 else "hf:gpt2", int(sys.argv[3]) if len(sys.argv) > 3 else 1024))
