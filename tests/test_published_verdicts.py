"""`which` on every number of reference_models/published.csv, from the conventions alone (no tool runs): the top
family must be the one the paper's own definition of its unit names (the csv's `expected` column, filled from the
paper, not from running which), on at least 95% of the rows; the rows where it is not are listed here with why.
And `which --table` on the whole paper tables committed under reference_models/tables/."""
from __future__ import annotations

from pathlib import Path

import pytest

import reference_models
from reconcile import published_verdicts, which

TABLES = Path(reference_models.__file__).parent / "tables"

# Rows whose top family is not the expected one, keyed by (model, printed, unit), with the reason read in the source.
KNOWN_MISSES = {
    ("module:reference_models.published_models:mobilenet_v2?width=1.4&input_shape=1,3,224,224", "6.9M", "Params"):
        "the built 1.4 model has 6.1M parameters; 6.9M matches no count of it, and the count with the BN running "
        "statistics is the nearest",
    ("preset:bert-large", "5.33E+20", "Total train compute (flops)"):
        "Table D.1 multiplies 355M parameters for BERT-Large (RoBERTa-Large's count), which has 335M: with the real "
        "N, 6ND is 5.7% low and Megatron-LM's formula lands 0.9% high",
}


@pytest.mark.slow  # traces ~25 ImageNet models and builds ~40 presets on the meta device
def test_published_numbers_get_the_family_their_paper_defines():
    rows = published_verdicts.verdicts()
    lines = [f"{r.model} {r.text}: {r.top} ({r.match})" for r in rows]
    misses = {(r.model, r.printed, r.unit): r.top for r in rows if not r.right}
    assert set(misses) == set(KNOWN_MISSES), "\n".join(lines)
    assert sum(r.right for r in rows) / len(rows) >= 0.95
    # the rows are published.csv's, in its order, each judged against the csv's own expected column
    assert [r.expected for r in rows] == [row["expected"] for row in reference_models.published_numbers()]


@pytest.mark.slow
@pytest.mark.parametrize("table, family, agree, disagree", [
    # GPT-3 Table D.1: 6ND for GPT-3, BERT, RoBERTa; the T5 rows are encoder-decoder (3 flops per param per token);
    # BERT-Large multiplies RoBERTa-Large's 355M; GPT-3 XL multiplies the rounded 1,320M (1,315.7M as built)
    ("gpt3_table_d1.csv", "6nd", [6, 8, 9, 10, 11, 12, 14, 15, 16, 17], [1, 2, 3, 4, 5, 7, 13]),
    ("pythia_non_embedding.csv", "non-embedding", list(range(1, 9)), []),
    # Table 2.1's 350M, 13.0B and 175.0B are rounded names (Table D.1 counts 356M, 12,850M and 174,600M)
    ("gpt3_table_2_1.csv", "all", [1, 3, 4, 5, 6], [2, 7, 8]),
    # ShuffleNet V2 Table 8 ("FLOPs ... i.e. the number of multiply-adds"): the 1.4 MobileNet v2 built with channels
    # rounded to multiples of 8 has 582M, 0.4% below the printed 585
    ("shufflenet_v2_table8_mobilenets.csv", "macs", [1, 2, 3, 4, 5], [6]),
    # He et al. 2015 Table 1: ResNet-34 and -50 print 3.6 and 3.8 x 10^9 for 3.66 and 3.86 (1.8% and 1.5% above)
    ("he2015_table1_flops.csv", "macs", [1, 4, 5], [2, 3]),
])
def test_whole_tables(table, family, agree, disagree):
    result = which.which_table(str(TABLES / table))
    assert (result.family_id, result.agree, [i for i, _ in result.disagree]) == (family, agree, disagree)
