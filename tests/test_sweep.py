"""`reconcile sweep` (reconcile/sweep.py) and the spec forms it needs (hf: small-config rule, inputs, positions,
list values; tv:/timm:). Numbers are derived here: hand arithmetic, `sum(p.numel())` and FlopCounterMode on a model
this test builds itself, torchvision's own weights metadata."""
import importlib.util

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from reconcile import hf_specs, models, sweep
from reconcile.errors import UserError

if importlib.util.find_spec("torchvision") is not None:  # installed beside the venv: a CUDA build whose meta
    from reconcile.zoo_specs import import_torchvision  # registrations fail beside torch+cpu; transformers

    import_torchvision()  # imports torchvision too, so it is imported (stubbed where needed) first


def test_the_small_config_rule_by_hand():
    from transformers import LlamaConfig

    changed = hf_specs.small_overrides(LlamaConfig())
    # widths 4096, 11008 and head_dim 128 are all divisible by 16 and stay >= 4: divided by 16; heads (32) kept
    assert changed["num_hidden_layers"] == 2 and changed["hidden_size"] == 4096 // 16 == 256
    assert changed["intermediate_size"] == 11008 // 16 == 688 and "num_attention_heads" not in changed
    model = hf_specs.hf_model("llama", "base", sizes="small")
    # embed 32,000 x 256; per layer q, k, v, o 4 x 256 x 256 (32 KV heads of 8) + gate, up, down 3 x 256 x 688 +
    # two RMSNorms 2 x 256; the final norm 256
    per_layer = 4 * 256 * 256 + 3 * 256 * 688 + 2 * 256
    assert sum(p.numel() for p in model.parameters()) == 32_000 * 256 + 2 * per_layer + 256 == 9_774_336


def test_stage_depths_and_the_stage_count():
    from transformers import SwinConfig

    changed = hf_specs.small_overrides(SwinConfig())
    # depths [2, 2, 6, 2] -> one block per stage; num_layers (the stage count, len(depths)) and the per-stage head
    # counts [3, 6, 12, 24] are kept; the model widths embed_dim 96 and hidden_size 768 must stay multiples of
    # 2 x 24 = 48 (whole, even heads): 96 / 2 = 48 and 768 / 2 = 384, so the divisor is 2
    assert changed["depths"] == [1, 1, 1, 1] and "num_layers" not in changed and "num_heads" not in changed
    assert changed["embed_dim"] == 48 and changed["hidden_size"] == 384


def test_list_values_in_queries():
    assert models.parse_query("depths=2,2,18,2&act=gelu", "x") == {"depths": (2, 2, 18, 2), "act": "gelu"}
    spec = models.resolve("hf:swin?depths=1,1,3,1&embed_dim=32&num_heads=1,2,4,8")
    assert spec.config["model_class"] == "SwinForImageClassification"
    with pytest.raises(UserError, match="not a finite number"):
        models.parse_query("a=1,inf", "x")


def test_image_classification_heads_default_to_imagenet_classes():
    spec = models.resolve("hf:vit?num_hidden_layers=1")
    # ViT-Base classifier: 768 x 1000 + 1000 (ImageNet-1k), not the configuration's 2 labels
    two = models.resolve("hf:vit?num_hidden_layers=1&num_labels=2")
    assert spec.config["n_params"] - two.config["n_params"] == (768 * 1000 + 1000) - (768 * 2 + 2)


def test_encoder_decoder_gets_decoder_ids_and_audio_its_features():
    t5 = hf_specs.hf_model("t5", "base", sizes="small")
    out = t5(torch.zeros(1, 8, dtype=torch.long))  # one tensor, as reconcile feeds every model
    assert out.last_hidden_state.shape[:2] == (1, 8)
    whisper = models.resolve("hf:whisper?head=base&sizes=small")
    # input_features: 80 mel bins x 2 x max_source_positions (1500) frames, as WhisperEncoder checks
    assert whisper.input_shape == (1, 80, 3000) and not whisper.token_model


def test_positions_after_a_padding_index():
    # RoBERTa numbers positions from padding_idx + 1 = 2: 512 positions hold 510 tokens
    spec = models.resolve("hf:roberta?num_hidden_layers=1")
    assert spec.input_shape == (1, 512 - 2)


def _fake_executor(seen):
    def run(jobs):
        for job in jobs:
            seen.append(job.key)
            row = sweep.blank_row(job)
            row.update(status=sweep.TIMEOUT if job.name == "b" else sweep.TRACED, params_oracle=len(job.name))
            yield job, [row], 0.5
    return run


def test_the_driver_takes_an_executor_and_resumes(monkeypatch, tmp_path):
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(tmp_path))
    jobs = [sweep.SweepJob("hf", name) for name in ("a", "b", "cc")]
    seen = []
    rows, seconds = sweep.sweep(jobs, executor=_fake_executor(seen))
    assert [r["model"] for r in rows] == ["a", "b", "cc"] and seen == [j.key for j in jobs]
    assert rows[2]["params_oracle"] == 2
    again = []
    rows2, seconds2 = sweep.sweep(jobs, executor=_fake_executor(again))
    assert again == [jobs[1].key]  # a timed-out job is not kept; the others come from the cache
    assert rows2 == rows and seconds2[jobs[0].key] == 0.0


def test_jobs_are_small_picklable_and_keyed():
    import pickle

    job = sweep.SweepJob("hf", "gpt2", "small", ("thop",))
    assert pickle.loads(pickle.dumps(job)) == job
    assert job.key == "hf/gpt2?sizes=small&tools=thop"


@pytest.mark.slow
def test_sweep_rows_against_oracles_measured_here(monkeypatch, tmp_path):
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(tmp_path / "cache"))
    jobs = sweep.enumerate_jobs("hf", names=["gpt2", "mixtral"])
    rows, _ = sweep.sweep(jobs, executor=sweep.LocalExecutor(lanes=1))
    by_model = {r["model"]: r for r in rows}
    for name in ("gpt2", "mixtral"):
        model = hf_specs.hf_model(name, "base", sizes="small", attn_implementation="eager",
                                  experts_implementation="eager").eval()
        ids = torch.zeros(1, hf_specs.SMALL_SEQ, dtype=torch.long)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(ids)
        row = by_model[name]
        assert row["status"] == sweep.TRACED, row["reason"]
        assert row["params_oracle"] == row["params_reference"] == sum(p.numel() for p in model.parameters())
        assert row["macc_oracle"] == counter.get_total_flops() // 2 == row["macc_reference"]
        assert row["params_law"] == row["macc_law"] == sweep.EXACT


def test_unknown_registry_is_one_line(cli, tmp_path):
    result = cli("sweep", "hff", "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "unknown registry 'hff'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------ tv: and timm:
def _zoo_importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


needs_torchvision = pytest.mark.skipif(not _zoo_importable("torchvision"),
                                       reason="torchvision not importable (install it beside the venv: pip install "
                                              "--target DIR --no-deps torchvision==0.28.0, DIR on PYTHONPATH)")
needs_timm = pytest.mark.skipif(not (_zoo_importable("timm") and _zoo_importable("torchvision")),
                                reason="timm not importable (pip install --target DIR --no-deps timm==1.0.31 "
                                       "torchvision==0.28.0, DIR on PYTHONPATH)")


@pytest.mark.slow
@needs_torchvision
def test_torchvision_resnet18_meets_its_weights_metadata(monkeypatch, tmp_path):
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(tmp_path / "cache"))
    from reconcile.zoo_specs import tv_weights

    rows, _ = sweep.sweep(sweep.enumerate_jobs("torchvision", names=["resnet18"]),
                          executor=sweep.LocalExecutor(lanes=1))
    meta = tv_weights("resnet18").meta  # torchvision's own numbers: 11,689,512 params, 1.814 GFLOPS (MACC)
    row = rows[0]
    assert row["params_reference"] == meta["num_params"] == row["params_oracle"]
    assert round(row["macc_reference"] / 1e9, 3) == meta["_ops"]


@pytest.mark.slow
@needs_timm
def test_timm_spec_counts_its_parameters():
    spec = models.resolve("timm:resnet18")
    assert spec.input_shape == (1, 3, 224, 224)
    from reconcile.runner import trace_ir

    traced = trace_ir(spec, "torch")
    from conventions.formulas import model_counts

    assert model_counts(traced.model)[-1][1].params == 11_689_512  # resnet18: torchvision's num_params too


def test_zoo_specs_without_the_library_are_one_line(monkeypatch):
    from reconcile import zoo_specs

    monkeypatch.setattr(zoo_specs, "_available", lambda form: f"{form}: specs need it, which is not installed here")
    with pytest.raises(UserError, match="not installed here"):
        models.resolve("timm:resnet18")


def test_patch_inputs_of_grid_thw_vision_towers_by_hand():
    from transformers import AutoConfig

    spec = models.resolve("hf:qwen2_5_vl_vision?sizes=small&inputs=grid_thw")
    # 8 x 8 patches of 3 channels x 2 frames x 14 x 14 pixels, all images in one sequence (no batch dimension)
    assert spec.input_shape == (hf_specs.PATCH_GRID ** 2, 3 * 2 * 14 * 14) == (64, 1176)
    assert hf_specs.patch_tail(AutoConfig.for_model("qwen2_5_vl_vision")) == (64, 1176)


def test_settings_keyed_by_layer_follow_the_new_depth():
    from transformers import AutoConfig

    text = AutoConfig.for_model("gemma4").text_config  # 30 layers; per_layer_config keys '05', '11', ...
    changed = hf_specs.small_overrides(text)
    assert changed["num_hidden_layers"] == 2 and changed["per_layer_config"] == {}
    assert len(changed["layer_types"]) == 2


def test_multimodal_rope_sections_follow_the_head_width():
    from transformers import AutoConfig

    changed = hf_specs.small_overrides(AutoConfig.for_model("glm4v_text"))
    # head_dim 4096 / 32 = 128: 64 rotary frequencies; the model's default sections [8, 12, 12] (1 : 1.5 : 1.5).
    # Divisor 16 leaves 128 / 16 / 2 = 4 frequencies: [1, 1.5, 1.5] is not whole; 8 leaves 8: [2, 3, 3]
    assert changed["hidden_size"] == 4096 // 8 == 512
    assert changed["rope_parameters"]["mrope_section"] == [2, 3, 3]
    # a configuration's own sections: Qwen2-VL-style [16, 24, 24] for head_dim 128 (64 frequencies) at divisor 16
    # (4 frequencies): [1, 1.5, 1.5] not whole, at 8: [2, 3, 3]
    assert hf_specs._sections_at((16, 24, 24), 64, 16) is None
    assert hf_specs._sections_at((16, 24, 24), 64, 8) == (2, 3, 3)


def test_glm4v_text_small_runs_with_its_sections():
    model = hf_specs.hf_model("glm4v_text", "base", sizes="small")
    # the rotary embedding's own frequency count equals the sections' sum: head_dim 512 / 32 = 16, 8 frequencies
    assert model.rotary_emb.inv_freq.shape[0] == 2 + 3 + 3
    assert model(torch.zeros(1, 8, dtype=torch.long)).last_hidden_state.shape == (1, 8, 512)


def test_frames_first_features_and_their_mask():
    from transformers import AutoConfig

    parakeet = AutoConfig.for_model("parakeet_encoder")  # FastConformer: (frames, mel bins)
    # 100 frames rounded up to a multiple of subsampling_factor 8: 104; num_mel_bins 80
    assert hf_specs.input_tail("input_features", parakeet) == (104, 80)
    canary = AutoConfig.for_model("canary")  # the mel bins of its encoder_config: 128
    assert hf_specs.input_tail("input_features", canary) == (104, 128)
    whisper = AutoConfig.for_model("whisper")  # (mel bins, frames): 80 x 2 x max_source_positions 1500
    assert hf_specs.input_tail("input_features", whisper) == (80, 3000)
    mask = hf_specs.extra_input("input_features_mask", parakeet, torch.zeros(1, 104, 80))
    assert mask.shape == (1, 104) and int(mask.sum()) == 104
    qwen3_asr = AutoConfig.for_model("qwen3_asr_encoder")  # (mel bins, frames): the mask covers the last dim
    assert hf_specs.extra_input("input_features_mask", qwen3_asr, torch.zeros(1, 128, 100)).shape == (1, 100)
    # a required mask is made, an optional one is not (Whisper's forward takes none)
    assert sweep._extra_inputs("qwen3_asr_encoder") == ("input_features_mask",)
    assert sweep._extra_inputs("whisper") == ()


def test_parakeet_encoder_subsamples_the_frames_first_input():
    spec = models.resolve("hf:parakeet_encoder?head=base&sizes=small")
    model = hf_specs.hf_model("parakeet_encoder", "base", sizes="small")
    out = model(torch.zeros(spec.input_shape))
    # three stride-2 convolutions (kernel 3, padding 1) over 104 frames: 52, 26, 13
    assert spec.input_shape == (1, 104, 80) and out.last_hidden_state.shape[1] == 13


def test_unset_head_dim_and_key_value_heads_take_llama_defaults():
    from transformers import AutoConfig

    changed = hf_specs.small_overrides(AutoConfig.for_model("nemotron"))  # num_key_value_heads None
    assert changed["num_key_value_heads"] == 48
    changed = hf_specs.small_overrides(AutoConfig.for_model("ministral"))  # head_dim None
    # 4096 / 16 = 256 over 32 heads
    assert changed["hidden_size"] == 256 and changed["head_dim"] == 256 // 32 == 8
    model = hf_specs.hf_model("ministral", "base", sizes="small")
    # embed 32,000 x 256; per layer q, o 2 x 256 x 256, k, v (8 KV heads of 8) 2 x 256 x 64, gate, up, down
    # 3 x 256 x 896, two RMSNorms 2 x 256; the final norm 256
    per_layer = 2 * 256 * 256 + 2 * 256 * 64 + 3 * 256 * 896 + 2 * 256
    assert sum(p.numel() for p in model.parameters()) == 32_000 * 256 + 2 * per_layer + 256


def test_video_models_take_their_clip_length():
    from transformers import AutoConfig

    # VideoMAE: num_frames 16 of 3 x 224 x 224; VideoPrism's vision tower: num_frames 16 of 3 x 288 x 288
    assert hf_specs.input_tail("pixel_values", AutoConfig.for_model("videomae")) == (16, 3, 224, 224)
    assert hf_specs.input_tail("pixel_values_videos", AutoConfig.for_model("videoprism_vision_model")) == \
        (16, 3, 288, 288)
    assert hf_specs.input_tail("pixel_values", AutoConfig.for_model("vit")) == (3, 224, 224)


@pytest.mark.slow
def test_videomae_small_runs_on_its_clip():
    model = hf_specs.hf_model("videomae", "base", sizes="small")
    # 16 frames / tubelet 2 x (224 / 16)^2 patches = 8 x 196 = 1,568 tokens
    assert model(torch.zeros(1, 16, 3, 224, 224)).last_hidden_state.shape[1] == 8 * 196 == 1568


def test_a_reason_names_no_install_path():
    """A failure quoting a module's file keeps the path from its package on, whatever the machine's venv."""
    from reconcile.sweep import short_reason

    venv = "/home/u/.venv/lib/python3.11/site-packages/"
    text = (f"UserError: model spec 'hf:x': building x failed: ValueError: Could not find X neither in "
            f"<module 'transformers.models.x' from '{venv}transformers/models/x/__init__.py'>")
    assert short_reason(text) == ("building x failed: ValueError: Could not find X neither in <module "
                                  "'transformers.models.x' from 'transformers/models/x/__init__.py'>")
    assert short_reason("a /usr/lib/python3/dist-packages/torch/nn.py b") == "a torch/nn.py b"


def test_backbone_outputs_follow_the_cut_depth():
    from transformers import AutoConfig

    changed = hf_specs.small_overrides(AutoConfig.for_model("rf_detr"))["backbone_config"]
    # 4 outputs at stages 2, 5, 8, 11 of 12: depth max(2, 4) = 4, the outputs its last 4 stages
    assert changed["num_hidden_layers"] == 4 and changed["out_indices"] == [1, 2, 3, 4]
    assert changed["out_features"] == ["stage1", "stage2", "stage3", "stage4"]
    changed = hf_specs.small_overrides(AutoConfig.for_model("depth_pro"))["image_model_config"]
    assert changed["num_hidden_layers"] == 2 and changed["out_features"] == ["stage2"]
    # transformers' own validator (backbone_utils: out_features a subset of stage_names) accepts the result
    assert hf_specs.hf_config("rf_detr", {}, sizes="small").backbone_config.out_features[-1] == "stage4"


def test_integer_out_features_are_widths_and_group_counts_follow_the_width():
    from transformers import AutoConfig

    changed = hf_specs.small_overrides(AutoConfig.for_model("efficientloftr"))
    # channels [64, 64, 128, 256] and hidden_size 256 (which must equal the last) divided by the same 16
    assert changed["out_features"] == [4, 4, 8, 16] and changed["hidden_size"] == 16
    changed = hf_specs.small_overrides(AutoConfig.for_model("mimi_decoder"))
    # upsample_groups 512 == hidden_size 512 (a depthwise upsample): both / 16
    assert changed["hidden_size"] == changed["upsample_groups"] == 32


def test_unset_routed_expert_settings_get_numbers():
    from transformers import AutoConfig

    changed = hf_specs.small_overrides(AutoConfig.for_model("dots1"))
    assert changed["n_shared_experts"] == hf_specs.SMALL_SHARED_EXPERTS == 1
    text = hf_specs.small_overrides(AutoConfig.for_model("diffusion_gemma"))["text_config"]
    assert text["moe_intermediate_size"] == text["intermediate_size"] and text["top_k_experts"] == 2


def test_a_missing_library_is_named():
    from transformers.utils.import_utils import NATTEN_IMPORT_ERROR

    from reconcile.errors import missing_library

    assert missing_library(ImportError(NATTEN_IMPORT_ERROR.format("DinatModel"))) == "natten"
    assert missing_library(ModuleNotFoundError("No module named 'scipy.special'", name="scipy.special")) == "scipy"
    assert missing_library(ValueError("scipy")) is None
    with pytest.raises(UserError, match=r"needs library natten \(not installed\)"):
        models.resolve("hf:dinat?sizes=small")


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["dbrx", "esm", "funnel", "t5gemma2_encoder", "voxtral_realtime_text"])
def test_types_whose_defaults_do_not_build_build_and_conserve(model_type):
    """Completed settings (CONFIG_COMPLETIONS), a tuple mapping with no architectures (funnel), a class the package
    does not export (voxtral_realtime_text, whose forward gets its time conditioning, CONDITION_INPUT_BY_TYPE): built
    at the small config, and every parameter is a layer row's."""
    from conventions import ir
    from conventions.formulas import model_counts
    from reconcile.frontends.torch_ir import from_module

    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    model = hf_specs.hf_model(model_type, "base", sizes="small", attn_implementation="eager")
    named = MODEL_MAPPING_NAMES[model_type]  # transformers' own base class for the type (a tuple's first)
    assert type(model).__name__ == (named if isinstance(named, str) else named[0])
    graph = from_module(model, (1, 8), model_type, input_dtype=torch.long)
    assert model_counts(graph)[-1][1].params == sum(p.numel() for p in model.parameters())
    assert not [layer for layer in graph.layers if layer.kind == ir.GAP]


def test_one_width_divisor_for_a_composite_whose_parts_read_each_other():
    config = hf_specs.hf_config("dots3_note", {}, sizes="small", head="base")
    text, vision, audio = config.text_config, config.vision_config, config.audio_config
    # the text part alone takes 4 (its 128 heads: 5120 / 4 = 1280 = 5 x 256, 5120 / 8 = 640 is not a multiple of
    # 2 x 128); the vision part alone would take 16 (1536 / 16 = 96 = 2 x 2 x 24): every part takes 4, and the
    # adapters' widths (the vision width in, the text width out) follow
    assert text.hidden_size == 5120 // 4 and vision.hidden_size == 1536 // 4 == vision.adapter_in_dim
    assert vision.adapter_out_dim == audio.adapter_out_dim == text.hidden_size
    blt = hf_specs.hf_config("blt", {}, sizes="small", head="base")
    # the local encoder's intermediate width 2730 = 2 x 1365 takes 2 at most: every part is halved (encoder 1024,
    # global 2048, which the encoder reads as hidden_size_global); the hash-embedding buckets are 500,002 / 16,
    # rounded up
    assert blt.encoder_config.hidden_size == 1024 // 2 and blt.global_config.hidden_size == 2048 // 2
    assert blt.encoder_config.hidden_size_global == blt.global_config.hidden_size
    assert blt.encoder_hash_byte_group_vocab == 31_251 and 31_250 * 16 < 500_002 <= 31_251 * 16


def test_codec_decoders_take_latents_of_their_hidden_width():
    config = hf_specs.hf_config("mimi_decoder", {}, sizes="small", head="base")
    # (hidden_size, the frames of CODEC_SAMPLES = 2^14 samples at one frame per product of the upsampling ratios)
    hop = 1
    for ratio in config.upsampling_ratios:
        hop *= ratio
    assert hf_specs.input_tail("latents", config) == (config.hidden_size, 2 ** 14 // hop)
