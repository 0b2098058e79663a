"""What a vision or multimodal `transformers` forward takes beside (or instead of) its one image tensor, sized from
the configuration: the patch sequence and patch positions of native-resolution towers, grids of per-type patch
layouts, task and prompt inputs, a text tower's token ids with the image's placeholders, region features,
embeddings as the main input, a trajectory's parts. hf_specs.complete_inputs gives them (zeros: counts do
not depend on values; ones for masks), sweep._extra_inputs names them (sweep attempts add them only after the
main input alone failed)."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

# Qwen2-VL-style vision towers take flattened patches, (t x h x w patches, channels x temporal_patch_size x
# patch_size^2), and grid_thw [[t, h, w]]: PATCH_GRID is h = w (a multiple of every spatial_merge_size), t = 1.
PATCH_GRID = 8
# The sub-configurations whose image_size is the model's image (hf_specs._vision_config reads them in this order).
VISION_SUBCONFIGS = ("vision_config", "backbone_config", "encoder")

# Forwards that take pixel_values as a patch sequence, (batch, patches, channels x patch_size^2), beside the
# patches' positions: Siglip2's spatial_shapes (batch, 2) patch rows and columns with a pixel_attention_mask
# (batch, patches) (transformers models/siglip2/modeling_siglip2.py Siglip2VisionEmbeddings.forward), Gemma 4's
# pixel_position_ids (batch, patches, 2) (x, y) per patch (gemma4/modeling_gemma4.py Gemma4VisionModel.forward).
PATCH_POSITION_INPUTS = ("spatial_shapes", "pixel_position_ids")
PATCH_SEQUENCE_COMPANIONS = ("pixel_attention_mask", "pixel_position_ids", "spatial_shapes")
# A Qwen2-VL-style grid tower's patches by model type where they are not the flattened (patches, channels x
# temporal x patch_size^2) rows: "chw" one (channels, patch, patch) image per patch (kimi_k25/modeling_kimi_k25.py
# Kimi_K25VisionPatchEmbed.forward: a Conv2d over them); "merged_hwc" one (patch x merge, patch x merge, channels)
# block per merged token, its image_grid_thw counted in merged tokens (inkling2/modeling_inkling2.py
# Inkling2VisionEmbeddings.forward and Inkling2VisionModel.forward: the grid times [1, merge, merge]).
PATCH_LAYOUTS = {"inkling2_vision": "merged_hwc", "kimi_k25_vision": "chw"}
GRID_INPUTS = ("grid_thw", "image_grid_thw")  # (images, 3) temporal, height, width patches of a grid tower
TEMPORAL_PATCH_KEYS = ("temporal_patch_size", "patch_temporal")
# Inputs that are not tensors a configuration sizes, with why (one line in the sweep's reason): a video tracker's
# inference_session holds the video frames, the prompted objects and the memory bank its processor builds
# (sam2_video/modeling_sam2_video.py Sam2VideoInferenceSession; Sam2VideoModel.forward refuses a session
# without prompted objects).
SESSION_INPUTS = {"inference_session": "a video tracking session object (frames, prompted objects, memory bank) "
                                       "its processor builds, not a tensor a configuration sizes"}
# Extra inputs this module makes, given only where wanted(): required by the forward, or named by a rule below.
VISION_INPUTS = ("actions", "context_hidden_states", "encoder_hidden_states", "image_attention_mask",
                 "image_embeds_position_mask", "image_grid_thw", "merge_sizes", "pixel_attention_mask",
                 "pixel_position_ids", "pixel_values_videos", "prompt_masks", "prompt_pixel_values",
                 "returns_to_go", "rewards",
                 "spatial_shapes", "target_sizes", "task_inputs", "timesteps", "visual_feats", "visual_pos")
# Image placeholder tokens a text tower's ids hold for the image's query outputs, by the configuration's count
# (BLIP-2 and InstructBLIP scatter num_query_tokens query outputs into the image_token_id positions:
# blip_2/modeling_blip_2.py Blip2Model.forward and get_placeholder_mask; Kosmos-2 latent_query_num image embeddings
# into the image_embeds_position_mask positions: kosmos2/modeling_kosmos2.py Kosmos2TextTransformer.forward_embedding).
QUERY_TOKEN_KEYS = ("num_query_tokens", "latent_query_num")
PLACEHOLDER_KEYS = ("image_token_id", "video_token_id")  # the placeholder's id (InstructBLIP-Video: a video's)
# Frames per clip a video model's forward assumes where its configuration names none (instructblipvideo/
# modeling_instructblipvideo.py InstructBlipVideoModel.forward: "video has frames=4 always").
CLIP_FRAMES = {"instructblipvideo": 4}
# Main inputs that are embeddings, (sequence, width): the first of these settings the configuration has
# (Perceiver's `inputs` of d_model, perceiver/modeling_perceiver.py PerceiverModel.forward without a preprocessor;
# a Q-Former's query_embeds of hidden_size, blip_2/modeling_blip_2.py Blip2QFormerModel.forward).
EMBEDS_WIDTH_KEYS = ("d_model", "hidden_size")
# A drafter's noise_embeds are one block of block_size positions, beside the target model's context_hidden_states:
# (sequence, hidden_size x the number of target_layer_ids) (muse_glimmer_assistant/modeling_muse_glimmer_assistant.py
# MuseGlimmerAssistantModel.forward and MuseGlimmerAssistantContextProjection).
DRAFT_BLOCK_KEY = "block_size"
CONTEXT_STATES = ("context_hidden_states", "target_layer_ids")
# What a Q-Former's cross-attention reads: encoder_hidden_states of encoder_hidden_size (blip_2/modeling_blip_2.py
# Blip2QFormerLayer.forward refuses cross-attention layers without them).
ENCODER_STATES = ("encoder_hidden_states", "encoder_hidden_size")
# A trajectory model's inputs beside `states`, each (steps, width): the width's setting or a number
# (decision_transformer/modeling_decision_transformer.py DecisionTransformerModel.forward embeds returns, states and
# actions per step, timesteps as ids).
TRAJECTORY_INPUTS = {"actions": "act_dim", "returns_to_go": 1, "rewards": 1, "states": "state_dim", "timesteps": 0}
# Images per text as an axis of their own: a forward that takes image_attention_mask (batch, tokens, images) takes
# pixel_values (batch, images, channels, height, width) (idefics/modeling_idefics.py IdeficsModel.forward): one image.
IMAGES_AXIS_MASK = "image_attention_mask"
# Keypoint matchers take an image pair, (batch, 2, channels, height, width) (efficientloftr/modeling_efficientloftr.py
# EfficientLoFTRModel.forward, lightglue/modeling_lightglue.py LightGlueForKeypointMatching.forward,
# superglue/modeling_superglue.py SuperGlueForKeypointMatching.forward refuse anything else).
IMAGE_PAIR_TYPES = ("efficientloftr", "lightglue", "superglue")
# A video's frames where the configuration names no clip length (a per-frame tower with a temporal model on top,
# PE Video: pe_video/modeling_pe_video.py PeVideoEncoderEmbedder.forward runs its image model frame by frame; its
# video processor samples as many as asked): the fewest a temporal model relates, the work per frame counted
# exactly at any length.
VIDEO_FRAMES = 2
# A timm backbone's configuration (transformers' timm_wrapper) names its image side only through timm: the
# architecture's pretrained input_size (timm/models/_registry.py get_pretrained_cfg), where nothing else names one
# (PE Video's vit_pe_core_large_patch14_336: 336 px, a fixed position table).
TIMM_WRAPPER = ("timm_wrapper", "architecture")
# Image sides a configuration names other than image_size (tvp/configuration_tvp.py max_img_size, the side its
# visual prompter pads to; vjepa2/configuration_vjepa2.py crop_size).
IMAGE_SIZE_KEYS = ("max_img_size", "crop_size")
# A model that cuts its image into patch_size tiles at each of scaled_images_ratios takes patch_size / the smallest
# ratio per side (depth_pro/modeling_depth_pro.py DepthProPatchEncoder.forward refuses less): DepthPro's 1,536 px.
SCALED_TILE_KEYS = ("patch_size", "scaled_images_ratios")
# Region features a detector gives a vision-and-language encoder, (VISUAL_BOXES, the setting's width)
# (lxmert/modeling_lxmert.py LxmertModel.forward refuses visual_feats None; LxmertVisualFeatureEncoder.forward).
VISUAL_FEATURE_INPUTS = {"visual_feats": "visual_feat_dim", "visual_pos": "visual_pos_dim"}
VISUAL_BOXES = 36  # regions per image: "we consistently keep 36 objects for each image" (LXMERT, Tan & Bansal 2019)
# Token ids a model with a text tower takes beside its image though its signature marks them optional (text
# embeddings instead would do): SAM 3 segments by a text prompt (sam3/modeling_sam3.py Sam3Model.forward: "exactly
# one of input_ids or text_embeds").
TEXT_TOWER_KEYS = ("text_config",)


def _vision(config):
    sub = getattr(config, "vision_config", None)
    return sub if sub is not None and hasattr(sub, "patch_size") else config


def patch_sequence_side(config) -> int:
    """The patch grid's side for a patch-sequence tower: the square the configuration's num_patches position
    table holds (Siglip2), else PATCH_GRID rounded up to whole pooling kernels (Gemma 4 pools k x k)."""

    vision = _vision(config)
    patches = getattr(vision, "num_patches", None)
    if isinstance(patches, int) and int(patches ** 0.5) ** 2 == patches:
        return int(patches ** 0.5)
    kernel = getattr(vision, "pooling_kernel_size", None) or 1
    return -(-PATCH_GRID // kernel) * kernel


def patch_sequence_tail(config) -> Optional[tuple[int, ...]]:
    """(patches, channels x patch_size^2) of one image for a patch-sequence tower, None without a patch size."""
    vision = _vision(config)
    patch = getattr(vision, "patch_size", None)
    if not isinstance(patch, int):
        return None
    channels = getattr(vision, "num_channels", None) or 3
    return (patch_sequence_side(config) ** 2, int(channels) * patch * patch)


def takes_patch_sequence(accepted) -> bool:
    return any(n in accepted for n in PATCH_POSITION_INPUTS)


def grid_patch_tail(config) -> Optional[tuple[int, ...]]:
    """The patches a grid tower (GRID_INPUTS) takes for a PATCH_GRID x PATCH_GRID image, in its layout
    (PATCH_LAYOUTS, else flattened rows), or None without a patch size."""

    patch = getattr(config, "patch_size", None)
    if not isinstance(patch, int):
        return None
    channels = int(getattr(config, "in_channels", None) or getattr(config, "num_channels", None) or 3)
    layout = PATCH_LAYOUTS.get(getattr(config, "model_type", ""))
    if layout == "chw":
        return (PATCH_GRID * PATCH_GRID, channels, patch, patch)
    if layout == "merged_hwc":
        merge = int(getattr(config, "spatial_merge_size", 1) or 1)
        return ((PATCH_GRID // merge) ** 2, patch * merge, patch * merge, channels)
    temporal = next((int(v) for k in TEMPORAL_PATCH_KEYS if isinstance(v := getattr(config, k, None), int)), 1)
    return (PATCH_GRID * PATCH_GRID, channels * temporal * patch * patch)


def wanted(name: str, main: str, accepted, required, config) -> bool:
    """Whether the extra input `name` (one of hf_specs.EXTRA_INPUTS) is given: required by the forward, or a
    companion of an input given (a patch sequence's positions, the images' mask, the placeholders' mask), or what
    the forward reads though its signature makes it optional (a text tower's ids, TEXT_TOWER_KEYS; a trajectory's
    parts; region features; an image's patch grid; a Q-Former's encoder states)."""
    if name in required:
        return True
    if name in PATCH_SEQUENCE_COMPANIONS and takes_patch_sequence(accepted):
        return main == "pixel_values" or "pixel_values" in accepted
    if name == "input_ids":
        return main == "pixel_values" and any(getattr(config, k, None) is not None for k in TEXT_TOWER_KEYS)
    if name == "image_embeds_position_mask":  # where the text ids hold the image (given with them)
        return wanted("input_ids", main, accepted, required, config)
    if name == "pixel_values_videos":  # an audio-video encoder fuses the clip with the waveform, optional in its
        # signature but read unconditionally (pe_audio_video/modeling_pe_audio_video.py PeAudioVideoEncoder.forward)
        return main == "input_values"
    if name in TRAJECTORY_INPUTS:
        return main == "states"
    if name == IMAGES_AXIS_MASK:  # with the images it masks
        return main != "pixel_values" and "pixel_values" in accepted
    if name == "target_sizes":  # an image's patch grid, read unconditionally though optional in the signature
        # (minicpm_ocr/modeling_minicpm_ocr.py MiniCPMOcrVisionModel.forward: target_sizes[:, 0])
        return main == "pixel_values"
    if name in VISUAL_FEATURE_INPUTS:
        return all(isinstance(getattr(config, k, None), int) for k in VISUAL_FEATURE_INPUTS.values())
    if name == ENCODER_STATES[0]:
        return main.endswith("_embeds") and isinstance(getattr(config, ENCODER_STATES[1], None), int)
    return False


def query_tokens(config) -> int:
    """Image placeholder positions per image in the text (QUERY_TOKEN_KEYS) times the clip's frames, 0 if none."""
    count = next((int(v) for k in QUERY_TOKEN_KEYS if isinstance(v := getattr(config, k, None), int)), 0)
    return count * CLIP_FRAMES.get(getattr(config, "model_type", ""), 1)


def main_tail(main: str, config, accepted, seq: int, image_tail: Callable) -> Optional[tuple[int, ...]]:
    """One example of the main input where the forward's signature or type says more than the configured image
    (`image_tail(main, config)`: hf_specs.input_tail's; `seq`: the sequence length of made inputs): embeddings
    (EMBEDS_WIDTH_KEYS), a trajectory's states, an image side named otherwise (IMAGE_SIZE_KEYS) or only by a deeper
    sub-configuration, one image on its own axis (IMAGES_AXIS_MASK), a video clip of CLIP_FRAMES frames, a
    prompt-and-input pair stacked on height (SegGPT's configured image_size is the pair: seggpt/modeling_seggpt.py
    SegGptModel.forward concatenates prompt_pixel_values and pixel_values on dim 2), each half of it, the side
    tiles at several scales need (SCALED_TILE_KEYS), an image pair (IMAGE_PAIR_TYPES). None:
    image_tail decides."""
    if main == "inputs" or main.endswith("_embeds"):
        width = next((int(v) for k in EMBEDS_WIDTH_KEYS if isinstance(v := getattr(config, k, None), int)), 0)
        block = getattr(config, DRAFT_BLOCK_KEY, None) if CONTEXT_STATES[0] in accepted else None
        return ((block if isinstance(block, int) else seq), width) if width else None
    if main in TRAJECTORY_INPUTS:
        return _steps(main, config, seq)
    if main != "pixel_values":
        return None
    size = getattr(config, "image_size", None)
    channels = int(getattr(config, "num_channels", None) or 3)
    if "prompt_pixel_values" in accepted and isinstance(size, (list, tuple)) and len(size) == 2:
        return (channels, int(size[0]) // 2, int(size[1]))
    tile, ratios = (getattr(config, k, None) for k in SCALED_TILE_KEYS)
    if isinstance(tile, int) and isinstance(ratios, (list, tuple)) and ratios and min(ratios) > 0:
        side = math.ceil(tile / min(ratios))
        return tuple(image_tail(main, config))[:-2] + (side, side)
    other = next((int(v) for k in IMAGE_SIZE_KEYS if isinstance(v := getattr(config, k, None), int)), None)
    if size is None and other:
        return tuple(image_tail(main, config))[:-2] + (other, other)
    if not _names_image_side(config) and (nested := _nested_image_side(config)):
        # the side a deeper sub-configuration names (SAM 2's vision_config.backbone_config, EdgeTAM's
        # prompt_encoder_config: the image the prompt encoder's coordinates assume)
        return tuple(image_tail(main, config))[:-2] + (nested, nested)
    if IMAGES_AXIS_MASK in accepted:
        return (1,) + tuple(image_tail(main, config))
    if getattr(config, "model_type", "") in IMAGE_PAIR_TYPES:
        return (2,) + tuple(image_tail(main, config))
    frames = CLIP_FRAMES.get(getattr(config, "model_type", ""))
    if frames:
        return (frames,) + tuple(image_tail(main, config))
    return None


def timm_image_side(config) -> Optional[int]:
    """The image side of the first timm backbone (TIMM_WRAPPER) among the configuration and its sub-configurations,
    depth first, from timm's pretrained configuration; None without one (or without timm)."""
    if getattr(config, "model_type", "") == TIMM_WRAPPER[0] and isinstance(getattr(config, TIMM_WRAPPER[1], None), str):
        try:
            from timm.models import get_pretrained_cfg
        except ImportError:
            return None
        found = get_pretrained_cfg(getattr(config, TIMM_WRAPPER[1]))
        size = getattr(found, "input_size", None) if found is not None else None
        return int(size[-1]) if size else None
    for key in getattr(config, "sub_configs", {}) or {}:
        sub = getattr(config, key, None)
        if sub is not None and hasattr(sub, "to_dict") and (side := timm_image_side(sub)) is not None:
            return side
    return None


def _names_image_side(config) -> bool:
    subs = [getattr(config, key, None) for key in VISION_SUBCONFIGS]
    return any(getattr(c, "image_size", None) is not None for c in [config] + [c for c in subs if c is not None])


def _nested_image_side(config) -> Optional[int]:
    """The first image_size of a sub-configuration, depth first (a list: its first side), None if none names one."""
    for key in getattr(config, "sub_configs", {}) or {}:
        sub = getattr(config, key, None)
        if sub is None or not hasattr(sub, "to_dict"):
            continue
        size = getattr(sub, "image_size", None)
        size = size[0] if isinstance(size, (list, tuple)) and size else size
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            return size
        if (found := _nested_image_side(sub)) is not None:
            return found
    return None


def _steps(name: str, config, seq: int) -> Optional[tuple[int, ...]]:
    """(seq steps, width) of a trajectory input (TRAJECTORY_INPUTS), (seq,) for ids."""
    width = TRAJECTORY_INPUTS[name]
    width = getattr(config, width, None) if isinstance(width, str) else width
    if not isinstance(width, int):
        return None
    return (seq, width) if width else (seq,)


def text_ids(config, given, seq: int):
    """A text tower's ids: `seq` text tokens after the image's placeholder tokens (query_tokens),
    those the configuration's placeholder id (PLACEHOLDER_KEYS), or zeros where it names none. A configuration that
    leaves it unset gets the text vocabulary's last id, as a processor appends its image token (BLIP-2's
    checkpoints: image_token_index 50265 after OPT's 50,265 tokens): the structure does not depend on the id."""
    import torch

    images = query_tokens(config)
    ids = torch.zeros(given.shape[0], images + seq, dtype=torch.long, device=given.device)
    key = next((k for k in PLACEHOLDER_KEYS if hasattr(config, k)), None)
    if images and key:
        if getattr(config, key) is None:
            setattr(config, key, int(config.get_text_config().vocab_size) - 1)
        ids[:, :images] = getattr(config, key)
    return ids


def extra(name: str, config, given, accepted, seq: int, image_tail: Callable) -> Any:
    """The tensor for a VISION_INPUTS name (or a grid, or pixel_values main_tail shapes) sized from the
    configuration and the main input `given` (`seq`, `image_tail`: as main_tail's), or None where this module does
    not make it."""
    import torch

    batch, device = given.shape[0], given.device
    if name in GRID_INPUTS:
        vision = _vision(config)
        if PATCH_LAYOUTS.get(getattr(vision, "model_type", "")) == "merged_hwc":
            side = PATCH_GRID // int(getattr(vision, "spatial_merge_size", 1) or 1)
            return torch.tensor([[1, side, side]], dtype=torch.long, device=device)
        return torch.tensor([[1, PATCH_GRID, PATCH_GRID]], dtype=torch.long, device=device)
    if name == "input_ids" and query_tokens(config):
        return text_ids(config, given, seq)
    if name == "image_embeds_position_mask":
        mask = torch.zeros(batch, query_tokens(config) + seq, dtype=torch.long, device=device)
        mask[:, :query_tokens(config)] = 1
        return mask
    if name in TRAJECTORY_INPUTS and (steps := _steps(name, config, seq)):
        return torch.zeros(batch, *steps, device=device, dtype=torch.long if len(steps) == 1 else None)
    if name == "target_sizes":  # (rows, columns) of patches of the image given
        patch = int(getattr(_vision(config), "patch_size"))
        return torch.tensor([[given.shape[-2] // patch, given.shape[-1] // patch]] * batch, dtype=torch.int32,
                            device=device)
    if name == IMAGES_AXIS_MASK:  # every token sees the one image
        return torch.ones(batch, given.shape[1], 1, dtype=torch.long, device=device)
    if name in VISUAL_FEATURE_INPUTS:
        return torch.zeros(batch, VISUAL_BOXES, int(getattr(config, VISUAL_FEATURE_INPUTS[name])), device=device)
    if name == "pixel_values_videos" and (tail := image_tail(name, config)):  # a clip beside a text's ids
        return torch.zeros(batch, *tail, device=device)
    if name == "pixel_values" and (tail := main_tail(name, config, accepted, seq, image_tail)):
        return torch.zeros(batch, *tail, device=device)
    if name == CONTEXT_STATES[0] and isinstance(getattr(config, CONTEXT_STATES[1], None), (list, tuple)):
        width = int(config.hidden_size) * len(getattr(config, CONTEXT_STATES[1]))
        return torch.zeros(batch, seq, width, device=device)
    if name == ENCODER_STATES[0]:
        return torch.zeros(batch, seq, int(getattr(config, ENCODER_STATES[1])), device=device)
    if name == "merge_sizes":  # one per image: the image processor's merge size for images, 1
        # (video_llama_3/image_processing_pil_video_llama_3.py: merge_size = 1 for images)
        return torch.ones(1, dtype=torch.long, device=device)
    side = patch_sequence_side(config)
    if name == "spatial_shapes":
        return torch.tensor([[side, side]] * batch, dtype=torch.long, device=device)
    if name == "pixel_attention_mask" and takes_patch_sequence(accepted):
        return torch.ones(batch, side * side, dtype=torch.long, device=device)
    if name == "pixel_position_ids":  # (x, y) of each patch, row by row
        rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
        return torch.stack((cols.flatten(), rows.flatten()), -1).expand(batch, -1, -1).to(device)
    if name == "task_inputs":  # OneFormer's task prompt token ids, task_seq_len of them
        # (oneformer/modeling_oneformer.py OneFormerModel.forward; configuration_oneformer.py task_seq_len)
        return torch.zeros(batch, int(getattr(config, "task_seq_len")), dtype=torch.long, device=device)
    if name in ("prompt_pixel_values", "prompt_masks"):  # a prompt image and its mask, the input image's shape
        return torch.zeros_like(given)
    return None


def defines_no_forward(model) -> bool:
    """True for a module class that keeps torch.nn.Module's unimplemented forward (GLM-Image's VQ-VAE:
    glm_image/modeling_glm_image.py GlmImageVQVAE has encode only)."""
    import torch.nn as nn

    return type(model).forward is nn.Module.forward
