"""One identity per model (reconcile/identity.py): a spec is user text, never a file name as it stands. Random
spec texts map to distinct safe stems inside the folder; traversal, absolute paths, long and colliding names,
and user files named like reference models all stay where they belong."""
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference_models
from reconcile import cache, identity, models
from reconcile.api import plan, split_specs
from reconcile.runner import Job

SEPARATORS = ["/", "\\", "..", ".", ":", "?", "&", "=", ",", " ", "\0", "\n", "~", "$HOME", "%2e%2e", "｡", "／"]
spec_texts = st.one_of(
    st.text(max_size=1000),  # any unicode, surrogates and controls included
    st.lists(st.one_of(st.sampled_from(SEPARATORS), st.text(alphabet="abc_.-", max_size=5)), max_size=200)
    .map("".join),
    st.sampled_from(list(reference_models.MODELS)),
    st.integers(0, 1000).map(lambda n: "../" * (n % 40) + "x" * n),
)


@pytest.mark.slow  # 400 generated lists of spec texts
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(spec_texts, min_size=1, max_size=12, unique=True))
def test_random_spec_texts_get_distinct_safe_stems_inside_the_folder(tmp_path, texts):
    stems = [identity.stem(text) for text in texts]
    assert len(set(stems)) == len(stems), texts  # distinct texts, distinct stems
    for text, stem in zip(texts, stems):
        # one path component of safe ASCII, short enough for any file system with room for a key and suffix
        assert stem.isascii() and 0 < len(stem) <= identity.STEM_TEXT_CHARS + 1 + identity.HASH_CHARS, stem
        assert "/" not in stem and "\0" not in stem and stem not in (".", "..") and not stem.startswith("."), stem
        path = identity.inside(tmp_path, f"{stem}-{'0' * 24}.json")
        assert path.parent.resolve() == tmp_path.resolve()
        # a reference name keeps its own stem; any other text can never take one
        assert (stem == text) == identity.is_reference(text)
        if not identity.is_reference(text):
            assert stem not in reference_models.MODELS


def test_a_few_stems_are_really_written(tmp_path):
    texts = ["a b.py:net", "a_b.py:net", "../../etc/passwd", "/abs/x.py:f", "hf:" + "x" * 300, "..", "lenet",
             "lenet.py:build", "é.py:f", "a\\b.py:f"]
    for text in texts:
        (identity.inside(tmp_path, identity.stem(text) + ".md")).write_text(text)
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == sorted(texts)  # none lost, none outside
    assert identity.stem("a b.py:net") != identity.stem("a_b.py:net")
    assert identity.stem("lenet") == "lenet" and identity.stem("lenet.py:build") != "lenet"


@pytest.mark.parametrize("parts", [("..",), (".",), ("a/b",), ("",), ("a\0b",), ("x", "..")])
def test_inside_refuses_unsafe_components(tmp_path, parts):
    with pytest.raises(ValueError):
        identity.inside(tmp_path, *parts)


def test_inside_refuses_a_symlinked_folder_that_leaves(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "cache" / "results").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError):
        identity.inside(tmp_path / "cache", "results", "x.json")


def write_net(path: Path) -> Path:
    path.write_text("import torch.nn as nn\n\ndef net(**options):\n    return nn.Conv2d(1, 2, 3)\n")
    return path


def test_a_traversing_or_absolute_spec_keeps_its_cache_files_in_the_cache(tmp_path, monkeypatch):
    """Before: a module: query holding ../ wrote cache files outside the cache, an absolute PATH.py:FACTORY wrote
    them beside the user's source."""
    root = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(root))
    (tmp_path / "src").mkdir()
    source = write_net(tmp_path / "src" / "net.py")
    specs = [models.resolve(f"{source}:net?input_shape=1,1,8,8&tag=../../../../outside"),
             models.resolve(f"{source}:net?input_shape=1,1,8,8"),
             models.from_model_file(f"{source}:net", "1,1,8,8")]
    for spec in specs:
        job = Job("thop", spec)
        path = cache.path_of(job)
        assert path.parent.resolve() == (root / "results" / "thop").resolve(), path
        assert cache.store(job, [], ())
        assert cache.load(job) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "src"]
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["net.py"]


def test_long_specs_have_short_file_names(tmp_path, monkeypatch):
    """A realistic 230-character hf: spec used to run every job, then die on 'File name too long'."""
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    text = ("hf:gpt2?n_layer=2&n_embd=64&n_head=2&vocab_size=1000&n_positions=128&resid_pdrop=0.0&embd_pdrop=0.0"
            "&attn_pdrop=0.0&layer_norm_epsilon=1e-05&initializer_range=0.02&scale_attn_weights=true"
            "&summary_first_dropout=0.1&reorder_and_upcast_attn=false")
    assert len(text) >= 230
    spec = models.ModelSpec(text, (1, 128), torch_factory="reconcile.hf_specs:hf_model", token_model=True)
    for path in (cache.path_of(Job("torch_flop_counter", spec)),
                 identity.inside(tmp_path, "models", identity.stem(text) + ".md")):
        assert len(path.name) < 120
    assert cache.store(Job("torch_flop_counter", spec), [], ())


def test_a_users_lenet_is_not_the_reference_lenet(tmp_path):
    """A user's lenet.py:build (or lenet.prototxt) is named after its spec text, so it never takes the reference
    model's records, pages, cache entries or published verdicts."""
    source = write_net(tmp_path / "lenet.py")
    spec = models.from_model_file(f"{source}:net", "1,1,8,8")
    assert spec.name == f"{source}:net" and spec.name != "lenet"
    assert identity.stem(spec.name) != "lenet"
    (tmp_path / "lenet.prototxt").write_text(
        (Path(reference_models.PROTOTXT_DIR) / "lenet.prototxt").read_text())
    proto = models.resolve(str(tmp_path / "lenet.prototxt"))
    assert proto.name == str(tmp_path / "lenet.prototxt")
    jobs = plan("lenet", "thop", [spec, proto])  # all three in one run: three models
    assert [job.spec.name for job in jobs] == [spec.name, proto.name, "lenet"]
    assert len({identity.identify(job.spec).source_hash for job in jobs}) == 3


def test_models_keeps_a_specs_own_commas():
    assert split_specs("lenet,module:m:f?input_shape=1,3,224,224&depths=2,2,18,2,sepnet") == \
        ["lenet", "module:m:f?input_shape=1,3,224,224&depths=2,2,18,2", "sepnet"]
    assert split_specs("a b.py:net?input_shape=1,1,8,8,a_b.py:net?input_shape=1x1x8x8") == \
        ["a b.py:net?input_shape=1,1,8,8", "a_b.py:net?input_shape=1x1x8x8"]
    # a list of input names (the hf sweep's specs) goes on; a reference model's name starts the next model
    assert split_specs("hf:informer?inputs=past_values,past_time_features&lags=3,lenet,hf:bert?inputs=a,b") == \
        ["hf:informer?inputs=past_values,past_time_features&lags=3", "lenet", "hf:bert?inputs=a,b"]


def test_source_hash_follows_the_files_the_spec_names_and_nothing_else(tmp_path, monkeypatch):
    source = write_net(tmp_path / "net.py")
    spec = models.from_model_file(f"{source}:net", "1,1,8,8")
    before = identity.identify(spec).source_hash
    (tmp_path / "unrelated.py").write_text("x = 1\n")  # the working directory's other files play no part
    monkeypatch.chdir(tmp_path)
    assert identity.identify(spec).source_hash == before
    source.write_text(source.read_text().replace("Conv2d(1, 2, 3)", "Conv2d(1, 4, 3)"))
    os.utime(source, ns=(1, 1))  # even with an old modification time
    assert identity.identify(spec).source_hash != before
