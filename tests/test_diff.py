"""The diff engine on real tool output: every number written in the document's terms, residual 0.

Expected decompositions come from the tools' source (cited in conventions/catalogue/) and the document's
formulas, e.g. thop conv = 1*MACC (calc_func.calculate_conv2d_flops), torchstat conv 'Flops' = MACC + BIAS
(compute_flops.compute_Conv2d_flops)."""
import pytest

from conventions import terms as T
from reconcile.api import run
from reconcile.diff import decompose, explain


@pytest.fixture(scope="module")
def lenet():
    records = run(models="lenet", tools="document,thop,torchstat,torchsummary")
    return records, explain(records)


@pytest.fixture(scope="module")
def sepnet():
    records = run(models="sepnet", tools="document,thop,torchstat")
    return records, explain(records)


def row(explanations, tool, layer, metric):
    match = explanations[(explanations.tool == tool) & (explanations.layer == layer) & (explanations.metric == metric)]
    assert len(match) == 1, (tool, layer, metric, match)
    return match.iloc[0]


def test_every_lenet_number_is_explained(lenet):
    _, ex = lenet
    fitted = ex[ex.residual.notna()]
    assert len(fitted) > 40
    assert (fitted.residual == 0).all(), fitted[fitted.residual != 0][["tool", "layer", "metric", "explanation"]]


def test_lenet_decompositions(lenet):
    _, ex = lenet
    # thop 0.1.1: conv1 288,000 = 5*5*1*20*24*24 = 1*MACC, no bias adds
    thop = row(ex, "thop", "conv1", "macs")
    assert thop.value == 288_000 and thop.decomposition == "1*MACC"
    assert "1 op" in thop.explanation and "11,520 bias adds" in thop.explanation
    # the document: 587,520 = 2*288,000 + 20*24*24. BIAS == OUT on a biased conv, but the formula says which term
    # it is (a bias add per output), so the catalogued convention is not reported as ambiguous
    doc = row(ex, "document", "conv1", "flops")
    assert doc.decomposition == "2*MACC + 1*BIAS" and "Ambiguous" not in doc.explanation
    # torchstat 'Flops' 299,520 = 288,000 + 11,520 = MACC + BIAS; labels swapped ("per sample" only when batch > 1)
    flops = row(ex, "torchstat", "conv1", "Flops")
    assert flops.value == 299_520 and flops.decomposition == "1*MACC + 1*BIAS"
    assert "swapped" in flops.explanation
    # torchstat 'MAdd' 576,000 = (2*25 - 1)*11,520 + 11,520 = (2k-1)*OUT + BIAS, which equals 2*MACC here
    madd = row(ex, "torchstat", "conv1", "MAdd")
    assert madd.value == 576_000 == 2 * 288_000
    assert madd.decomposition == "2*MACC - 1*OUT + 1*BIAS" and "(2k-1)" in madd.explanation
    # torchstat pool1 MAdd 8,640 = (2*2 - 1) * 20*12*12 = WINDOW - OUT
    assert row(ex, "torchstat", "pool1", "MAdd").decomposition == "1*WINDOW - 1*OUT"
    # thop counts max pooling as 0
    assert row(ex, "thop", "pool1", "macs").decomposition == "0"


def test_totals_are_sums_plus_skipped_layers(lenet):
    _, ex = lenet
    total = row(ex, "thop", "__total__", "macs")
    assert total.value == 288_000 + 1_600_000 + 400_000 + 5_000 and total.residual == 0
    assert "relu1 (a functional relu call, which module hooks cannot see)" in total.explanation
    missing = row(ex, "thop", "relu1", "")
    assert missing.status == "missing" and "OUT 500" in missing.explanation


def test_independent_terms_remove_the_ambiguity(sepnet):
    _, ex = sepnet
    fitted = ex[ex.residual.notna()]
    assert (fitted.residual == 0).all()
    # conv1 has no bias (BIAS = 0 != OUT), pool1 is 3x3/2 (IN 16*32*32 = 16,384 != WINDOW 9*16*16*16 = 36,864)
    conv1 = row(ex, "torchstat", "conv1", "Flops")
    assert conv1.value == 3 * 3 * 3 * 16 * 32 * 32 and "ambiguous" not in conv1.decomposition
    pool = row(ex, "torchstat", "pool1", "Flops")
    assert pool.value == 16 * 32 * 32 and pool.decomposition == "1*IN"
    madd = row(ex, "torchstat", "pool1", "MAdd")
    assert madd.value == (9 - 1) * 16 * 16 * 16 and madd.decomposition == "1*WINDOW - 1*OUT"
    assert row(ex, "thop", "bn1", "macs").decomposition == "4*OUT"  # 4 * 16*32*32 = 65,536


def test_unsupported_and_failures_are_explained_not_hidden():
    records = run(models="mha", tools="thop,torchsummary")
    ex = explain(records)
    assert set(records[records.tool == "torchsummary"].status) == {"error"}
    crash = ex[(ex.tool == "torchsummary")].iloc[0]
    assert crash.decomposition == "error" and "MultiheadAttention" in crash.explanation
    total = row(ex, "thop", "__total__", "macs")
    # 4*16*64*64 + 2*16*16*64 = 294,912 multiply-accumulates, thop 0.1.1 counts 0
    assert total.value == 0 and "silently zero" in total.explanation and "294,912" in total.explanation


def test_batch_scaling_is_named():
    records = run(models="lenet", tools="thop,torchstat", batch=4)
    ex = explain(records)
    assert row(ex, "thop", "conv1", "macs").value == 4 * 288_000
    per_sample = row(ex, "torchstat", "conv1", "Flops")
    assert per_sample.value == 299_520 and "ignoring the batch of 4" in per_sample.explanation
    assert per_sample.decomposition == "per sample: 1*MACC + 1*BIAS"


def test_search_and_unexplained_residual():
    values = {T.MACC: 1000, T.BIAS: 0, T.OUT: 100, T.IN: 400, T.WINDOW: 930}
    found = decompose(1900.0, values, 1, None)  # 2*1000 - 100
    assert found.combo == {T.MACC: 2, T.OUT: -1} and found.residual == 0 and found.origin == "search"
    lost = decompose(7.0, values, 1, None)
    assert lost.residual == 7 and lost.origin == "none"


@pytest.mark.slow  # a TensorFlow worker (import tensorflow, a graph profile): ~4 s
def test_tf_and_calflops_near_miss_is_named_layer_by_layer():
    records = run(models="lenet", tools="tf_profiler,calflops")
    ex = explain(records)
    fitted = ex[ex.residual.notna()]
    assert (fitted.residual == 0).all(), fitted[fitted.residual != 0][["tool", "layer", "metric"]]
    # TF pool1 MaxPool = kernel_area x output elements = 2*2*20*12*12 = 11,520; == IN here, but TF's pooling
    # statistics function (catalogued) says it is the window, so it is not reported as ambiguous
    assert row(ex, "tf_profiler", "pool1", "pool1/MaxPool").decomposition == "1*WINDOW"
    # the unfrozen graph: 5,478,522 - 4,615,950 = 862,572 of initialiser ops, each decomposed
    unfrozen = row(ex, "tf_profiler", "__total__", "unfrozen:float_ops")
    assert unfrozen.residual == 0 and "862,572" in unfrozen.explanation
    assert row(ex, "tf_profiler", "ip1/kernel", "unfrozen:ip1/kernel/Initializer/random_uniform/mul").decomposition \
        == "1*WEIGHTS"  # 800*500 = 400,000 multiplies, once
    from reconcile.diff import canonical_ir, near_misses

    sentences = near_misses(records, "lenet", canonical_ir("lenet"))
    [pair] = [s for s in sentences if "tf_profiler" in s and "calflops" in s]
    # 4,615,950 - 4,615,940 = 10 = (500 + 10) FC bias adds TF counts - 500 ReLU elements calflops counts
    assert "differ by 10" in pair
    assert "ip1: 800,500 vs 800,000 (+500 = +BIAS" in pair and "ip2: 10,010 vs 10,000 (+10 = +BIAS" in pair
    assert "relu1: 0 vs 500 (-500 = -OUT" in pair


def test_a_module_called_twice_is_explained_as_the_sum_of_its_calls():
    import torch.nn as nn

    class SharedRelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.relu = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()

        def forward(self, x):
            return self.relu(self.conv2(self.relu(self.conv1(x))))

    records = run(module=SharedRelu(), input_shape=(1, 2, 8, 8), name="shared", tools="calflops,torchstat")
    ex = explain(records)
    fitted = ex[ex.residual.notna()]
    assert (fitted.residual == 0).all(), fitted[fitted.residual != 0][["tool", "layer", "metric", "explanation"]]
    relu = row(ex, "calflops", "relu", "FLOPs")
    assert relu.value == 2 * 4 * 8 * 8  # two calls of 4*8*8 = 256 elements each
    assert "sums the 2 calls of this module (relu, relu#2)" in relu.explanation
    assert ex[(ex.tool == "calflops") & (ex.status == "missing")].empty  # relu#2 is not "skipped"
    # torchstat keeps only the last call's numbers: 256 = one call, named as such
    assert "counts only one of the 2 calls" in row(ex, "torchstat", "relu", "Flops").explanation


@pytest.mark.slow  # seconds: left out of make test-fast, run by make test
def test_the_search_rediscovers_every_catalogued_convention():
    """If a tool upgrade breaks a catalogue entry, the bounded search must still find the convention: on terms
    that cannot coincide (powers of 11: digits -5..5 in base 11 are unique), every entry's combination is the
    unique minimal fit."""
    from conventions import catalogue
    from reconcile.diff import _search
    from reconcile.records import COMPUTE, PARAMS

    for entry in catalogue.CATALOGUE:
        if not entry.combo or entry.significant_digits:
            continue
        quantity = PARAMS if set(entry.terms) <= set(T.PARAM_TERMS) else COMPUTE
        names = T.PARAM_TERMS if quantity == PARAMS else T.COMPUTE_TERMS + (T.WEIGHTS,)
        values = {term: 11 ** (i + 1) for i, term in enumerate(names)}
        value = T.evaluate(entry.terms, values)
        fits = _search(float(value), values, 1, quantity)
        assert [combo for combo, _ in fits] == [entry.terms], (entry.tool, entry.kinds, entry.terms, fits)
