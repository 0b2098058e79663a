"""Corrupted golden files: one line naming the file, the line and the reason (never a pandas traceback), and a
golden with an extra column or missing rows fails instead of passing as ok."""
import pytest

from reconcile import golden
from reconcile.cli import main
from reconcile.errors import UserError

HEADER = "model,layer,metric,quantity,value,status\n"
GOOD = HEADER + "lenet,conv1,macs,compute,288000,ok\nlenet,__model__,,compute,,error\n"


@pytest.mark.parametrize("content, where, says", [
    (b"", 1, "empty"),
    (HEADER.encode() + b"lenet,conv1,macs,compute,288000,ok,extra\n", 2, "7 fields, expected 6"),
    (HEADER.encode() + b"lenet,conv1,m\x00acs,compute,1,ok\n", 2, "binary data"),
    (HEADER.encode() + b"lenet,conv1,macs,compute,1,ok\n\xff\xfe\n", 3, "not UTF-8 text"),
    (HEADER.encode() + b'lenet,"conv1,macs,compute,1,ok\n', 2, "malformed CSV"),
    (HEADER.encode() + b"lenet,conv1,macs,compute,lots,ok\n", 2, "value 'lots' is not a number"),
    (HEADER.encode() + b"lenet,conv1,macs,compute,nan,ok\n", 2, "value is NaN"),
    (HEADER.encode() + b"lenet,conv1,macs,compute,,ok\n", 2, "an ok row needs a value"),
    (HEADER.encode() + b"lenet,conv1,macs,compute,5,fine\n", 2, "status 'fine' is not one of"),
    (b"model,layer,metric,quantity,value,status,note\nlenet,conv1,macs,compute,1,ok,x\n", 1, "extra columns note"),
    (b"model,layer,metric,value,status\nlenet,conv1,macs,1,ok\n", 1, "missing columns quantity"),
])
def test_malformed_golden_is_one_line(tmp_path, content, where, says):
    path = tmp_path / "thop-0.1.1.csv"
    path.write_bytes(content)
    with pytest.raises(UserError) as error:
        golden.read(path)
    message = str(error.value)
    assert message.startswith(f"{path}:{where}: ") and says in message and "\n" not in message, message


def test_a_good_golden_reads(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text(GOOD)
    df = golden.read(path)
    assert list(df.value) == [288000, None] and list(df.status) == ["ok", "error"]


@pytest.fixture(scope="module")
def lenet_thop_golden(tmp_path_factory):
    """The real golden rows of thop on lenet (14 rows), from the committed golden."""
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "golden" / "thop-0.1.1.post2209072238.csv"
    lines = source.read_text().splitlines(keepends=True)
    return lines[0], [line for line in lines[1:] if line.startswith("lenet,")]


def check(tmp_path, capsys, header, rows) -> tuple[int, str, str]:
    (tmp_path / "thop-0.1.1.post2209072238.csv").write_text(header + "".join(rows))
    try:
        main(["check", "--tools", "thop", "--models", "lenet", "--golden-dir", str(tmp_path), "--quiet"])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow  # seconds: left out of make test-fast, run by make test
def test_goldens_through_check(tmp_path, capsys, lenet_thop_golden):
    header, rows = lenet_thop_golden
    assert len(rows) == 14
    code, out, _ = check(tmp_path, capsys, header, rows)
    assert code == 0 and "ok       thop" in out
    code, out, _ = check(tmp_path, capsys, header, rows[1:])  # a row missing: fails, names it
    assert code == 1 and "1 of 14 rows differ" in out and "a new row, not in the golden" in out
    code, _, err = check(tmp_path, capsys, header.strip() + ",note\n", [r.strip() + ",x\n" for r in rows])
    assert code == 2 and "extra columns note" in err and len(err.strip().splitlines()) == 1
