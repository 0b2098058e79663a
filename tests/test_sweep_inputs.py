"""The inputs and settings `hf:` specs make from a configuration for the model types the plain rule missed (time
series, audio feature layouts, token streams, unset settings; reconcile/hf_specs.py). Numbers are hand arithmetic
from the configuration's defaults, `sum(p.numel())` and FlopCounterMode on a model this test builds itself."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from reconcile import hf_specs, sweep


def _config(model_type, **kwargs):
    from transformers import AutoConfig

    return AutoConfig.for_model(model_type, **kwargs)


def test_time_series_inputs_by_hand():
    # prediction_length unset: 24 (UNSET_SETTINGS); context_length follows it; lags (1..7): 24 + 7 = 31 values
    config = hf_specs.hf_config("time_series_transformer", {})
    assert config.prediction_length == config.context_length == 24
    assert hf_specs.input_tail("past_values", config) == (24 + 7,)
    # PatchTST: context_length 32, one input channel, (length, channels); TimesFM: its 512-step context
    assert hf_specs.input_tail("past_values", _config("patchtst")) == (32, 1)
    assert hf_specs.input_tail("past_values", _config("timesfm")) == (512,)
    # the companions the forward requires, none it leaves optional (PatchTST's past_observed_mask)
    assert sweep._extra_inputs("time_series_transformer") == ("past_observed_mask", "past_time_features")
    assert sweep._extra_inputs("timesfm") == ("freq", "past_values_padding")
    assert sweep._extra_inputs("patchtst") == ()
    given = torch.zeros(1, 31)
    assert hf_specs.extra_input("past_time_features", config, given).shape == (1, 31, 0)  # num_time_features 0
    assert int(hf_specs.extra_input("past_observed_mask", config, given).sum()) == 31
    assert hf_specs.extra_input("freq", _config("timesfm"), torch.zeros(1, 512)).shape == (1, 1)


def test_audio_feature_layouts_by_hand():
    # Granite Speech 5: num_mel_bins 80, delta-expanded and stacked in pairs: 80 x 4 = 320 per frame, frames first
    assert hf_specs.input_tail("input_features", _config("granite_speech5_encoder")) == (100, 320)
    # Fun-ASR: 80 mel bins x num_stacked_frames 7 = 560, frames first
    assert hf_specs.input_tail("input_features", _config("fun_asr_nano_encoder")) == (100, 560)
    # Gemma 4 audio: the mel bins are subsampling_conv_channels[0] = 128
    assert hf_specs.input_tail("input_features", _config("gemma4_audio")) == (100, 128)
    # MOSS: Whisper-style, 2 x max_source_positions 1500 = 3000 frames of 80 mel bins
    assert hf_specs.input_tail("input_features", _config("moss_transcribe_diarize_audio")) == (80, 3000)
    # Muse Spark: 16000 samples rounded up to a multiple of 16 x 6 x 5 x 4 = 1920: 9 x 1920
    assert hf_specs.input_tail("input_values", _config("muse_spark_audio")) == (9 * 1920,)
    # Gemma 3n's audio encoder: (frames, input_feat_size 128), its padding mask all False
    gemma3n = _config("gemma3n_audio")
    assert hf_specs.input_tail("audio_mel", gemma3n) == (100, 128)
    mask = hf_specs.extra_input("audio_mel_mask", gemma3n, torch.zeros(1, 100, 128))
    assert mask.shape == (1, 100) and mask.dtype == torch.bool and not bool(mask.any())
    # VibeVoice's decoder: latents (hidden_size 64, 16384 samples / (8 x 5 x 5 x 4 x 2 x 2 = 3200) = 5 frames)
    assert hf_specs.input_tail("input_values", _config("vibevoice_acoustic_tokenizer_decoder")) == (64, 5)
    # a mask of the main input's frames is given though optional (AudioFlamingo3's encoder reads it)
    assert sweep._extra_inputs("audioflamingo3_encoder") == ("input_features_mask",)


def test_token_streams_and_unset_settings():
    # Kyutai: one text stream and num_codebooks 32 audio streams; Dia's decoder: num_channels 9 codebooks
    assert hf_specs.token_streams(_config("kyutai_speech_to_text"), "input_ids") == 32 + 1
    assert hf_specs.token_streams(_config("dia"), "decoder_input_ids") == 9
    assert hf_specs.token_streams(_config("dia"), "input_ids") is None
    assert hf_specs.token_streams(_config("llama"), "input_ids") is None
    assert hf_specs.hf_config("xmod", {}).default_language == "en_XX"
    assert hf_specs.hf_config("xmod", {"default_language": "de_DE", "languages": ["en_XX", "de_DE"]}) \
        .default_language == "de_DE"
    # Step3p7's text window left unset: its positions, 128,000 (the default layers are all full attention)
    text = hf_specs.hf_config("step3p7", {}).text_config
    assert text.sliding_window == text.max_position_embeddings == 128_000
    # use_cache reaches a composite's text configuration (the top one has none)
    config = hf_specs.hf_config("qwen3_5_moe", {"use_cache": False})
    assert config.text_config.use_cache is False


def test_small_rule_groups_sections_and_frequencies_by_hand():
    # AXK1: 192 experts in n_group 8, topk_group 4; capped at 4 experts: groups of at least 2 -> 2 groups, 2 chosen
    changed = hf_specs.small_overrides(_config("axk1"))
    assert changed["n_routed_experts"] == 4 and changed["n_group"] == 2 and changed["topk_group"] == 2
    # largest remainders: 11 x (8, 12, 12) / 32 = 2.75, 4.125, 4.125 -> floors 2, 4, 4, the one left to 2.75
    assert hf_specs._apportioned((8, 12, 12), 11) == [3, 4, 4]
    assert hf_specs._apportioned((8, 12, 12), 32) == [8, 12, 12]
    # GLM-4.5V text: 4096 / 96 heads = 42, x partial 0.5 = 21 dims, torch.arange(0, 21, 2): 11 frequencies
    text = _config("glm4v_moe_text")
    assert hf_specs._rotary_frequencies(text.to_dict()) == 11
    assert hf_specs.small_overrides(text)["rope_parameters"]["mrope_section"] == [3, 4, 4]


def _oracles(model, example):
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


@pytest.mark.slow
@pytest.mark.parametrize("name, inputs, settings, shape", [
    ("time_series_transformer", "past_observed_mask,past_time_features", {"use_cache": False}, (1, 31)),
    ("granite_speech5_encoder", "", {}, (1, 100, 320)),
])
def test_rows_against_oracles_measured_here(monkeypatch, tmp_path, name, inputs, settings, shape):
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(tmp_path / "cache"))
    row = sweep.run_job(sweep.SweepJob("hf", name))[0]
    assert row["status"] == sweep.TRACED, row["reason"]
    assert row["input_shape"] == "x".join(map(str, shape))
    model = hf_specs.hf_model(name, "base", sizes="small", attn_implementation="eager",
                              experts_implementation="eager", inputs=inputs, **settings).eval()
    params, macc = _oracles(model, torch.zeros(shape))
    assert row["params_oracle"] == row["params_reference"] == params
    assert row["macc_oracle"] == row["macc_reference"] == macc
    assert row["params_law"] == row["macc_law"] == sweep.EXACT
