"""The inputs vision and multimodal transformers forwards take beside one image (reconcile/hf_vision_inputs.py):
shapes by hand from the configurations' own settings; models built and traced, their laws checked against
sum(p.numel()) and FlopCounterMode / 2 (the sweep's oracles)."""
import importlib.util

import pytest
import torch
import torch.nn as nn
from transformers import AutoConfig

from conventions import ir
from conventions import terms as T
from conventions.formulas import model_counts
from reconcile import hf_specs, sweep
from reconcile import hf_vision_inputs as vision
from reconcile.frontends.torch_ir import from_module


def test_patch_sequence_inputs_of_siglip2_by_hand():
    config = AutoConfig.for_model("siglip2_vision_model")  # num_patches 256 (16 x 16), patch 16, 3 channels
    assert vision.patch_sequence_tail(config) == (16 * 16, 3 * 16 * 16) == (256, 768)
    image = torch.zeros(2, 256, 768)
    accepted = ("pixel_values", "pixel_attention_mask", "spatial_shapes")
    assert hf_specs.extra_input("spatial_shapes", config, image, accepted).tolist() == [[16, 16], [16, 16]]
    mask = hf_specs.extra_input("pixel_attention_mask", config, image, accepted)
    assert mask.shape == (2, 256) and int(mask.sum()) == 2 * 256
    # the composite model: pixel_values made as the patch sequence too, with both companions
    assert sweep._extra_inputs("siglip2") == ("pixel_values", "pixel_attention_mask", "spatial_shapes")
    assert sweep._extra_inputs("siglip2_vision_model") == ("pixel_attention_mask", "spatial_shapes")


def test_gemma4_patch_positions_cover_whole_pooling_kernels():
    config = AutoConfig.for_model("gemma4_vision")  # pooling_kernel_size 3, patch 16
    side = vision.patch_sequence_side(config)
    assert side == 9  # PATCH_GRID 8 rounded up to a multiple of 3
    positions = vision.extra("pixel_position_ids", config, torch.zeros(1, 81, 768), (), hf_specs.SMALL_SEQ,
                             hf_specs.input_tail)
    assert positions.shape == (1, 81, 2)
    assert positions[0, :3].tolist() == [[0, 0], [1, 0], [2, 0]] and positions[0, 9].tolist() == [0, 1]


def test_grid_layouts_by_type_by_hand():
    assert hf_specs.patch_tail(AutoConfig.for_model("kimi_k25_vision")) == (64, 3, 14, 14)  # Conv2d per patch
    inkling = AutoConfig.for_model("inkling2_vision")  # patch 20, merge 2: 4 x 4 merged tokens of 40 x 40 x 3
    assert hf_specs.patch_tail(inkling) == (16, 40, 40, 3)
    assert hf_specs.extra_input("image_grid_thw", inkling, torch.zeros(16, 40, 40, 3)).tolist() == [[1, 4, 4]]
    glimmer = AutoConfig.for_model("muse_glimmer_vision")  # patch_temporal 2: 2 x 3 x 14 x 14 per patch
    assert hf_specs.patch_tail(glimmer) == (64, 2 * 3 * 14 * 14)


def test_text_ids_hold_the_image_placeholders():
    config = AutoConfig.for_model("blip-2")  # num_query_tokens 32, image_token_index unset
    ids = vision.text_ids(config, torch.zeros(1, 3, 224, 224), hf_specs.SMALL_SEQ)
    vocab = config.get_text_config().vocab_size
    assert config.image_token_id == vocab - 1
    assert ids.shape == (1, 32 + hf_specs.SMALL_SEQ) and int((ids == vocab - 1).sum()) == 32
    video = AutoConfig.for_model("instructblipvideo")  # 4 frames x 32 query tokens, a video placeholder
    assert vision.query_tokens(video) == 4 * 32
    assert vision.main_tail("pixel_values", video, (), hf_specs.SMALL_SEQ, hf_specs.input_tail) == (4, 3, 224, 224)


def test_prompt_pair_and_session_inputs():
    seggpt = AutoConfig.for_model("seggpt")  # image_size (896, 448): prompt and input stacked on height
    assert vision.main_tail("pixel_values", seggpt, ("pixel_values", "prompt_pixel_values"),
                            hf_specs.SMALL_SEQ, hf_specs.input_tail) == (3, 448, 448)
    with pytest.raises(Exception, match="video tracking session object"):
        from reconcile import models

        models.resolve("hf:sam2_video?sizes=small")


def test_keyword_called_sequence_first_multihead_attention_by_hand():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 4)  # (L, N, E): not batch_first

        def forward(self, x):
            seq_first = x.transpose(0, 1)
            positional = self.attn(seq_first, seq_first, seq_first)[0]
            keyword = self.attn(query=positional, key=positional, value=positional)[0]
            return keyword.transpose(0, 1)

    model = Block()
    graph = from_module(model, (2, 5, 16), "mha")
    total = model_counts(graph)[-1][1]
    # per call, N 2 sequences of L 5: q, k, v, out projections 2 * 5 * 16 * 16 * 4 = 10,240; Q K^T and A V
    # 2 * 2 * 5 * 5 * 16 = 1,600
    per_call = 2 * 5 * 16 * 16 * 4 + 2 * 2 * 5 * 5 * 16
    assert total.macc == 2 * per_call == 23_680
    attention = [layer for layer in graph.layers if layer.kind == ir.ATTENTION]
    assert attention and all(T.terms(layer)[T.ATTN] == 2 * 2 * 5 * 5 * 16 for layer in attention)
    assert not [layer for layer in graph.layers if layer.kind == ir.GAP]
    assert total.params == sum(p.numel() for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("name, inputs", [
    ("siglip2_vision_model", "pixel_attention_mask,spatial_shapes"),  # patch sequence and its positions
    ("gemma4_vision", "pixel_position_ids"),
    ("inkling2_vision", "image_grid_thw"),  # a grid layout by type
    ("lxmert", "visual_feats,visual_pos"),  # region features beside token ids
    ("decision_transformer", "actions,returns_to_go,rewards,timesteps"),  # a trajectory
])
def test_vision_inputs_build_trace_and_conserve(name, inputs):
    rows = sweep.run_job(sweep.SweepJob("hf", name, timeout=240))
    row = rows[0]
    assert row["status"] == sweep.TRACED, row["reason"]
    assert row["spec"].endswith(f"&inputs={inputs}")
    # params: the printed total against sum(p.numel()); MACC against FlopCounterMode / 2 (the sweep's oracles)
    assert row["params_reference"] == row["params_oracle"] > 0
    assert row["macc_reference"] == row["macc_oracle"] > 0
    assert row["params_law"] == row["macc_law"] == sweep.EXACT


def test_drafter_block_and_context_by_hand():
    config = AutoConfig.for_model("muse_glimmer_assistant")  # hidden 6656, block_size 16, target_layer_ids
    accepted = ("noise_embeds", "context_hidden_states")
    assert vision.main_tail("noise_embeds", config, accepted, hf_specs.SMALL_SEQ, hf_specs.input_tail) == (16, 6656)
    context = hf_specs.extra_input("context_hidden_states", config, torch.zeros(1, 16, 6656), accepted)
    assert context.shape == (1, hf_specs.SMALL_SEQ, 6656 * len(config.target_layer_ids))
    assert sweep._extra_inputs("muse_glimmer_assistant") == ("context_hidden_states",)


def test_scaled_tiles_pair_and_clip_inputs_by_hand():
    depth_pro = AutoConfig.for_model("depth_pro")  # patch_size 384, scaled_images_ratios 0.25, 0.5, 1
    assert vision.main_tail("pixel_values", depth_pro, (), 32, hf_specs.input_tail) == (3, 384 * 4, 384 * 4)
    loftr = AutoConfig.for_model("efficientloftr")  # no image side: 224, as a pair
    assert vision.main_tail("pixel_values", loftr, (), 32, hf_specs.input_tail) == (2, 3, 224, 224)
    # no clip length configured: VIDEO_FRAMES frames of the timm tower's 336 px (vit_pe_core_large_patch14_336)
    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm is not installed")
    pe_video = hf_specs.hf_config("pe_video_encoder", {})
    assert hf_specs.input_tail("pixel_values_videos", pe_video) == (vision.VIDEO_FRAMES, 3, 336, 336)


def test_small_rule_layer_indices_unbounded_counts_and_timm_arguments_by_hand():
    depth_pro = hf_specs.hf_config("depth_pro", {}, sizes="small")  # hooks 11, 5 of 24 layers -> 2 layers
    assert list(depth_pro.intermediate_hook_ids) == [1, 0] and depth_pro.patch_model_config.num_hidden_layers == 2
    lightglue = hf_specs.hf_config("lightglue", {}, sizes="small")  # max_keypoints -1 (every pixel) -> bounded
    assert lightglue.keypoint_detector_config.max_keypoints == 2048
    perception = hf_specs.hf_config("perception_lm", {}, sizes="small")  # embed_dim 1024 / 16, depth 23 -> 2
    assert perception.vision_config.model_args["embed_dim"] == 64 and perception.vision_config.model_args["depth"] == 2
    uvdoc = hf_specs.hf_config("uvdoc", {})  # six bridge stages, every one an output
    assert list(uvdoc.backbone_config.out_features) == [f"stage{i}" for i in range(1, 7)]
    edgetam = hf_specs.hf_config("edgetam", {})  # nested completion: vision_config.backbone_config
    assert edgetam.vision_config.backbone_config.architecture == "repvit_m1"
