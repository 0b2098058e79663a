"""The model-spec grammar (reconcile/models.py): hf:, preset:, module:, PATH.py:FACTORY, token inputs, the meta
device, and the CLI around them. Models are built from transformers configuration classes: no download."""
import pytest

from reconcile import models
from reconcile.errors import UserError


def test_query_values_are_typed():
    assert models.parse_query("a=1&b=0.5&c=true&d=gelu&e=False", "x") == \
        {"a": 1, "b": 0.5, "c": True, "d": "gelu", "e": False}
    with pytest.raises(UserError, match="expected key=value"):
        models.parse_query("a", "hf:gpt2?a")


def test_hf_llama_default_config_has_its_published_parameter_count():
    spec = models.resolve("hf:llama")
    # LlamaForCausalLM(LlamaConfig()).num_parameters(): 32 layers of d 4096, FFN 11008, vocab 32000, untied
    assert spec.config["n_params"] == 6_738_415_616
    assert spec.meta and spec.token_model and spec.name == "hf:llama"
    assert spec.input_shape == (1, 1024)  # 2048 positions, capped at 1024


@pytest.mark.slow  # a 175B preset built on the meta device
def test_gpt3_175b_preset_is_within_0_1_percent_of_174_6b():
    spec = models.resolve("preset:gpt3-175b")
    n = spec.config["n_params"]
    # 96 * (12 * 12288^2 + 13 * 12288) blocks + 50257 * 12288 tied embedding + 2048 * 12288 positions + 2 * 12288
    assert n == 96 * (12 * 12288**2 + 13 * 12288) + 50257 * 12288 + 2048 * 12288 + 2 * 12288 == 174_604_259_328
    assert abs(n - 174.6e9) / 174.6e9 < 0.001
    assert spec.meta and "Table 2.1" in spec.note


def test_gpt2_small_preset_equals_hf_gpt2():
    assert models.resolve("preset:gpt2-small").config["n_params"] == models.resolve("hf:gpt2").config["n_params"] \
        == 124_439_808


def test_sequence_length_and_batch():
    assert models.resolve("hf:gpt2", batch=4, seq_len=128).input_shape == (4, 128)
    assert models.resolve("hf:gpt2", input_shape="2,64").input_shape == (2, 64)
    with pytest.raises(UserError, match="exceeds"):
        models.resolve("hf:gpt2", seq_len=5000)
    with pytest.raises(UserError, match="applies to token models"):
        models.resolve("lenet", seq_len=8)


@pytest.mark.parametrize("text, head, cls", [
    ("hf:gpt2", "causal-lm", "GPT2LMHeadModel"),
    ("hf:bert", "base", "BertModel"),
    ("hf:bert?head=masked-lm", "masked-lm", "BertForMaskedLM"),
    ("hf:vit", "image-classification", "ViTForImageClassification"),
])
def test_default_and_overridden_heads(text, head, cls):
    spec = models.resolve(text)
    assert (spec.config["head"], spec.config["model_class"]) == (head, cls)


def test_vision_model_takes_images():
    spec = models.resolve("hf:vit")
    assert not spec.token_model and spec.input_shape == (1, 3, 224, 224)


@pytest.mark.parametrize("text, fragment", [
    ("hf:nosuchmodel", "unknown transformers model type"),
    ("hf:gpt2?n_layr=2", "has no setting 'n_layr'"),
    ("hf:gpt2?head=decoder", "head must be one of"),
    ("preset:gpt5", "unknown preset"),
    ("module:reference_models.torch_models:nosuch?input_shape=1,1,28,28", "has no callable"),
    ("module:reference_models.torch_models:lenet", "needs an input shape"),
])
def test_bad_specs(text, fragment):
    with pytest.raises(UserError, match=fragment):
        models.resolve(text)


def test_module_spec_passes_the_query_as_keyword_arguments(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text("import torch.nn as nn\n"
                                        "def mlp(width=4, bias=True):\n    return nn.Linear(3, width, bias=bias)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = models.resolve("module:mynets:mlp?width=7&bias=false&input_shape=2,3")
    assert spec.name == "module:mynets:mlp?width=7&bias=false&input_shape=2,3" and spec.input_shape == (2, 3)
    module = models.torch_module(spec)
    assert module.out_features == 7 and module.bias is None


def test_example_input_is_token_ids_and_meta_models_refuse_hook_tools():
    import torch

    spec = models.resolve("hf:gpt2?n_layer=1", seq_len=16)
    given = models.example_input(spec, models.torch_module(spec))
    assert given.dtype == torch.long and tuple(given.shape) == (1, 16) and given.device.type == "cpu"
    meta = models.resolve("hf:gpt2?n_layer=1&device=meta", seq_len=16)
    module = models.torch_module(meta)
    with pytest.raises(models.MetaDeviceError, match="thop needs real tensors"):
        models.example_input(meta, module, "thop")
    assert models.example_input(meta, module, "torch_flop_counter", dispatch_level=True).device.type == "meta"


def test_flop_counter_on_a_meta_model_counts_every_matmul():
    """FlopCounterMode on the meta device: 2 FLOPs per MAC of every matmul, eager attention, T = 16.
    Per token: MACC 12 d^2 = 12 * 768^2 (one layer), ATTN 2 * 16 * 768, LOGITS 768 * 50257."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    spec = models.resolve("hf:gpt2?n_layer=1&device=meta&attn_implementation=eager", seq_len=16)
    module = models.torch_module(spec)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(models.example_input(spec, module, dispatch_level=True))
    per_token = 2 * (12 * 768**2 + 2 * 16 * 768 + 768 * 50257)
    assert counter.get_total_flops() == 16 * per_token


@pytest.mark.slow  # seconds: left out of make test-fast, run by make test
def test_flop_counter_is_blind_to_cpu_sdpa():
    """torch 2.13 FlopCounterMode has no formula for the CPU flash-attention kernel SDPA dispatches to: its number
    per token stays flat between two sequence lengths (eager grows by 2*ATTN)."""
    from reconcile import llm_report

    def shapes_at(t):
        return models.llm_shapes(models.resolve("hf:gpt2?n_layer=1&attn_implementation=sdpa", seq_len=t))

    def count(t):
        spec = models.resolve("hf:gpt2?n_layer=1&attn_implementation=sdpa", seq_len=t)
        module = models.torch_module(spec)
        return llm_report.TOOL_TOTALS["torch_flop_counter"](module, models.example_input(spec, module))

    result = llm_report.scaling("torch_flop_counter", count, shapes_at, (8, 16))
    assert result.blind and "misses 49,152 per token (2*ATTN" in result.sentence(shapes_at)  # 2 * (2 * 1 * 16 * 768)


@pytest.mark.slow  # seconds: left out of make test-fast, run by make test
def test_cli_formulas_gpt3_175b_needs_no_weight_memory(cli):
    result = cli("formulas", "preset:gpt3-175b", "--tokens", "300e9")
    assert result.returncode == 0, result.stderr
    assert "174,604,259,328" in result.stdout and "6ND (N = all parameters)" in result.stdout
    assert "3.143e+23" in result.stdout  # 6 * 174,604,259,328 * 300e9


@pytest.mark.slow  # a preset resolved in a job
def test_cli_which_train_compute_ranks_6nd_first(cli):
    result = cli("which", "preset:gpt3-175b", "3.14e23", "--quantity", "train-compute", "--tokens", "300e9",
                 "--no-measure")
    assert result.returncode == 0, result.stderr
    # the verdict line: 6 x 174,604,259,328 parameters x 300e9 tokens = 3.1429e23, 3.14e23 as printed
    assert result.stdout.startswith("preset:gpt3-175b 3.14e23: 6ND, N = all parameters (3.143e+23, equal at the "
                                    "printed precision)")


@pytest.mark.parametrize("args, fragment", [
    (["formulas", "hf:gpt2", "--seq-len", "5000"], "exceeds"),
    (["formulas", "hf:gpt2?n_layr=2"], "has no setting"),
    (["which", "lenet", "3e5", "--quantity", "train-compute", "--tokens", "3"], "needs a token model"),
])
def test_cli_bad_specs_are_one_line(cli, args, fragment):
    result = cli(*args)
    assert result.returncode == 2 and fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
