"""Readers of records and goldens: which matches a records.csv on the model's input shape and source hash (not
the name alone), explain() says UNEXPLAINED when a total does not decompose, a corrupt layer-terms golden is one
line."""
import math

import pandas as pd
import pytest

from reconcile import api, golden, which
from reconcile.cli import main
from reconcile.errors import UserError
from reconcile.identity import identify
from reconcile.models import reference
from reconcile.records import COLUMNS, IDENTITY_COLUMNS
from reconcile.render import to_csv

THOP_LENET = 288_000 + 1_600_000 + 400_000 + 5_000  # thop 0.1.1: multiply-accumulates only, 2,293,000 per image


@pytest.fixture(scope="module")
def batch4_report(tmp_path_factory):
    """records.csv of `reconcile run --models lenet --tools thop --batch 4`."""
    folder = tmp_path_factory.mktemp("batch4")
    records = api.run(models="lenet", tools="thop", batch=4)
    (folder / "records.csv").write_text(to_csv(records))
    return folder / "records.csv", records


@pytest.mark.slow  # runs tools or traces in job processes
def test_records_carry_the_models_identity(batch4_report):
    path, records = batch4_report
    assert list(records.columns) == COLUMNS and set(IDENTITY_COLUMNS) <= set(COLUMNS)
    assert set(records.input_shape) == {"4x1x28x28"} and set(records.batch) == {4}
    assert set(records.source_hash) == {identify(reference("lenet", 4)).source_hash}
    total = records[(records.layer == "__total__") & (records.metric == "macs")].value.item()
    assert total == 4 * THOP_LENET  # thop counts the whole batch


@pytest.mark.slow  # runs tools or traces in job processes
def test_which_next_to_a_batch_4_report_does_not_take_its_numbers(batch4_report, tmp_path):
    """Before: which at batch 1 read the batch-4 records as if they were its own and named thop as printing a
    number it never printed (and missed the one it did)."""
    path, _ = batch4_report
    result = which.which("lenet", str(THOP_LENET), tools=["thop"], run=False, report_records=path,
                         cache_dir=str(tmp_path / "empty"))
    assert result.notes == ["no cached run of thop (run without --no-run to count them)"]
    assert not [r for r in result.ranked if r.candidate.source == which.TOOL]
    # at the report's own batch the same file is used, and thop's total is there
    at4 = which.which("lenet", str(4 * THOP_LENET), tools=["thop"], run=False, report_records=path, batch=4,
                      cache_dir=str(tmp_path / "empty"))
    assert at4.notes == [f"tool numbers from {path}"]
    assert any(r.candidate.tool == "thop" and r.match == which.EXACT for r in at4.ranked
               if r.candidate.source == which.TOOL)


@pytest.mark.slow  # runs tools or traces in job processes
def test_which_does_not_take_numbers_of_an_edited_model(batch4_report, tmp_path):
    path, records = batch4_report
    edited = records.copy()
    edited["source_hash"] = "0" * 16  # the same name and shape, other sources
    (tmp_path / "records.csv").write_text(to_csv(edited))
    result = which.which("lenet", str(4 * THOP_LENET), tools=["thop"], run=False, batch=4,
                         report_records=tmp_path / "records.csv", cache_dir=str(tmp_path / "empty"))
    assert result.notes[0].startswith("no cached run of thop")


def totals(value) -> pd.DataFrame:
    rows = [{"model": "lenet", "framework": "torch", "tool": "t", "tool_version": "1", "layer": "__total__",
             "layer_kind": "", "quantity": "compute", "metric": "flops", "value": value, "status": "ok",
             "message": "", "input_shape": "1x1x28x28", "batch": 1, "source_hash": ""}]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["value"] = pd.Series([value], dtype=object)
    return frame


DOCUMENT_FLOPS = 587_520 + 11_520 + 3_203_200 + 3_200 + 800_500 + 10_010  # 4,615,950 (docs/document.md)


@pytest.mark.parametrize("value, residual", [
    (float("nan"), "nan"), (-5, -5), (float("inf"), "inf"), (DOCUMENT_FLOPS + 1, None)])
def test_explain_says_unexplained_when_a_total_does_not_decompose(value, residual):
    """Before: '= 0 over the whole model' for NaN, a negative, inf or an off-by-one total."""
    import reconcile

    explained = reconcile.explain(totals(value), {"lenet": reference("lenet")})
    (row,) = explained.itertuples(index=False)
    assert "UNEXPLAINED" in row.explanation and "= 0 over the whole model" not in row.explanation, row.explanation
    if residual == "nan":  # the residual column holds numbers: a NaN residual is empty there, said in the text
        assert row.residual is None and "(nan left over)" in row.explanation
    elif residual == "inf":
        assert row.residual == math.inf
    elif residual is not None:
        assert row.residual == residual
    else:
        assert row.residual not in (0, None)
    assert reconcile.explain(totals(DOCUMENT_FLOPS), {"lenet": reference("lenet")}).residual.item() == 0


def test_a_corrupt_layer_terms_golden_is_one_line(tmp_path, capsys):
    layers = tmp_path / "layers"
    layers.mkdir()
    for content, says in ((b"layer,kind,key,batch,terms\nconv1,conv,conv,1,MACC=abc\n", ":2: batch"),
                          (b"\xff\xfe", ":1: not UTF-8"),
                          (b"name,value\nx,1\n", ":1: header"),
                          (b'layer,kind,key,batch,terms\n"conv1,conv\n', "malformed CSV")):
        (layers / "lenet.csv").write_bytes(content)
        with pytest.raises(UserError, match=says) as error:
            golden.read_layers(tmp_path, "lenet")
        assert "\n" not in str(error.value) and "reconcile check --update" in str(error.value)


@pytest.mark.slow  # runs thop on lenet (cached after the first test that does)
def test_check_with_a_corrupt_layer_golden_exits_2(tmp_path, capsys):
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "golden" / "thop-0.1.1.post2209072238.csv"
    (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "lenet.csv").write_text("layer,kind,key,batch,terms\nconv1,conv,conv,one,MACC=1\n")
    try:
        main(["check", "--tools", "thop", "--models", "lenet", "--golden-dir", str(tmp_path), "--quiet"])
        code = 0
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "lenet.csv:2:" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow  # runs tools or traces in job processes
def test_explain_reads_loaded_records_at_the_shape_they_ran_at(batch4_report):
    """A records.csv of a --batch 4 run, loaded without its specs: explained on the batch-4 model (thop's total
    is then exactly the sum of its layers and 4 x MACC), not on LeNet at batch 1."""
    import reconcile

    path, _ = batch4_report
    loaded = which.read_records(path)
    explained = reconcile.explain(loaded)
    total = explained[(explained.layer == "__total__") & (explained.metric == "macs")]
    assert total.value.item() == 4 * THOP_LENET and total.residual.item() == 0
    assert total.reference_value.item() == 4 * DOCUMENT_FLOPS  # the document's FLOPs of four images
    edited = loaded.copy()
    edited["source_hash"] = "0" * 16
    stale = reconcile.explain(edited)
    assert stale.empty and stale.attrs["not_explained"] == {"lenet": "its sources changed since these records were "
                                                                       "made"}


def test_a_symlinked_layers_folder_is_one_line(tmp_path):
    (tmp_path / "golden").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "golden" / "layers").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="symbolic link"):
        golden.read_layers(tmp_path / "golden", "lenet")
