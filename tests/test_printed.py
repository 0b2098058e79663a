"""The value grammar (reconcile/printed.py): every unit form a paper prints, read to the value, precision, quantity
and family it says, each against the number written out by hand. Pure Python: no model is built."""
from decimal import Decimal

import pytest

from conventions import llm
from reconcile import printed as P
from reconcile.errors import UserError


@pytest.mark.parametrize("text, unit, value, half, kind, quantity", [
    # a scale in brackets in a column header, the number bare under it (--unit)
    ("4.1", "FLOPs (B)", "4.1e9", "5e7", P.FLOPS, P.COMPUTE),
    ("25.6", "params (M)", "2.56e7", "5e4", P.PARAMETERS, P.PARAMS),
    ("1.7", "Parameters (billions)", "1.7e9", "5e7", P.PARAMETERS, P.PARAMS),
    ("1.7", "Number of parameters (billion)", "1.7e9", "5e7", P.PARAMETERS, P.PARAMS),  # Megatron-LM Table 1
    ("540.35", "# of Parameters (in billions)", "5.4035e11", "5e6", P.PARAMETERS, P.PARAMS),  # PaLM Table 1
    ("0.4", "flops (B)", "4e8", "5e7", P.FLOPS, P.COMPUTE),
    ("219", "MAdds (M)", "2.19e8", "5e5", P.MACS, P.COMPUTE),
    ("1.8", "FLOPs (x10^9)", "1.8e9", "5e7", P.FLOPS, P.COMPUTE),
    ("1.8", "FLOPs (×10^9)", "1.8e9", "5e7", P.FLOPS, P.COMPUTE),
    ("325", "Complexity (MFLOPs)", "3.25e8", "5e5", P.FLOPS, P.COMPUTE),
    # parameter words
    ("5.3M", "#params", "5.3e6", "5e4", P.PARAMETERS, P.PARAMS),
    ("5.3M", "#Params.", "5.3e6", "5e4", P.PARAMETERS, P.PARAMS),
    ("125M", "n_params", "1.25e8", "5e5", P.PARAMETERS, P.PARAMS),
    ("25557032", "num_params", "25557032", "0.5", P.PARAMETERS, P.PARAMS),
    # compute units with their prefixes: 1e6, 1e9, 1e12, 1e15
    ("300", "MFLOPs", "3e8", "5e7", P.FLOPS, P.COMPUTE),
    ("4.5", "GMACs", "4.5e9", "5e7", P.MACS, P.COMPUTE),
    ("1.2", "TFLOPs", "1.2e12", "5e10", P.FLOPS, P.COMPUTE),
    ("0.59", "Inference TFLOPs", "5.9e11", "5e9", P.FLOPS, P.COMPUTE),  # TimeSformer Table 2
    ("2.5", "PFLOPs", "2.5e15", "5e13", P.FLOPS, P.COMPUTE),
    ("3.6", "billion multiply-adds", "3.6e9", "5e7", P.MACS, P.COMPUTE),
    ("3.6", "billion FLOPs (multiply-adds)", "3.6e9", "5e7", P.MACS, P.COMPUTE),  # He et al. 2015 §3.3
    ("15300", "Million Mult-Adds", "1.53e10", "5e7", P.MACS, P.COMPUTE),
])
def test_unit_forms_as_column_headers(text, unit, value, half, kind, quantity):
    p = P.parse_value(text, unit)
    assert (p.value, p.half_unit, p.unit, p.quantity) == (Decimal(value), Decimal(half), kind, quantity)
    # the same unit printed after the number reads the same ("4.1 FLOPs (B)", "25.6 params (M)")
    q = P.parse_value(f"{text} {unit}")
    assert (q.value, q.half_unit, q.unit, q.quantity) == (p.value, p.half_unit, p.unit, p.quantity)


def test_a_label_and_its_value():
    # Devlin et al. 2019 §3: "BERT_BASE (L=12, H=768, A=12, Total Parameters=110M)"
    p = P.parse_value("Total Parameters=110M")
    assert (p.value, p.quantity, p.family) == (Decimal("1.1e8"), P.PARAMS, llm.F_ALL)
    assert P.parse_value("params: 25.6M").value == Decimal("2.56e7")


def test_non_embedding_params_names_its_family():
    # Pythia's model card column "Non-Embedding Params", 18,915,328 for the 70M model
    p = P.parse_value("18,915,328", "Non-Embedding Params")
    assert (p.value, p.half_unit, p.quantity, p.family) == (Decimal(18915328), Decimal("0.5"), P.PARAMS,
                                                           llm.F_NON_EMBEDDING)
    assert P.parse_value("13B active parameters").family == llm.F_ACTIVE
    assert P.parse_value("4.6B", "encoder params").family == llm.F_ENCODER


def test_pf_days_are_petaflop_per_second_days():
    # Brown et al. 2020 Table D.1: GPT-3 175B 3.64E+03 PF-days, "each of which are 8.64e+19 flops"
    p = P.parse_value("3.64E+03", "Total train compute (PF-days)")
    assert p.value == Decimal("3.64e3") * Decimal("8.64e19") == Decimal("3.14496e23")
    assert p.half_unit == Decimal("5e0") * Decimal("8.64e19")  # the last digit, 0.01e3 PF-days, halved
    assert (p.quantity, p.unit) == (P.TRAIN_COMPUTE, P.FLOPS)
    assert P.parse_value("3,640 petaflop/s-days").value == Decimal(3640) * Decimal("8.64e19")
    # 6ND for the built GPT-3 175B (174,604,259,328 parameters, 300B tokens) shown back in PF-days
    assert p.show(6 * 174_604_259_328 * 300e9) == "3.638e+03 PF-days"
    assert P.parse_value("1.80E+20", "Total train compute (flops)").quantity == P.TRAIN_COMPUTE


def test_training_petaflops_are_training_compute():
    # Gholami et al. 2024 (AI and Memory Wall) data README: header "Training PFLOPs", GPT-3 "310,000,000"
    p = P.parse_value("310,000,000", "Training PFLOPs")
    assert p.value == Decimal(310_000_000) * Decimal("1e15") == Decimal("3.1e23")
    assert p.half_unit == Decimal("5e21")  # trailing zeros are not significant: known to the ten million PFLOPs
    assert (p.quantity, p.unit) == (P.TRAIN_COMPUTE, P.FLOPS)


@pytest.mark.parametrize("text, value", [("3.8 × 10^25 FLOPs", "3.8e25"), ("1.8x10^9", "1.8e9"), ("10^22 FLOPs", "1e22"),
                                         ("3.14 × 10²³", "3.14e23"), ("3.64E+03", "3.64e3")])
def test_exponents_as_printed(text, value):
    assert P.parse_value(text).value == Decimal(value)


def test_the_decimal_comma_is_never_read_silently():
    with pytest.raises(UserError, match="not a thousands separator.*write 4.1"):
        P.parse_value("4,1 GFLOPs")
    with pytest.raises(UserError, match="not a thousands separator"):
        P.parse_value("1,23,456")
    # groups of three are thousands; a single group is read so and says so
    assert P.parse_value("2,307,720").notes == ()
    one = P.parse_value("1,234 M")
    assert one.value == Decimal("1.234e9") and "thousands separator" in one.notes[0] and "1.234" in one.notes[0]


@pytest.mark.parametrize("text, unit, says", [
    ("4.1 GFLOPs", "FLOPs (B)", "has its own unit"),
    ("4.1G", "FLOPs (B)", "two scales"),
    ("4.1", "GFLOPs (B)", "two scales"),
    ("4.1", "furlongs", "unknown unit 'furlongs'"),
    ("4.1", "GFLOP/s", "a rate"),
    ("4.1", "train params", "not training compute"),
])
def test_units_that_cannot_be_read(text, unit, says):
    with pytest.raises(UserError, match=says):
        P.parse_value(text, unit)


def test_attribution_precision_has_two_significant_digits():
    # "300M" is known to the hundred million, but a tool printing 327M did not print "300M": two digits at least
    assert P.parse_value("300M").half_unit == Decimal("5e7")
    assert P.parse_value("300M").attribution_half_unit == Decimal("5e6")
    assert P.parse_value("0.6G").attribution_half_unit == Decimal("5e6")
    assert P.parse_value("4.1G").attribution_half_unit == P.parse_value("4.1G").half_unit == Decimal("5e7")
