"""Outputs: refused before any job when they cannot be written, written only inside --out, never through a
symlink, with the umask's mode, switched in as one set with a manifest (run id + sha256 of every file) written
last; an interrupted write leaves the previous complete set (or the new one), never a mix."""
import os
import re
import signal
from pathlib import Path

import pytest

from reconcile import api
from reconcile.cli import main


def run_main(args, capsys) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("command", [["run", "--models", "lenet", "--tools", "thop"],
                                     ["matrix", "--tool", "thop", "--versions", "0.1.1.post2209072238",
                                      "--models", "lenet"]])
def test_empty_out_is_refused_and_the_current_directory_untouched(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "records.csv").write_text("a user's own file\n")
    code, err = run_main(command + ["--out", ""], capsys)
    assert code == 2 and "--out is empty" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.csv"]
    assert (tmp_path / "records.csv").read_text() == "a user's own file\n"


def unwritable_dir(tmp_path: Path) -> str:
    if os.geteuid() == 0:  # root writes through permission bits; /proc refuses everyone
        return "/proc/reconcile-test-out"
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return str(folder / "out")


@pytest.mark.parametrize("case", ["file", "unwritable", "records_is_a_dir"])
def test_unusable_out_is_refused_before_any_job(tmp_path, capsys, monkeypatch, case):
    started = []
    monkeypatch.setattr(api, "execute", lambda *a, **k: started.append(1))
    if case == "file":
        out = tmp_path / "a_file"
        out.write_text("x")
        says = "is a file"  # click.Path(file_okay=False) says it first
    elif case == "unwritable":
        out, says = unwritable_dir(tmp_path), "cannot create the directory"
    else:
        out = tmp_path / "out"
        (out / "records.csv").mkdir(parents=True)
        says = "records.csv is a directory"
    code, err = run_main(["run", "--models", "lenet", "--tools", "thop", "--out", str(out)], capsys)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not started


def test_check_update_on_an_unwritable_golden_dir_is_one_line_before_the_run(tmp_path, capsys, monkeypatch):
    from reconcile import golden

    monkeypatch.setattr(golden, "available_tools", lambda names: pytest.fail("ran before checking the folder"))
    code, err = run_main(["check", "--update", "--tools", "thop", "--models", "lenet", "--golden-dir",
                          unwritable_dir(tmp_path)], capsys)
    assert code == 2 and "--golden-dir" in err and len(err.strip().splitlines()) == 1, err


def first_set():
    return {"records.csv": "model\nold\n", "report.md": "# old\n", "chart_old.png": b"\x89PNG old"}


def test_a_symlinked_output_is_replaced_not_written_through(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere.png"
    out.mkdir()
    elsewhere.write_bytes(b"precious")
    (out / "chart_lenet.png").symlink_to(elsewhere)
    (out / "report.md").symlink_to(tmp_path / "elsewhere.md")
    api.write_set(out, {"chart_lenet.png": b"\x89PNG new", "report.md": "# new\n"})
    assert elsewhere.read_bytes() == b"precious" and not (tmp_path / "elsewhere.md").exists()
    assert not (out / "chart_lenet.png").is_symlink() and (out / "chart_lenet.png").read_bytes() == b"\x89PNG new"
    assert api.check_outputs(out) == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_modes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        api.write_set(tmp_path, first_set())
        api.write_atomic(tmp_path / "single.csv", "x\n")
    finally:
        os.umask(old)
    for path in [tmp_path / n for n in first_set()] + [tmp_path / api.MANIFEST, tmp_path / "single.csv"]:
        assert path.stat().st_mode & 0o777 == mode, path


def test_only_files_the_previous_manifest_lists_are_removed(tmp_path):
    api.write_set(tmp_path, first_set())
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "chart_mine.png").write_bytes(b"not from a run")
    api.write_set(tmp_path, {"records.csv": "model\nnew\n", "report.md": "# new\n", "chart_new.png": b"new"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [api.MANIFEST, "chart_mine.png", "chart_new.png",
                                                          "notes.txt", "records.csv", "report.md"]


def test_an_interrupt_while_staging_leaves_the_previous_set(tmp_path, monkeypatch):
    api.write_set(tmp_path, first_set())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_stage, calls = api._stage, []

    def stage(path, data):
        calls.append(path.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_stage(path, data)

    monkeypatch.setattr(api, "_stage", stage)
    with pytest.raises(KeyboardInterrupt):
        api.write_set(tmp_path, {"records.csv": "model\nnew\n", "report.md": "# new\n", "chart_new.png": b"new",
                                 "report.html": "<p>new</p>"})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp file left either
    assert api.check_outputs(tmp_path) == []


def test_a_signal_while_switching_in_waits_for_the_whole_set(tmp_path, monkeypatch):
    api.write_set(tmp_path, first_set())
    real_replace, sent = os.replace, []

    def replace(src, dst):
        if not sent:
            sent.append(1)
            # Ctrl-C between the first and the second rename. raise_signal delivers to this thread before it
            # returns; os.kill(getpid()) may go to another of the process's threads and land after the block
            signal.raise_signal(signal.SIGINT)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    new = {"records.csv": "model\nnew\n", "report.md": "# new\n"}
    with pytest.raises(KeyboardInterrupt):
        api.write_set(tmp_path, new)
    assert sent and api.check_outputs(tmp_path) == []
    assert (tmp_path / "records.csv").read_text() == "model\nnew\n" and (tmp_path / "report.md").read_text() == "# new\n"


def test_a_mixed_set_is_detected_by_the_manifest(tmp_path):
    api.write_set(tmp_path, first_set())
    (tmp_path / "report.md").write_text("# from another run\n")
    assert api.check_outputs(tmp_path) == [f"report.md: not the file run "
                                           f"{api.read_manifest(tmp_path)['run_id']} wrote"]


# ------------------------------------------------------------------------------------------------ symlinks
def test_a_symlinked_models_folder_is_never_written_through_nor_cleaned(tmp_path, capsys):
    """Before: stale-file cleanup followed a symlinked directory inside --out and deleted a user's file
    elsewhere."""
    from reconcile.errors import UserError

    out, theirs = tmp_path / "out", tmp_path / "theirs"
    theirs.mkdir()
    api.write_set(out, {"report.md": "# one\n", "models/lenet.md": "# lenet\n", "models/chart_lenet.svg": "<svg/>"})
    (out / "models" / "lenet.md").unlink()
    (out / "models" / "chart_lenet.svg").unlink()
    (out / "models").rmdir()
    (out / "models").symlink_to(theirs, target_is_directory=True)
    (theirs / "chart_lenet.svg").write_text("the user's own file")
    (theirs / "lenet.md").write_text("the user's notes")
    api.write_set(out, {"report.md": "# two\n"})  # the previous set's models/ files are stale: not followed
    assert (theirs / "chart_lenet.svg").read_text() == "the user's own file"
    assert (theirs / "lenet.md").read_text() == "the user's notes"
    with pytest.raises(UserError, match="symbolic link"):
        api.write_set(out, {"report.md": "# three\n", "models/lenet.md": "# lenet\n"})
    assert sorted(p.name for p in theirs.iterdir()) == ["chart_lenet.svg", "lenet.md"]
    code, err = run_main(["run", "--models", "lenet", "--tools", "thop", "--out", str(out)], capsys)
    assert code == 2 and "models is a symbolic link" in err and len(err.strip().splitlines()) == 1, err


def test_a_stale_symlink_is_removed_not_its_target(tmp_path):
    out = tmp_path / "out"
    api.write_set(out, {"report.md": "# one\n", "models/chart_x.svg": "<svg/>"})
    (out / "models" / "chart_x.svg").unlink()
    (out / "models" / "chart_x.svg").symlink_to(tmp_path / "precious.txt")
    (tmp_path / "precious.txt").write_text("keep")
    api.write_set(out, {"report.md": "# two\n"})
    assert not (out / "models" / "chart_x.svg").is_symlink() and (tmp_path / "precious.txt").read_text() == "keep"


# ------------------------------------------------------------------------------------------------ injection
NAMED_NET = "import torch.nn as nn\n\ndef net(**options):\n    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())\n"


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    """A run of the document's formulas on a model whose spec text holds a Markdown link to javascript:."""
    from reconcile import models
    from reconcile.report import write_outputs

    folder = tmp_path_factory.mktemp("hostile")
    (folder / "a b.py").write_text(NAMED_NET)
    (folder / "a_b.py").write_text(NAMED_NET)
    specs = [models.resolve(f"{folder / 'a b.py'}:net?input_shape=1,1,8,8&tag=[x](javascript:alert(1))"),
             models.resolve(f"{folder / 'a_b.py'}:net?input_shape=1,1,8,8&tag=<img src=x onerror=alert(1)>")]
    records = api.execute(api.plan([], "document", specs), 60)
    write_outputs(records, folder / "out", records.attrs["specs"])
    return folder / "out", specs


@pytest.mark.slow  # runs tools or traces in job processes
def test_model_names_are_text_in_html_and_markdown(hostile_report):
    from markdown_it import MarkdownIt

    out, specs = hostile_report
    html = (out / "report.html").read_text()
    assert "javascript:" not in " ".join(re.findall(r"href='([^']*)'", html))
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    permissive = MarkdownIt("commonmark")
    permissive.validateLink = lambda url: True  # as a viewer that does not filter link schemes would render it
    for page in [out / "report.md"] + sorted((out / "models").glob("*.md")):
        tokens = permissive.parse(page.read_text())
        hrefs = [t.attrGet("href") for token in tokens for t in (token.children or []) if t.type == "link_open"]
        assert hrefs and not [h for h in hrefs if "javascript" in h.lower()], (page, hrefs)
    # the summary links each model's page under its safe stem, and both pages exist
    summary = (out / "report.md").read_text()
    for spec in specs:
        assert f"(models/{__import__('reconcile').identity.stem(spec.name)}.md)" in summary


@pytest.mark.slow  # runs tools or traces in job processes
def test_a_b_and_a_underscore_b_get_a_page_each(hostile_report):
    """Before: `a b.py` and `a_b.py` shared one model page, and one was silently lost."""
    out, specs = hostile_report
    pages = sorted(p.read_text() for p in (out / "models").glob("*.md"))
    assert len(pages) == 2 and all(any(spec.name.split("?")[0].split("/")[-1] in page for page in pages)
                                   for spec in specs)


def test_formulas_csv_quotes_fields(tmp_path, capsys):
    import csv
    import io

    path = tmp_path / "net.prototxt"
    path.write_text('name: "t"\ninput: "data"\ninput_shape { dim: 1 dim: 1 dim: 8 dim: 8 }\n'
                    'layer { name: "conv,\\"1\\"" type: "Convolution" bottom: "data" top: "c" '
                    'convolution_param { num_output: 2 kernel_size: 3 } }\n')
    try:
        main(["formulas", str(path), "--format", "csv"])
    except SystemExit as exc:
        assert not exc.code
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    # Conv 1->2, 3x3 on 8x8 with bias: 6x6 outputs, params 2*9 + 2 = 20, MACC 2*9*36 = 648, FLOPs 2*648 + 72
    assert rows == [["layer", "kind", "params", "macc", "flops"], ['conv,"1"', "conv", "20", "648", "1368"],
                    ["__total__", "", "20", "648", "1368"]]
