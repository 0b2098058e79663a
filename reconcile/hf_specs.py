"""hf:MODEL_TYPE[?k=v&...] and preset:NAME[?k=v&...]: `transformers` models built from their configuration
classes only (AutoConfig.for_model + from_config): no weights, no download, works offline. The meta device is used
above META_ABOVE_PARAMS parameters. `hf_model` is the factory job processes call; `from_transformers` resolves the
spec text into a ModelSpec (README "Model specs")."""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Optional

from .errors import NEEDS_LIBRARY, UserError, missing_library
from . import hf_vision_inputs as vision_inputs
from .zoo_import import torchvision_first
from .spec import ModelSpec, parse_shape, _split_query

HEADS = ("causal-lm", "masked-lm", "image-classification", "base")
DEFAULT_SEQ_CAP = 1024  # default seq_len: the configuration's maximum positions, at most this
META_ABOVE_PARAMS = 1_000_000_000  # larger models are built on the meta device
_ENCODERS = {"bert", "roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2", "xlm-roberta", "camembert",
             "mpnet", "ernie", "big_bird", "longformer", "megatron-bert", "funnel", "layoutlm", "squeezebert"}
_RESERVED = ("head", "attn_implementation", "experts_implementation", "device", "sizes", "inputs")
SIZES = ("default", "small", "layers")  # layers: the small-config rule's depth and experts, widths as configured
USE_CACHE = "use_cache"  # the configuration key that turns the key/value cache on (sub-configurations too)
IMAGE_CLASSES = 1000  # image-classification heads: ImageNet-1k, the class count papers' numbers assume

# The small-config rule (`sizes=small`, `reconcile sweep --sizes small`; README "Model specs"): every model type
# built in seconds with its structure kept. Depth: every layer count above SMALL_LAYERS becomes SMALL_LAYERS and a
# list of stage depths becomes SMALL_STAGE_DEPTH per stage (per-layer lists are cut to the new depth). Width: every
# width (a hidden, intermediate, head, embedding or projection size, scalar or per stage) is divided by one power of
# two, the largest (at most SMALL_MAX_DIVISOR) that divides every width exactly and leaves each at least
# SMALL_MIN_WIDTH, and every model width (hidden_size, d_model, embed_dim) a multiple of twice each head and group
# count: head counts are kept, so hidden = heads x head_dim, rotary dimensions stay even, and every other ratio
# between widths still holds. Routed experts: at most SMALL_EXPERTS, top-k at most SMALL_TOP_K (also where the
# configuration leaves them unset, None: the model needs a number). DETR-style timm backbones become transformers'
# own (use_timm_backbone); a timm backbone's model_args follow the rule (TIMM_MODEL_ARGS); layer indices into a cut
# encoder keep their rank (_LAYER_INDEX_KEYS); unbounded counts get a bound (_UNBOUNDED_COUNTS). A composite whose
# parts read each other's widths (COMMON_DIVISOR_TYPES) takes one divisor, the smallest any part takes; hash-embedding
# buckets are divided by SMALL_MAX_DIVISOR (_HASH_BUCKET_KEYS). Vocabulary, positions, image and patch sizes,
# channels and labels are kept. Token inputs
# are SMALL_SEQ tokens. `sizes=layers`: the depth and expert parts alone (widths as configured).
SMALL_LAYERS = 2
SMALL_STAGE_DEPTH = 1
SMALL_MAX_DIVISOR = 16
SMALL_MIN_WIDTH = 4
SMALL_EXPERTS = 4
SMALL_TOP_K = 2
SMALL_SEQ = 32
_DEPTH_KEYS = re.compile(r"^(num_hidden_layers|num_layers|n_layers?|num_(encoder|decoder)_layers"
                         r"|(encoder|decoder)_layers"
                         r"|num_(text|vision|audio|speech|cross|self|global|local|backbone|transformer|block)_?layers"
                         r"|(text|vision|audio)_layers|depth|num_blocks)$")
_WIDTH_KEYS = re.compile(r"^(d_model|d_ff|d_kv|d_inner|dim|n_embd|n_inner|hidden_sizes?|embed_dims?|embedding_size"
                         r"|(\w+_)?(hidden|intermediate|ffn|ff|embed|embd|inner|head|kv|proj|projection|lora|mlp"
                         r"|rank|rotary|rope|model|qk|nope_head|rope_head|v_head|q_lora|kv_lora)"
                         r"_(size|dim|dims|sizes|rank))$")
_NOT_WIDTH = re.compile(r"(vocab|image|patch|max_|window|kernel|batch|chunk|pool|position|num_|seq|length|stride|"
                        r"bucket|mel|sampling|codebook|feature|conv_|label|time|freq|frame|audio_chunk|spatial)")
_MODEL_WIDTHS = re.compile(r"^(hidden_sizes?|d_model|n_embd|embed_dims?|dim|hidden_dim|(\w+_)?hidden_size)$")
_COUNT_KEYS = re.compile(r"^(num_attention_heads|num_heads|n_heads?|(encoder|decoder)_attention_heads|num_groups"
                         r"|num_key_value_heads|num_kv_heads|(\w+_)?num_attention_heads)$")
# A group count equal to a model width (one group per channel: a depthwise convolution, mimi/modeling_mimi.py
# MimiDecoder's upsample with groups=config.upsample_groups, 512 = hidden_size) is divided with the widths.
_GROUP_KEYS = re.compile(r"^(\w+_)?groups$")
_EXPERT_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")
_TOP_K_KEYS = ("num_experts_per_tok", "moe_topk", "num_experts_per_token", "top_k", "moe_top_k", "moe_k",
               "top_k_experts")
# Routed-expert settings a configuration may leave unset (None) that the model multiplies by: shared experts
# (models/dots1/modeling_dots1.py Dots1MoE.__init__: moe_intermediate_size * n_shared_experts) become
# SMALL_SHARED_EXPERTS, an expert's width (diffusion_gemma/modeling_diffusion_gemma.py
# DiffusionGemmaTextExperts.__init__) the dense intermediate_size.
_SHARED_EXPERT_KEYS = ("n_shared_experts", "num_shared_experts")
SMALL_SHARED_EXPERTS = 1
_EXPERT_WIDTH_KEYS = ("moe_intermediate_size",)
# Integer lists of per-stage channels under a name that elsewhere holds stage names (EfficientLoFTR's
# out_features, whose last entry must equal hidden_size: efficientloftr/configuration_efficientloftr.py
# validate_architecture): widths. A backbone's out_features are names (strings), never widths.
_CHANNEL_LIST_KEYS = ("out_features",)
# Widths under names the width pattern misses or its exclusions (_NOT_WIDTH: "patch") refuse: CLAP's audio Swin
# stem, whose stage widths double from it to hidden_size (clap/modeling_clap.py ClapAudioEncoder.__init__:
# patch_embeds_hidden_size * 2**i); the cross-part widths of COMMON_DIVISOR_TYPES (BLT's hidden_size_global and
# encoder_cross_output_size, blt/modeling_blt.py BltLocalEncoder.__init__; Dots3 Note's adapter widths and its audio
# convolution's output, dots3_note/configuration_dots3_note.py); no other configuration names them
_NAMED_WIDTH_KEYS = ("patch_embeds_hidden_size", "hidden_size_global", "encoder_cross_output_size",
                     "adapter_in_dim", "adapter_out_dim", "adapter_input_size", "conv_output_size")
# Hash-embedding tables' bucket counts (ids are byte n-gram hashes modulo it, not a tokenizer's vocabulary: BLT's
# 500,002 buckets x 6 n-gram sizes, blt/modeling_blt.py BltModel.__init__ encoder_hash_tok_embedding and
# compute_hash_embeddings): divided by SMALL_MAX_DIVISOR (rounded up), whatever divides the widths
_HASH_BUCKET_KEYS = ("encoder_hash_byte_group_vocab",)
# Composites whose parts read each other's widths under names the rule does not know (BLT's local encoder and
# decoder take the global transformer's width as hidden_size_global, blt/modeling_blt.py BltLocalEncoder.__init__;
# Dots3 Note's vision and audio adapters output the text width, dots3_note/configuration_dots3_note.py
# Dots3NoteVisionConfig.validate_architecture): one divisor for the composite and every part, the smallest any of
# them takes; their cross-part widths (_NAMED_WIDTH_KEYS) scaled with it
COMMON_DIVISOR_TYPES = ("blt", "dots3_note")
# Backbone outputs by stage in a configuration that names its stages (out_indices: stage numbers, out_features:
# "stage{i}", stage_names: "stem" and one per layer; utils/backbone_utils.py: out_features must be a subset of
# stage_names): when the depth is cut below the deepest stage read, the depth becomes max(SMALL_LAYERS, number of
# outputs) and the outputs the last stages.
_STAGE = "stage"
_STEM = "stem"
# A token vocabulary's name -> id mapping (tokenizer data, not architecture), left None by the configuration and
# read with .get by the model (chameleon/modeling_chameleon.py ChameleonImageVocabularyMapping.__init__,
# emu3/modeling_emu3.py Emu3ImageVocabularyMapping.__init__): an empty mapping (no image tokens in a text input).
_VOCABULARY_MAP_KEYS = ("vocabulary_map",)
# Layer indices whose outputs a model reads from a sub-configuration's encoder (depth_pro/modeling_depth_pro.py
# DepthProPatchEncoder.forward: hidden_states[intermediate_hook_ids[i] + 1] of patch_model_config's layers): at
# the cut depth each keeps its rank, the deepest reading the last of SMALL_LAYERS layers, the next the one before.
_LAYER_INDEX_KEYS = ("intermediate_hook_ids",)
# Counts a configuration leaves unbounded (-1) whose value makes the work depend on the input's values, with the
# bound the small-config rule gives them: SuperPoint keeps every pixel whose score passes keypoint_threshold
# (superpoint/modeling_superpoint.py SuperPointInterestPointDecoder._extract_keypoints), every pixel of a flat
# image (about 47,000 of 224 x 224), whose all-pairs attention in LightGlue (lightglue/modeling_lightglue.py) would
# take tens of GB; bounded, top_k_keypoints keeps exactly that many of any image with enough pixels above the
# threshold. 2,048: LightGlue's README, SuperPoint(max_num_keypoints=2048) (github.com/cvg/LightGlue).
_UNBOUNDED_COUNTS = {"max_keypoints": 2048}
# A timm backbone's keyword arguments to timm.create_model (transformers' timm_wrapper configuration, model_args:
# depth, embed_dim, ...) follow the same rule.
TIMM_MODEL_ARGS = ("timm_wrapper", "model_args")
_GROUP_KEY, _TOPK_GROUP_KEY = "n_group", "topk_group"  # group-limited expert routing: groups, groups chosen
_ROPE_KEYS = ("rope_parameters", "rope_scaling")
MROPE_SECTION = "mrope_section"  # multimodal RoPE: rotary frequencies per (temporal, height, width) axis
# Multimodal RoPE sections must sum to the rotary frequency count, head_dim x partial_rotary_factor / 2, where the
# rotary embedding splits the frequencies by them. The small-config rule sets them in the same proportions to that
# count at the new head width (the divisor is halved until they are whole). Model types below split by a default
# the configuration leaves out (transformers models/glm4v/modeling_glm4v.py Glm4vTextRotaryEmbedding.__init__ and
# recomposition_frequencies; glm4v_moe/modeling_glm4v_moe.py Glm4vMoeTextRotaryEmbedding.__init__;
# glm_image/modeling_glm_image.py GlmImageTextRotaryEmbedding.__init__); their default configuration (head_dim 128,
# no partial factor: 64 frequencies) does not match it (sum 32) either. HunYuan-VL's text rotary embedding needs
# sections and has no default (hunyuan_vl/modeling_hunyuan_vl.py HunYuanVLTextRotaryEmbedding.forward); its position
# ids give one axis per section, at least 3, the last three (width, height, image index), the ones before them the
# sequence (HunYuanVLModel.get_rope_index): four equal sections.
MROPE_SPLIT_DEFAULTS = {"glm4v_moe_text": (8, 12, 12), "glm4v_text": (8, 12, 12), "glm_image_text": (8, 12, 12),
                        "hunyuan_vl_text": (1, 1, 1, 1)}


def whole_heads(config) -> int:
    """The largest head count not above the configuration's that divides its hidden_size."""
    heads = config.num_attention_heads
    return max(d for d in range(1, heads + 1) if config.hidden_size % d == 0)


# Settings a model type's default configuration leaves out or unset (None) that its model reads, so the default
# does not build; completed before any other rule, for every size ("section.key": a sub-configuration's key; a
# callable takes the default configuration). Sorted by model type; each entry cites what requires it.
CONFIG_COMPLETIONS: dict[str, dict[str, Any]] = {
    # the vision tower's default, 1152 wide with 14 heads, is refused by siglip/modeling_siglip.py
    # SiglipAttention.__init__ (embed_dim must be divisible by num_heads): the largest count that divides it
    "aya_vision": {"vision_config.num_attention_heads": lambda c: whole_heads(c.vision_config)},
    # per-layer-type RoPE read as rope_parameters[layer_type], None for a layer without RoPE
    # (cohere_compass/modeling_cohere_compass.py CohereCompassRotaryEmbedding.__init__); the configuration names
    # no RoPE parameters at all (configuration_cohere_compass.py CohereCompassTextConfig: no rope_theta)
    "cohere_compass": {"text_config.rope_parameters": lambda c: dict.fromkeys(c.text_config.layer_types)},
    "cohere_compass_text": {"rope_parameters": lambda c: dict.fromkeys(c.layer_types)},
    # dbrx/modeling_dbrx.py DbrxAttention.__init__ reads attn_config.rope_theta, which DbrxAttentionConfig does not
    # define: the model's own rope_theta; DbrxAttention.forward clamps by clip_qkv with no guard for None (MPT's
    # does: mpt/modeling_mpt.py MptAttention.forward): the released DBRX's 8 (dbrx-instruct attn_config.clip_qkv)
    "dbrx": {"attn_config.rope_theta": lambda c: c.rope_parameters["rope_theta"], "attn_config.clip_qkv": 8},
    # deepseek_ocr2/modeling_deepseek_ocr2.py DeepseekOcr2TextDecoderLayer.__init__ indexes mlp_layer_types; the
    # schedule of the configuration's docstring (DeepseekOcr2TextConfig: ["dense", "sparse", "sparse", ...])
    "deepseek_ocr2": {"text_config.mlp_layer_types":
                      lambda c: ["dense"] + ["sparse"] * (c.text_config.num_hidden_layers - 1)},
    # edgetam/configuration_edgetam.py EdgeTamVisionConfig.sub_configs_defaults names its timm backbone under a
    # misspelt key ("archirecture": "repvit_m1"), so TimmWrapperConfig keeps its own default, resnet50, whose
    # widths (256 to 2048) are not the configuration's backbone_channel_list (RepViT-M1's 384, 192, 96, 48; the
    # EdgeTAM checkpoint yonigozlan/EdgeTAM-hf builds repvit_m1): the architecture the default means
    "edgetam": {"vision_config.backbone_config.architecture": "repvit_m1"},
    "edgetam_vision_model": {"backbone_config.architecture": "repvit_m1"},
    # esm/configuration_esm.py EsmConfig leaves vocab_size None (its docstring example builds
    # EsmConfig(vocab_size=33)) and pad_token_id None, which esm/modeling_esm.py EsmEmbeddings.forward compares ids
    # with (create_position_ids_from_input_ids): ESM-2's alphabet, 33 tokens, <pad> 1 (facebook/esm2 config.json)
    "esm": {"pad_token_id": 1, "vocab_size": 33},
    # granite4_vision/modeling_granite4_vision.py Granite4VisionModel.__init__ takes len(deepstack_layer_map) and
    # its Window Q-Former splits downsample_rate "q/k", both left None by Granite4VisionConfig: no deepstack
    # injections, and the docstring's first example rate, "1/4"
    "granite4_vision": {"deepstack_layer_map": [], "downsample_rate": "1/4"},
    # lfm2_moe/modeling_lfm2_moe.py Lfm2MoeDecoderLayer.__init__ indexes layer_types; Lfm2Config.__post_init__'s
    # rule for unset layer types (lfm2/configuration_lfm2.py: full attention at every full_attn_idxs, default all)
    "lfm2_moe": {"layer_types": lambda c: ["full_attention"] * c.num_hidden_layers},
    # lw_detr/configuration_lw_detr.py LwDetrConfig leaves projector_scale_factors empty, so num_feature_levels is 0
    # and LwDetrModel.forward concatenates no feature maps (torch.cat of an empty list): one level at the ViT's own
    # stride, scale 1.0 (LW-DETR's "P4" projector; the docstring's supported values 0.5, 1.0, 2.0)
    "lw_detr": {"projector_scale_factors": [1.0]},
    # moonshine_streaming/modeling_moonshine_streaming.py MoonshineStreamingDecoderLayer.__init__ reads
    # num_key_value_heads, which MoonshineStreamingConfig does not define: multi-head attention, Moonshine's own
    # default (moonshine/configuration_moonshine.py decoder_num_key_value_heads)
    "moonshine_streaming": {"num_key_value_heads": lambda c: c.num_attention_heads},
    # pp_ocrv6_medium_det/modeling_pp_ocrv6_medium_det.py reads three settings its configuration leaves None:
    # PPOCRV6MediumDetHead.__init__ kernel_list (the docstring's default [3, 2, 2]); PPOCRV6MediumDetIntraclassBlock
    # (docstring: 7x7, 5x5, 3x3 and 7x1 / 1x7 kernels) Conv2d(c, c, kernel, stride, padding) arguments whose outputs
    # forward adds to each other and to the input, so stride 1 and the padding that keeps the size; the neck's
    # scale_factor_list, by which PPOCRV6MediumDetNeck.forward brings its four stride-4/8/16/32 outputs to one size
    # before concatenating them
    "pp_ocrv6_medium_det": {"kernel_list": [3, 2, 2], "scale_factor_list": [1, 2, 4, 8],
                            "intraclass_block_config": {
                                "reduce_channel": [1, 1, 0], "return_channel": [1, 1, 0],
                                "symmetric_conv_long_longratio": [7, 1, 3],
                                "symmetric_conv_long_midratio": [5, 1, 2],
                                "symmetric_conv_long_shortratio": [3, 1, 1],
                                "vertical_long_to_small_conv_longratio": [[7, 1], 1, [3, 0]],
                                "vertical_long_to_small_conv_midratio": [[5, 1], 1, [2, 0]],
                                "vertical_long_to_small_conv_shortratio": [[3, 1], 1, [1, 0]],
                                "horizontal_small_to_long_conv_longratio": [[1, 7], 1, [0, 3]],
                                "horizontal_small_to_long_conv_midratio": [[1, 5], 1, [0, 2]],
                                "horizontal_small_to_long_conv_shortratio": [[1, 3], 1, [0, 1]]}},
    # the text model's default, 2048 wide with 28 heads and no head_dim, gets head_dim 2048 // 28 = 73
    # (qwen3_omni_moe/modeling_qwen3_omni_moe.py Qwen3OmniMoeThinkerTextAttention.__init__), odd, which its rotary
    # embedding (arange(0, 73, 2): 37 frequencies, 74 wide) cannot multiply: the largest count that divides it
    "qwen3_omni_moe_thinker": {"text_config.num_attention_heads": lambda c: whole_heads(c.text_config)},
    # uvdoc/modeling_uvdoc.py UVDocModel concatenates the backbone's feature maps (torch.cat) into a bridge_connector
    # of bridge_connector[0] x len(stage_configs) channels, one map per bridge stage, while UVDocBackboneConfig's
    # outputs default to its last stage alone: every stage
    "uvdoc": {"backbone_config.out_features":
              lambda c: [f"stage{i}" for i in range(1, len(c.backbone_config.stage_configs) + 1)],
              "backbone_config.out_indices": lambda c: list(range(1, len(c.backbone_config.stage_configs) + 1))},
    # perception_lm/modeling_perception_lm.py PerceptionLMMultiModalProjector.__init__ reads
    # vision_config.model_args["embed_dim"], which the default vision_config (a bare timm_wrapper: resnet50, no
    # model_args) lacks: the PE tower of facebook/Perception-LM-1B as transformers' converter writes it
    # (perception_lm/convert_perception_lm_weights_to_hf.py write_model: width 1024, 23 layers, 448 px, patch 14)
    "perception_lm": {"vision_config": lambda c: {
        "model_type": "timm_wrapper", "architecture": "vit_pe_core_large_patch14_336",
        "model_args": {"embed_dim": 1024, "depth": 23, "img_size": [448, 448], "global_pool": "",
                       "use_post_transformer_norm": False, "init_values": 0.1, "ref_feat_shape": [32, 32]}}},
    # t5gemma2/modeling_t5gemma2.py T5Gemma2MLP.__init__ reads dropout_rate, which T5Gemma2Config.__post_init__
    # copies into the encoder's text_config and T5Gemma2EncoderConfig alone does not (T5Gemma2Config default 0.0)
    "t5gemma2_encoder": {"text_config.dropout_rate": 0.0},
    # timm_backbone/modeling_timm_backbone.py TimmBackbone.__init__ refuses an unset backbone name: its
    # configuration docstring's example, TimmBackboneConfig("resnet50")
    "timm_backbone": {"backbone": "resnet50"},
}


def config_completions(model_type: str, config) -> dict[str, Any]:
    """CONFIG_COMPLETIONS[model_type] as configuration keyword arguments (a sub-configuration as its whole dict,
    nested ones inside it)."""
    out: dict[str, Any] = {}
    for dotted, value in CONFIG_COMPLETIONS.get(model_type, {}).items():
        *sections, key = dotted.split(".")
        value = value(config) if callable(value) else value
        level, target = out, config
        for section in sections:
            target = getattr(target, section)
            level[section] = level.get(section) or target.to_dict()
            level = level[section]
        level[key] = value
    return out


def default_head(model_type: str) -> str:
    """Causal LM for decoder models, image classification for vision models, the bare model for encoders."""
    torchvision_first()
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES)

    if model_type in _ENCODERS:
        return "base"
    decoder = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    if model_type in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES and not decoder:
        return "image-classification"
    if decoder:
        return "causal-lm"
    return "base"


def _auto_class(head: str):
    torchvision_first()
    import transformers

    return {"causal-lm": transformers.AutoModelForCausalLM, "masked-lm": transformers.AutoModelForMaskedLM,
            "image-classification": transformers.AutoModelForImageClassification,
            "base": transformers.AutoModel}[head]


# ------------------------------------------------------------------------------------------ the small-config rule
def _is_config(value) -> bool:
    from transformers import PretrainedConfig

    return isinstance(value, PretrainedConfig)


def _power_of_two_divisor(widths: list[int], model_widths: list[int], counts: list[int],
                          sections: tuple[int, ...] = (), frequencies: int = 0,
                          largest: int = SMALL_MAX_DIVISOR) -> int:
    """The largest power of two up to `largest` dividing every width, leaving each at least
    SMALL_MIN_WIDTH, leaving every model width (hidden_size, d_model, embed_dim, ...) a multiple of twice each
    head or group count (whole heads, an even rotary dimension, whole norm groups), and leaving whole multimodal
    RoPE sections in their proportions summing to the `frequencies` rotary frequencies divided by it."""
    divisor = largest
    while divisor > 1 and not (all(w % divisor == 0 and w // divisor >= SMALL_MIN_WIDTH for w in widths)
                               and all((w // divisor) % (2 * c) == 0 for w in model_widths for c in counts)
                               and _sections_at(sections, frequencies, divisor) is not None):
        divisor //= 2
    return divisor


def _is_width(key: str, value) -> bool:
    if key not in _CHANNEL_LIST_KEYS + _NAMED_WIDTH_KEYS and (not _WIDTH_KEYS.match(key) or _NOT_WIDTH.search(key)):
        return False
    values = value if isinstance(value, (list, tuple)) else [value]
    return bool(values) and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)


def _mrope_sections(data: dict[str, Any]) -> tuple[Optional[str], tuple[int, ...]]:
    """The configuration's RoPE settings key and its multimodal RoPE sections (the configuration's own, else
    MROPE_SPLIT_DEFAULTS), or (None, ())."""
    for key in _ROPE_KEYS:
        rope = data.get(key)
        if isinstance(rope, dict) and isinstance(rope.get(MROPE_SECTION), (list, tuple)):
            return key, tuple(int(v) for v in rope[MROPE_SECTION])
    default = MROPE_SPLIT_DEFAULTS.get(data.get("model_type", ""))
    if default:
        key = next((k for k in _ROPE_KEYS if isinstance(data.get(k), dict)), _ROPE_KEYS[0])
        return key, default
    return None, ()


def _rotary_frequencies(data: dict[str, Any]) -> int:
    """head_dim x partial_rotary_factor / 2, rounded up (head_dim: the configuration's, else hidden_size / heads),
    0 unknown."""
    heads, hidden = data.get("num_attention_heads"), data.get("hidden_size")
    head_dim = data.get("head_dim") or (hidden // heads if isinstance(hidden, int) and isinstance(heads, int)
                                        and heads > 0 else 0)
    rope = next((data[k] for k in _ROPE_KEYS if isinstance(data.get(k), dict)), {})
    partial = rope.get("partial_rotary_factor") or data.get("partial_rotary_factor") or 1
    return (int(head_dim * partial) + 1) // 2  # torch.arange(0, dim, 2): ceil(dim / 2) frequencies


def _sections_at(sections: tuple[int, ...], frequencies: int, divisor: int) -> Optional[tuple[int, ...]]:
    """The sections in their proportions summing to frequencies / divisor, or None if not whole."""
    if not sections:
        return ()
    total, whole = sum(sections), frequencies // divisor
    if frequencies % divisor or not total or any(s * whole % total for s in sections):
        return None
    return tuple(s * whole // total for s in sections)


def _apportioned(sections: tuple[int, ...], total: int) -> list[int]:
    """`total` split in the proportions of `sections`: floors, the rest one each to the largest remainders."""
    exact = [s * total / sum(sections) for s in sections]
    out = [int(v) for v in exact]
    for i in sorted(range(len(exact)), key=lambda i: (out[i] - exact[i], i))[:total - sum(out)]:
        out[i] += 1
    return out


def small_overrides(config, scale_widths: bool = True, largest: int = SMALL_MAX_DIVISOR) -> dict[str, Any]:
    """The small-config rule (module constants) as configuration keyword arguments: only the keys it changes, a
    sub-configuration (text_config, vision_config, encoder, ...) as its whole dict with its own changes.
    `scale_widths=False`: depth and experts only (sizes=layers). `largest`: the width divisor's upper bound (a
    COMMON_DIVISOR_TYPES composite's one divisor). `config` may be a plain dict (a timm backbone's model_args)."""
    data = config if isinstance(config, dict) else config.to_dict()
    common = data.get("model_type", "") in COMMON_DIVISOR_TYPES and scale_widths and not isinstance(config, dict)
    if common:  # the smallest divisor any part (or the composite's own settings) takes, for all of them
        parts = [config] + _sub_configs(config)
        largest = min(_width_divisor(part.to_dict(), largest) for part in parts)
    out: dict[str, Any] = {}
    args = data.get(TIMM_MODEL_ARGS[1])
    if data.get("model_type") == TIMM_MODEL_ARGS[0] and isinstance(args, dict) \
            and (changed := small_overrides(args, scale_widths)):
        out[TIMM_MODEL_ARGS[1]] = {**args, **changed}
    if data.get("use_timm_backbone") is True:  # DETR-style backbones from transformers' own classes, not timm's
        out["use_timm_backbone"] = False
    depth = None
    stages = data.get("depths") if isinstance(data.get("depths"), (list, tuple)) else None
    for key, value in data.items():
        if isinstance(value, bool) or not _DEPTH_KEYS.match(key):
            continue
        if stages is not None and value == len(stages):  # the stage count (Swin's num_layers), not a depth
            continue
        if isinstance(value, int) and value > SMALL_LAYERS:
            out[key], depth = SMALL_LAYERS, (depth or value)
        elif key in ("depths", "depth") and isinstance(value, (list, tuple)) and value:
            out[key] = [SMALL_STAGE_DEPTH] * len(value)
    if isinstance(data.get("depths"), (list, tuple)) and all(isinstance(v, int) for v in data["depths"]):
        out["depths"] = [SMALL_STAGE_DEPTH] * len(data["depths"])
    out.update(_backbone_stages(data, out))
    if depth:  # per-layer lists (layer_types, ...) and settings keyed by layer index follow the new depth
        for key, value in data.items():
            if isinstance(value, list) and len(value) == depth and key not in out:
                out[key] = value[:SMALL_LAYERS]
            elif isinstance(value, dict) and value and key not in out and \
                    all(str(k).isdigit() for k in value) and any(int(k) >= SMALL_LAYERS for k in value):
                out[key] = {k: v for k, v in value.items() if int(k) < SMALL_LAYERS}
    if not scale_widths:
        widths: dict[str, Any] = {}
    else:
        widths = {k: v for k, v in data.items() if _is_width(k, v)}
    rope_key, sections = _mrope_sections(data) if widths else (None, ())
    frequencies = _rotary_frequencies(data) if sections else 0
    divisor = _width_divisor(data, largest) if widths else 1
    model = [w for k, v in widths.items() if _MODEL_WIDTHS.match(k)
             for w in (v if isinstance(v, (list, tuple)) else [v])]
    for key in _HASH_BUCKET_KEYS if scale_widths else ():
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > SMALL_MAX_DIVISOR:
            out[key] = -(-value // SMALL_MAX_DIVISOR)
    if divisor > 1:
        for key, value in widths.items():
            out[key] = [v // divisor for v in value] if isinstance(value, (list, tuple)) else value // divisor
        for key, value in data.items():
            if _GROUP_KEYS.match(key) and not _COUNT_KEYS.match(key) and isinstance(value, int) \
                    and not isinstance(value, bool) and value in model:
                out[key] = value // divisor
        if rope_key:
            out[rope_key] = {**(data.get(rope_key) or {}),
                             MROPE_SECTION: list(_sections_at(sections, frequencies, divisor))}
    elif rope_key and frequencies and _sections_at(sections, frequencies, 1) is None:
        # widths as configured, whose rotary frequencies the sections cannot split in their proportions (GLM-4.5V's
        # default 4096 / 96 heads: 11 frequencies for 8, 12, 12): the nearest whole split (largest remainders)
        out[rope_key] = {**(data.get(rope_key) or {}), MROPE_SECTION: _apportioned(sections, frequencies)}
    heads, hidden = data.get("num_attention_heads"), out.get("hidden_size", data.get("hidden_size"))
    if isinstance(heads, int) and not isinstance(heads, bool) and heads > 0 and isinstance(hidden, int):
        # left unset (None) by the configuration, read without a fallback by the model (Ministral, HunYuan,
        # Nemotron attention): Llama's defaults, head_dim = hidden / heads and one key/value head per query head
        # (transformers models/llama/configuration_llama.py LlamaConfig.__post_init__)
        if "head_dim" in data and data["head_dim"] is None and hidden % heads == 0:
            out["head_dim"] = hidden // heads
        if "num_key_value_heads" in data and data["num_key_value_heads"] is None:
            out["num_key_value_heads"] = heads
    routed = any(key in data for key in _EXPERT_KEYS)
    if routed:
        for key in _SHARED_EXPERT_KEYS:
            if key in data and data[key] is None:
                out[key] = SMALL_SHARED_EXPERTS
        width = out.get("intermediate_size", data.get("intermediate_size"))
        for key in _EXPERT_WIDTH_KEYS:
            if key in data and data[key] is None and isinstance(width, int):
                out[key] = width
    for key, bound in _UNBOUNDED_COUNTS.items():
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            out[key] = bound
    for key in _LAYER_INDEX_KEYS:
        value = data.get(key)
        if isinstance(value, (list, tuple)) and value and all(isinstance(i, int) for i in value) \
                and max(value) >= SMALL_LAYERS:
            ranks = sorted(set(value), reverse=True)
            out[key] = [max(SMALL_LAYERS - 1 - ranks.index(i), 0) for i in value]
    for key in _VOCABULARY_MAP_KEYS:
        if key in data and data[key] is None:
            out[key] = {}
    for key in _EXPERT_KEYS:
        value = data.get(key)
        if (isinstance(value, int) and not isinstance(value, bool) and value > SMALL_EXPERTS) or \
                (key in data and value is None):  # left unset by the configuration: the model needs a number
            out[key] = SMALL_EXPERTS
    for key in _TOP_K_KEYS:
        value = data.get(key)
        if (isinstance(value, int) and not isinstance(value, bool) and value > SMALL_TOP_K) or \
                (routed and key in data and value is None):
            out[key] = SMALL_TOP_K
    experts = next((out[k] for k in _EXPERT_KEYS if k in out), None)
    groups = data.get(_GROUP_KEY)
    if experts and isinstance(groups, int) and not isinstance(groups, bool) and groups > 0 and \
            (experts % groups or experts // groups < 2):
        # group-limited routing splits the experts into n_group groups and scores each by its top 2
        # (models/axk1/modeling_axk1.py AXK1TopkRouter.forward): the most groups of at least 2 experts
        out[_GROUP_KEY] = max(g for g in range(1, experts // 2 + 1) if experts % g == 0 and g <= groups)
        if isinstance(data.get(_TOPK_GROUP_KEY), int) and data[_TOPK_GROUP_KEY] > out[_GROUP_KEY]:
            out[_TOPK_GROUP_KEY] = out[_GROUP_KEY]
    for key in getattr(config, "sub_configs", {}) or {}:
        sub = getattr(config, key, None)
        if _is_config(sub):
            changed = small_overrides(sub, scale_widths, largest)
            if changed:
                out[key] = {**sub.to_dict(), **changed}
    return out


def _width_divisor(data: dict[str, Any], largest: int = SMALL_MAX_DIVISOR) -> int:
    """The small-config rule's width divisor for one configuration's own settings (`data`: its to_dict()), at most
    `largest`; `largest` where it has no widths."""
    widths = {k: v for k, v in data.items() if _is_width(k, v)}
    flat = [w for v in widths.values() for w in (v if isinstance(v, (list, tuple)) else [v])]
    if not flat:
        return largest
    model = [w for k, v in widths.items() if _MODEL_WIDTHS.match(k)
             for w in (v if isinstance(v, (list, tuple)) else [v])]
    counts = sorted({int(c) for k, v in data.items() if _COUNT_KEYS.match(k)
                     for c in (v if isinstance(v, (list, tuple)) else [v])
                     if isinstance(c, int) and not isinstance(c, bool) and c > 0})
    _, sections = _mrope_sections(data)
    frequencies = _rotary_frequencies(data) if sections else 0
    return _power_of_two_divisor(flat, model, counts, sections, frequencies, largest)


def _backbone_stages(data: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """The backbone outputs (out_indices, out_features, stage_names) at the depth `out` gives, where the
    configuration's outputs name stages beyond it (module constants _STAGE, _STEM)."""
    indices, depth_key = data.get("out_indices"), "num_hidden_layers"
    if depth_key not in out or "stage_names" not in data or not isinstance(indices, (list, tuple)) or not indices \
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        return {}
    if max(indices) <= out[depth_key]:
        return {}
    depth = max(SMALL_LAYERS, len(indices))
    stages = list(range(depth - len(indices) + 1, depth + 1))
    return {depth_key: depth, "out_indices": stages, "out_features": [f"{_STAGE}{i}" for i in stages],
            "stage_names": [_STEM] + [f"{_STAGE}{i}" for i in range(1, depth + 1)]}


# ------------------------------------------------------------------------------------------------ building
def hf_config(model_type: str, config_kwargs: dict[str, Any], spec_text: str = "", sizes: str = "default",
              head: Optional[str] = None):
    """AutoConfig.for_model(model_type, **kw), refusing keys the configuration class does not define (a typo
    would otherwise become a silent extra attribute; a key is known through the configuration's attribute_map
    too). `sizes="small"` applies the small-config rule first; the query's own keys win over it. An
    image-classification head gets IMAGE_CLASSES classes unless the query sets num_labels."""
    torchvision_first()
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    where = f"model spec {spec_text!r}: " if spec_text else ""
    if model_type not in CONFIG_MAPPING:
        close = sorted(t for t in CONFIG_MAPPING.keys() if t.startswith(model_type[:3]))[:8]
        raise UserError(f"{where}unknown transformers model type {model_type!r}"
                        + (f" (similar: {', '.join(close)})" if close else ""))
    if sizes not in SIZES:
        raise UserError(f"{where}sizes must be one of {', '.join(SIZES)}, not {sizes!r}")
    default = AutoConfig.for_model(model_type)
    unknown = [k for k in config_kwargs if not hasattr(default, k) and k not in getattr(default, "attribute_map", {})
               and not (k == USE_CACHE and _sub_config_has(default, k))]
    if unknown:
        raise UserError(f"{where}{type(default).__name__} has no setting {', '.join(map(repr, unknown))}")
    completed = config_completions(model_type, default)
    if completed:
        default = AutoConfig.for_model(model_type, **completed)
    given = {k: list(v) if isinstance(v, tuple) else v for k, v in config_kwargs.items()}
    rule = small_overrides(default, sizes == "small") if sizes in ("small", "layers") else {}
    unset = {k: v(default) if callable(v) else v for k, v in UNSET_SETTINGS.items()
             if k in default.to_dict() and getattr(default, k) is None}
    kwargs = {**completed, **unset, **rule,
              **{k: v for k, v in given.items() if k != USE_CACHE or hasattr(default, k)}}
    if head == "image-classification" and "num_labels" not in given and "id2label" not in given:
        kwargs["num_labels"] = IMAGE_CLASSES
    try:
        config = AutoConfig.for_model(model_type, **kwargs)
    except Exception as exc:
        raise UserError(f"{where}{type(default).__name__}({given}) refused: {type(exc).__name__}: {exc}") \
            from None
    if USE_CACHE in given:  # a composite's language model reads its own text configuration's use_cache
        _set_in_sub_configs(config, USE_CACHE, given[USE_CACHE])
    for sub_key, key, source in UNSET_FROM_BY_TYPE.get(model_type, ()):
        sub = getattr(config, sub_key, None)
        if _is_config(sub) and getattr(sub, key, 0) is None:
            setattr(sub, key, getattr(sub, source))
    return config


def _sub_configs(config) -> list:
    """The configuration's sub-configurations (text_config, vision_config, ...), depth first."""
    out = []
    for name in getattr(config, "sub_configs", {}) or {}:
        sub = getattr(config, name, None)
        if _is_config(sub):
            out += [sub] + _sub_configs(sub)
    return out


def _sub_config_has(config, key: str) -> bool:
    return any(hasattr(sub, key) for sub in _sub_configs(config))


def _set_in_sub_configs(config, key: str, value) -> None:
    for sub in _sub_configs(config):
        if hasattr(sub, key):
            setattr(sub, key, value)


# Settings a configuration leaves unset (None) and its model refuses to build without, with the value reconcile
# gives them (a query's own value wins). prediction_length: the time-series transformers (TimeSeriesTransformer,
# Informer, Autoformer: models/time_series_transformer/modeling_time_series_transformer.py
# TimeSeriesTransformerEncoder.__init__ sizes its positions by context_length + prediction_length); 24 is
# the default of PatchTSTConfig (models/patchtst/configuration_patchtst.py) and the horizon of the
# tourism-monthly checkpoint TimeSeriesTransformerConfig documents. Their context_length follows it (the
# configurations' __post_init__). default_language: X-MOD's language adapters refuse ids without one
# (models/xmod/modeling_xmod.py XmodModel.forward, "Input language unknown"): its first language, the configuration
# default's only one (en_XX). A value that is a function is read from the configuration.
UNSET_SETTINGS = {"default_language": lambda config: list(getattr(config, "languages", None) or [None])[0],
                  "prediction_length": 24}
# Per model type, (sub-configuration, setting, the setting whose value it takes) where the sub-configuration leaves
# it unset: Step3p7's text model builds a sliding-window mask whatever its layer types
# (models/step3p7/modeling_step3p7.py Step3p7TextModel.forward); its default layers are all full attention, and a
# window of max_position_embeddings masks nothing the causal mask does not.
UNSET_FROM_BY_TYPE = {"step3p7": (("text_config", "sliding_window", "max_position_embeddings"),)}


def model_class(model_type: str, head: str, config):
    """The class transformers maps the configuration to for `head`; a tuple of classes is read as
    transformers' own _get_model_class reads it (the configuration's `architectures`, else the first: a
    configuration whose `architectures` is None, which _get_model_class would iterate, gets the first). A class the
    mapping names but the model's package does not export (not in its __all__) is taken from the package's modeling
    module, where transformers defines it."""
    from transformers.models.auto.auto_factory import _get_model_class

    mapping = _auto_class(head)._model_mapping
    try:
        supported = mapping[type(config)]
    except ValueError:  # auto_factory.getattribute_from_module: the name is not exported
        return _unexported_class(model_type, mapping)
    if isinstance(supported, (list, tuple)) and not getattr(config, "architectures", None):
        return supported[0]
    return _get_model_class(config, mapping)


def _unexported_class(model_type: str, mapping):
    import importlib

    from transformers.models.auto.configuration_auto import model_type_to_module_name

    name = mapping._model_mapping[model_type]
    module = model_type_to_module_name(model_type)
    return getattr(importlib.import_module(f"transformers.models.{module}.modeling_{module.split('.')[-1]}"), name)


def model_config(cls, config):
    """The configuration `cls` is built from: the given one, or the sub-configuration of the class's own
    `config_class` where transformers maps a composite type to a model of one part (musicgen -> MusicgenModel,
    which takes the decoder's configuration: models/musicgen/modeling_musicgen.py MusicgenModel.__init__)."""
    wanted = getattr(cls, "config_class", None)
    if not isinstance(wanted, type) or isinstance(config, wanted):
        return config
    for key in getattr(config, "sub_configs", {}) or {}:
        sub = getattr(config, key, None)
        if isinstance(sub, wanted):
            return sub
    return config


EXTRA_INPUTS = ("pixel_values", "input_features", "input_values", "attention_mask", "bbox", "input_ids",
                "grid_thw", "qformer_input_ids", "input_features_mask") + vision_inputs.VISION_INPUTS
# the extra inputs given only where the forward requires them (optional ones would add work the model does not
# do by default): token ids beside another main input (BLIP-2's input_ids, InstructBLIP's qformer_input_ids), a
# grid. A mask (batch, frames) of every frame of the main input adds no work and is given wherever the forward
# takes one beside it (Qwen3-ASR, Fun-ASR require it; AudioFlamingo3Encoder.forward reads its optional one
# unconditionally): MASK_OF_MAIN.
REQUIRED_ONLY_INPUTS = ("input_ids", "grid_thw", "qformer_input_ids", "input_features_mask")
# Token models whose input_ids are (batch x codebooks, sequence): one row per codebook, the configuration key
# naming the count (models/musicgen/modeling_musicgen.py MusicgenDecoder.forward: input_ids.reshape(-1,
# num_codebooks, seq_len); musicgen_melody/modeling_musicgen_melody.py MusicgenMelodyDecoder.forward the same).
CODEBOOK_ROWS = {"musicgen": "num_codebooks", "musicgen_melody": "num_codebooks"}
MASK_OF_MAIN = {"input_features_mask": "input_features"}  # given, required or not, beside that main input
# A time series' companions, given where the forward requires them: time features (batch, length,
# num_time_features) and an observed mask (ones like past_values) of TimeSeriesTransformer, Informer and Autoformer
# (models/time_series_transformer/modeling_time_series_transformer.py TimeSeriesTransformerModel.forward), TimesFM's
# padding (zeros like past_values: nothing padded) and frequency class (batch, 1) (models/timesfm/modeling_timesfm.py
# TimesFmModel.forward).
TIME_SERIES_INPUTS = ("freq", "past_observed_mask", "past_time_features", "past_values_padding")
# Gemma 3n's audio encoder: a padding mask (batch, frames), True where padded (models/gemma3n/modeling_gemma3n.py
# Gemma3nAudioConformerBlock.forward: "~audio_mel_mask  # True for valid"): all False
PADDING_MASK_INPUTS = ("audio_mel_mask",)
EXTRA_INPUTS += TIME_SERIES_INPUTS + PADDING_MASK_INPUTS
REQUIRED_ONLY_INPUTS += TIME_SERIES_INPUTS + PADDING_MASK_INPUTS
PATCH_GRID = vision_inputs.PATCH_GRID  # the patch grid of grid_thw vision towers (hf_vision_inputs)


def hf_model(model_type: str, head: str, device: str = "cpu", attn_implementation: Optional[str] = None,
             experts_implementation: Optional[str] = None, sizes: str = "default", inputs: str = "",
             **config_kwargs):
    """A `transformers` model from its configuration class only: random init (or none, on meta), no download.
    Its forward is completed by `complete_inputs`: one positional input (what reconcile feeds every model) is the
    model's main input, and an encoder-decoder gets decoder ids."""
    import torch

    config = hf_config(model_type, config_kwargs, sizes=sizes, head=head)
    if head == "causal-lm" and not config.is_encoder_decoder and hasattr(config, "is_decoder"):
        config.is_decoder = True  # encoder types (BERT, RoBERTa...) as causal LMs refuse to build without it
    extra = {k: v for k, v in (("attn_implementation", attn_implementation),
                               ("experts_implementation", experts_implementation)) if v}
    cls = model_class(model_type, head, config)
    config = model_config(cls, config)
    if device == "meta":
        with torch.device("meta"):
            model = cls._from_config(config, **extra)
    else:
        torch.manual_seed(0)  # values do not change counts; a fixed seed keeps any value-dependent path repeatable
        model = cls._from_config(config, **extra)
    model._reconcile_extra_inputs = tuple(n for n in inputs.split(",") if n)  # complete_inputs reads it
    model.register_forward_pre_hook(complete_inputs, with_kwargs=True)
    return model


def extra_input(name: str, config, given, accepted=()):
    """Zeros (ones for a mask) of what `name` takes, sized from the configuration and the main input;
    `accepted`: the forward's parameters (a patch-sequence tower's pixel_values and positions, hf_vision_inputs)."""
    import torch

    batch, device = given.shape[0], given.device
    made = vision_inputs.extra(name, config, given, accepted, SMALL_SEQ, input_tail)
    if made is not None:
        return made
    if name == "pixel_values" and vision_inputs.takes_patch_sequence(accepted):
        return torch.zeros(batch, *vision_inputs.patch_sequence_tail(config), device=device)
    if name in ("input_ids", "qformer_input_ids"):
        return torch.zeros(batch, SMALL_SEQ, dtype=torch.long, device=device)
    if name == "input_features_mask":  # every frame of the main input_features
        frames = given.shape[1] if _frames_first(config) else given.shape[-1]
        return torch.ones(batch, frames, dtype=torch.long, device=device)
    if name == "attention_mask":
        return torch.ones(given.shape[:2], dtype=torch.long, device=device)
    if name == "bbox":
        return torch.zeros(*given.shape[:2], 4, dtype=torch.long, device=device)
    if name == "past_time_features":
        features = getattr(config, "num_time_features", 0) or 0
        return torch.zeros(*given.shape[:2], int(features), device=device)
    if name == "past_observed_mask":
        return torch.ones_like(given)
    if name == "past_values_padding":
        return torch.zeros(given.shape, dtype=torch.long, device=device)
    if name in PADDING_MASK_INPUTS:
        return torch.zeros(given.shape[:2], dtype=torch.bool, device=device)
    if name == "freq":
        return torch.zeros(batch, 1, dtype=torch.long, device=device)
    tail = input_tail(name, config)
    per_token = FEATURE_FRAMES_PER_TOKEN_BY_TYPE.get(getattr(config, "model_type", ""))
    if name == "input_features" and per_token and given.dim() == 2:  # frames for each of the given tokens
        tail = (tail[0], given.shape[1] * per_token[0] * int(getattr(config, per_token[1])))
    ratios = getattr(config, "downsampling_ratios", None)
    if name == "input_features" and isinstance(ratios, (list, tuple)) and ratios and given.dim() == 3:
        # beside a codec's waveform, features of its frames, one per product of the downsampling ratios (XCodec2
        # concatenates both encoders' frames: models/xcodec2/modeling_xcodec2.py Xcodec2Model.encode)
        frames = given.shape[-1] // math.prod(int(r) for r in ratios)
        tail = (frames, tail[1]) if _frames_first(config) else (tail[0], frames)
    return torch.zeros(batch, *tail, device=device)


def main_input(model) -> str:
    """The input reconcile's one tensor stands for: the model's main_input_name, or the forward's first parameter
    where that is not one of its parameters (a vision tower whose forward takes hidden_states)."""
    import inspect

    main = getattr(model, "main_input_name", "input_ids")
    try:
        accepted = [p for p in inspect.signature(model.forward).parameters if p != "self"]
    except (TypeError, ValueError):
        return main
    return main if main in accepted or not accepted else accepted[0]


def patch_tail(config) -> Optional[tuple[int, ...]]:
    """The patches a grid_thw vision tower takes (PATCH_GRID; hf_vision_inputs.grid_patch_tail), or None without
    a patch size."""
    return vision_inputs.grid_patch_tail(config)


# Token ids with one column per stream, (batch, tokens, streams), where a model reads several token streams at once:
# model type -> (the input, the sub-configuration and setting that count the streams, streams beyond that count).
# Dia's decoder reads num_channels audio codebooks (models/dia/modeling_dia.py DiaModel.forward: decoder_input_ids
# (batch, tokens, num_channels)); Kyutai's speech-to-text reads a text stream and num_codebooks audio codebooks
# (models/kyutai_speech_to_text/modeling_kyutai_speech_to_text.py KyutaiSpeechToTextEmbeddings: one offset each).
TOKEN_STREAMS_BY_TYPE = {"dia": ("decoder_input_ids", "decoder_config", "num_channels", 0),
                         "kyutai_speech_to_text": ("input_ids", "", "num_codebooks", 1)}


def token_streams(config, name: str) -> Optional[int]:
    """The streams of token input `name` (TOKEN_STREAMS_BY_TYPE), None for one stream."""
    entry = TOKEN_STREAMS_BY_TYPE.get(getattr(config, "model_type", ""))
    if entry is None or entry[0] != name:
        return None
    _, sub, key, extra = entry
    return int(getattr(getattr(config, sub) if sub else config, key)) + extra


def _decoder_length(config, given: int) -> int:
    cap = max_positions(config, decoder=True)
    return min(given, cap) if cap else given


def complete_inputs(model, args: tuple, kwargs: dict):
    """Forward pre-hook: reconcile calls every model with one tensor; a transformers model takes it as its
    `main_input_name` (input_ids, pixel_values, input_values, input_features), and an encoder-decoder also gets
    decoder ids (zeros: counts do not depend on values) of the input's length for a token model, SMALL_SEQ
    otherwise (at most the decoder's positions)."""
    import inspect

    import torch

    main = main_input(model)
    if args and isinstance(args[0], torch.Tensor) and main not in kwargs:
        kwargs = {**kwargs, main: args[0]}
        args = args[1:]
    config = getattr(model, "config", None)
    given = kwargs.get(main)
    if config is None or not isinstance(given, torch.Tensor):
        return args, kwargs
    accepted = inspect.signature(model.forward).parameters
    for name in getattr(model, "_reconcile_extra_inputs", ()):
        if kwargs.get(name) is None:
            kwargs = {**kwargs, name: extra_input(name, config, given, accepted)}
    condition = CONDITION_INPUT_BY_TYPE.get(getattr(config, "model_type", ""))
    if condition and kwargs.get(condition) is None:  # (1, 1, hidden_size): broadcast over batch and tokens
        kwargs = {**kwargs, condition: torch.zeros(1, 1, int(config.hidden_size), device=given.device)}
    if not getattr(config, "is_encoder_decoder", False):
        return args, kwargs
    hidden_inputs = HIDDEN_STATE_INPUTS_BY_TYPE.get(getattr(config, "model_type", ""))
    if hidden_inputs and hidden_inputs[1] in accepted and kwargs.get(hidden_inputs[1]) is None:
        kwargs = {**kwargs, hidden_inputs[1]: torch.zeros(given.shape[0], *input_tail(hidden_inputs[1], config),
                                                          device=given.device)}
    if "decoder_input_ids" in accepted and kwargs.get("decoder_input_ids") is None \
            and kwargs.get("decoder_inputs_embeds") is None:
        length = given.shape[1] if main == "input_ids" else SMALL_SEQ
        streams = token_streams(config, "decoder_input_ids")
        kwargs = {**kwargs, "decoder_input_ids": torch.zeros(given.shape[0], _decoder_length(config, length),
                                                             *((streams,) if streams else ()),
                                                             dtype=torch.long, device=given.device)}
    return args, kwargs


STANDARD_KEYS = ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size",
                 "num_key_value_heads", "head_dim", "max_position_embeddings")


def on_meta(spec: ModelSpec) -> ModelSpec:
    """The same configuration-built model on the meta device (shapes only: no weights initialised, no arithmetic),
    whose layer IR has the same products at a fraction of the time (`which` answers from it); the spec itself when
    it is built on meta already, asks for the CPU (`?device=cpu`) or is not built from a configuration. The key/value
    cache stays on meta (from_transformers turns it off on the CPU only)."""
    import dataclasses

    kwargs = dict(spec.factory_kwargs)
    if spec.meta or spec.torch_factory != f"{__name__}:hf_model" or kwargs.get("device") != "cpu" \
            or "device=cpu" in spec.name:
        return spec
    kwargs["device"] = "meta"
    if kwargs.get(USE_CACHE) is False:
        kwargs.pop(USE_CACHE)
    return dataclasses.replace(spec, factory_kwargs=tuple(sorted(kwargs.items())), meta=True)


def _config_dict(config) -> dict[str, Any]:
    """The configuration's own scalar settings, plus the standard names (STANDARD_KEYS) read through its
    attribute_map (GPT-2's n_embd is hidden_size) or, for a composite model, its text configuration."""
    keep = (int, float, str, bool, type(None))
    out = {k: v for k, v in config.to_dict().items() if isinstance(v, keep)}
    sources = [config]
    getter = getattr(config, "get_text_config", None)
    if callable(getter):
        try:
            sources.append(getter())
        except Exception:  # noqa: BLE001 (no text part)
            pass
    for key in STANDARD_KEYS:
        if out.get(key) is not None:
            continue
        for source in sources:
            try:
                value = getattr(source, key, None)
            except Exception:  # noqa: BLE001 (a getter that needs settings this configuration lacks)
                value = None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = value
                break
    return dict(sorted(out.items()))


_POSITION_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length",
                  "max_text_positions", "max_source_positions")
_DECODER_POSITION_KEYS = ("max_target_positions", "max_decoder_position_embeddings", "max_position_embeddings",
                          "n_positions")


def max_positions(config, decoder: bool = False) -> Optional[int]:
    """The most positions the model's (decoder's) token input may hold, read through the configuration's own
    attribute_map and its text configuration (a composite model's positions are its text model's)."""
    texts = [config]
    getter = getattr(config, "get_text_config", None)
    if callable(getter):
        try:
            texts.append(getter(decoder=decoder) if decoder else getter())
        except Exception:  # noqa: BLE001 (a configuration without a text part)
            pass
    for candidate in texts:
        for key in (_DECODER_POSITION_KEYS if decoder else _POSITION_KEYS):
            value = getattr(candidate, key, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def position_offset(model) -> int:
    """Positions a model's learned position table spends before the first token: RoBERTa-style embeddings number
    positions from padding_idx + 1 (transformers' create_position_ids_from_input_ids), so 514 positions hold
    512 tokens."""
    import torch.nn as nn

    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) and name.rpartition(".")[2] in ("position_embeddings", "embed_positions") \
                and module.padding_idx is not None:
            return int(module.padding_idx) + 1
    return 0


AUDIO_SAMPLES = 16_000  # input_values: one second at 16 kHz
CODEC_SAMPLES = 2 ** 14  # a codec's waveform: a multiple of every hop (DAC's 512)
FEATURE_FRAMES = 100  # input_features without a fixed length: one second of 10 ms frames
CODEC_KEYS = ("hop_length", "downsampling_ratios")  # a codec's settings (a DAC encoder inside PE Audio's)
# waveforms taken as (channels, samples) with no setting that says so (models/omniasr/modeling_omniasr.py
# OmniASRCTCModel.forward: input_values (batch_size, 1, num_samples))
WAVEFORM_CHANNEL_TYPES = ("omniasr_audio", "omniasr_ctc")
# decoders whose input is a codec's latents, (hidden_size, frames), whatever main_input_name says
# (models/vibevoice_acoustic_tokenizer/modeling_vibevoice_acoustic_tokenizer.py VibeVoiceAcousticTokenizerDecoderStem:
# its first convolution takes hidden_size channels)
LATENT_INPUT_TYPES = ("vibevoice_acoustic_tokenizer_decoder",)
# encoder-decoders whose base model has no pre-nets, so its encoder and decoder inputs are hidden states, (batch,
# frames, hidden_size), whatever their names (models/speecht5/modeling_speecht5.py SpeechT5Model.__init__:
# SpeechT5EncoderWithoutPrenet, SpeechT5DecoderWithoutPrenet): model type -> (the encoder's input, the decoder's),
# both SMALL_SEQ frames
# a text model that its composite conditions on an embedding it computes (a keyword its forward passes on through
# **kwargs to every decoder layer, which the text model alone requires): Voxtral Realtime's time conditioning,
# (1, 1, hidden_size) (models/voxtral_realtime/modeling_voxtral_realtime.py VoxtralRealtimeModel.forward: t_cond =
# time_embedding(...)[None, ...]; VoxtralRealtimeTextDecoderLayer.forward: ada_rms_norm(t_cond))
CONDITION_INPUT_BY_TYPE = {"voxtral_realtime_text": "t_cond"}
# audio whose embeddings the model adds to the token embeddings one for one, so input_features beside input_ids
# has (stride x setting) frames per token: model type -> (stride, the setting). Voxtral Realtime: its embedder's
# second convolution has stride 2 and get_audio_features stacks downsample_factor frames into one
# (models/voxtral_realtime/modeling_voxtral_realtime.py VoxtralRealtimeEmbedder.__init__,
# VoxtralRealtimeModel.get_audio_features and forward: inputs_embeds += audio_embeds)
FEATURE_FRAMES_PER_TOKEN_BY_TYPE = {"voxtral_realtime": (2, "downsample_factor")}
HIDDEN_STATE_INPUTS_BY_TYPE = {"speecht5": ("input_values", "decoder_input_values")}
# a codec decoder's own main input, (batch, hidden_size, frames) (models/mimi/modeling_mimi.py MimiDecoderModel:
# main_input_name "latents", forward's docstring), sized like LATENT_INPUT_TYPES' inputs: the frames of CODEC_SAMPLES
LATENTS = "latents"
VIDEO_FRAME_KEYS = ("num_frames",)  # the clip length a video model's configuration sets
DEFAULT_FEATURES = 80  # input_features' feature count where the configuration names none: 80 mel bins
FEATURE_KEYS = ("num_mel_bins", "feature_size", "input_feat_per_channel", "n_mels", "feature_projection_input_dim")
# input_features is (features, frames) (Whisper's conv1 takes the mel bins as channels), or (frames, features)
# where the configuration (or a sub-configuration) has one of these settings: the FastConformer 2-D subsampling
# convolves (frames, mel bins) (models/parakeet/modeling_parakeet.py ParakeetEncoderSubsamplingConv2D.forward; its
# settings subsampling_conv_channels, subsampling_factor), Speech2Text transposes (frames, features)
# (speech_to_text/modeling_speech_to_text.py Conv1dSubsampler.forward), Wav2Vec2-BERT normalises the features last
# (wav2vec2_bert/modeling_wav2vec2_bert.py Wav2Vec2BertFeatureProjection.forward).
FRAMES_FIRST_KEYS = ("subsampling_conv_channels", "subsampling_factor", "input_feat_per_channel",
                     "feature_projection_input_dim", "num_stacked_frames")
STACKED_FRAMES_KEYS = ("num_stacked_frames",)  # frames stacked into one input row: features x that many, frames first
# (models/fun_asr_nano/modeling_fun_asr_nano.py FunAsrNanoEncoder: position embeddings of input_size = mel bins x
# num_stacked_frames added to (batch, frames, features))
# Per model type, where no setting says it: the stack of feature rows per input row (frames first), and the setting
# whose (first) value is the mel bin count.
STACKED_FEATURES_BY_TYPE = {  # granite_speech5/modeling_granite_speech5.py GraniteSpeech5Encoder.__init__:
    "granite_speech5_ctc": 4,  # input_linear takes num_mel_bins x 4 ("delta-expanded (x2), then stacked in pairs")
    "granite_speech5_encoder": 4}
MEL_BINS_KEY_BY_TYPE = {  # gemma4/modeling_gemma4.py Gemma4AudioSubSampleConvProjection.__init__: the projection
    "gemma4_audio": "subsampling_conv_channels"}  # takes channels[0] // 4 x channels[1], the mel bins / 4 x channels[1]


# input_features as an image of log-mel spectrograms, (crops, frames, mel bins): 1 crop, or 4 where the audio
# configuration sets enable_fusion (models/clap/modeling_clap.py ClapAudioEncoder.forward: transpose(1, 3) before
# BatchNorm2d(num_mel_bins), reshape_mel2img interpolates the frames to spec_size x freq_ratio;
# ClapFeatureExtractor stacks 4 crops when fusing)
SPECTROGRAM_IMAGE_TYPES = ("clap",)


def _frames_first(config) -> bool:
    return bool(_setting(config, FRAMES_FIRST_KEYS)) or getattr(config, "model_type", "") in STACKED_FEATURES_BY_TYPE


def _vision_config(config):
    for key in vision_inputs.VISION_SUBCONFIGS:
        sub = getattr(config, key, None)
        if _is_config(sub) and hasattr(sub, "image_size"):
            return sub
    return config


def input_tail(main: str, config) -> Optional[tuple[int, ...]]:
    """The shape of one example of a non-token input, from the configuration: pixel_values (channels, height,
    width), input_values (samples), input_features (features, frames; a Whisper-style encoder wants exactly twice
    its max_source_positions)."""
    if main in ("pixel_values", "pixel_values_videos"):
        vision = _vision_config(config)
        size = getattr(vision, "image_size", None) or getattr(config, "image_size", None) \
            or vision_inputs.timm_image_side(config) or 224
        size = tuple(int(v) for v in size)[-2:] if isinstance(size, (list, tuple)) else (int(size), int(size))
        channels = getattr(vision, "num_channels", None) or getattr(config, "num_channels", None) or 3
        frames = _setting(config, VIDEO_FRAME_KEYS) or (vision_inputs.VIDEO_FRAMES if main == "pixel_values_videos"
                                                        else None)
        if frames:  # a video: (frames, channels, height, width) (VideoMAE, TimeSformer, ViViT, VideoPrism)
            return (frames, int(channels)) + size
        if main == "pixel_values_videos":
            return None
        return (int(channels),) + size
    if main == "past_values":  # a time series: (context + the largest lag, channels), the channels left out at one
        length = getattr(config, "context_length", None)
        if not isinstance(length, int) or length <= 0:
            return None
        length += max(getattr(config, "lags_sequence", None) or (0,))  # the history the lags read (_past_length)
        channels = getattr(config, "num_input_channels", None) or getattr(config, "input_size", None) or 1
        return (length, int(channels)) if hasattr(config, "num_input_channels") or channels > 1 else (length,)
    if main in HIDDEN_STATE_INPUTS_BY_TYPE.get(getattr(config, "model_type", ""), ()):
        return (SMALL_SEQ, int(config.hidden_size))
    if main == LATENTS or getattr(config, "model_type", "") in LATENT_INPUT_TYPES:  # (hidden_size, frames)
        hop = 1
        for ratio in getattr(config, "upsampling_ratios", None) or getattr(config, "downsampling_ratios", None) or ():
            hop *= int(ratio)
        return (int(config.hidden_size), max(1, CODEC_SAMPLES // hop))
    if main == "input_values":
        channels = getattr(config, "audio_channels", None)
        if isinstance(channels, int) and not isinstance(channels, bool):  # a codec's waveform: (channels, samples)
            return (channels, CODEC_SAMPLES)
        if getattr(config, "downsampling_ratios", None) or getattr(config, "hop_length", None) \
                or _setting(config, CODEC_KEYS):  # a codec's waveform, or a model whose sub-configuration is one
            return (1, CODEC_SAMPLES)
        if getattr(config, "model_type", "") in WAVEFORM_CHANNEL_TYPES:
            return (1, AUDIO_SAMPLES)
        mel, frames = getattr(config, "num_mel_bins", None), getattr(config, "max_length", None)
        if isinstance(mel, int) and isinstance(frames, int):  # a spectrogram (AST): (frames, mel bins)
            return (frames, mel)
        hop = getattr(config, "samples_per_token", None)  # a length it refuses unless a multiple (Muse Spark)
        if isinstance(hop, int) and not isinstance(hop, bool) and hop > 0:
            return (-(-AUDIO_SAMPLES // hop) * hop,)
        return (AUDIO_SAMPLES,)
    if main == "audio_mel":  # (frames, mel bins) (models/gemma3n/modeling_gemma3n.py Gemma3nAudioEncoder.forward)
        return (FEATURE_FRAMES, _setting(config, ("input_feat_size",) + FEATURE_KEYS) or DEFAULT_FEATURES)
    if main == "input_features":
        model_type = getattr(config, "model_type", "")
        features = _setting(config, (MEL_BINS_KEY_BY_TYPE.get(model_type, FEATURE_KEYS[0]),) + FEATURE_KEYS) \
            or DEFAULT_FEATURES
        features *= STACKED_FEATURES_BY_TYPE.get(model_type) or _setting(config, STACKED_FRAMES_KEYS) or 1
        channels = getattr(config, "input_channels", 1) if hasattr(config, "input_feat_per_channel") else 1
        sources = getattr(config, "max_source_positions", None)
        frames = 2 * sources if isinstance(sources, int) and model_wants_fixed_frames(config) else FEATURE_FRAMES
        if model_type in SPECTROGRAM_IMAGE_TYPES:  # (crops, frames, mel bins)
            fusion = getattr(getattr(config, "audio_config", config), "enable_fusion", False)
            return (4 if fusion else 1, frames, features)
        if _frames_first(config):
            factor = _setting(config, ("subsampling_factor",)) or 1  # some refuse a ragged last subsampled frame
            return (-(-frames // factor) * factor, features * int(channels or 1))
        return (features * int(channels or 1), frames)
    return None


def _setting(config, keys: tuple[str, ...]) -> Optional[int]:
    """The first positive integer setting of `keys` in the configuration, else in its sub-configurations (an
    encoder_config, audio_config...), depth first; None if none has one."""
    for key in keys:
        value = getattr(config, key, None)
        values = value if isinstance(value, (list, tuple)) else [value]
        if values and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            return int(values[0])
    for key in getattr(config, "sub_configs", {}) or {}:
        sub = getattr(config, key, None)
        if _is_config(sub) and (found := _setting(sub, keys)) is not None:
            return found
    return None


def model_wants_fixed_frames(config) -> bool:
    # Whisper-style encoders check input_features' length against 2 x max_source_positions
    # (models/moss_transcribe_diarize/modeling_moss_transcribe_diarize.py MossTranscribeDiarizeAudioModel.forward too),
    # or add their whole position table (audioflamingo3/modeling_audioflamingo3.py AudioFlamingo3Encoder.forward)
    return getattr(config, "model_type", "") in ("audioflamingo3_encoder", "whisper", "qwen2_audio_encoder",
                                                 "qwen2_audio", "voxtral", "voxtral_encoder", "kyutai_speech_to_text",
                                                 "moss_transcribe_diarize_audio")


def probe(model_type: str, head: str, build: dict[str, Any], config_kwargs: dict[str, Any], text: str) -> dict:
    """What resolving a spec needs to know of the built model: built once on the meta device (no memory, ~1 s for
    billions of parameters), the parameter count decides the device and the model class says what its input is.
    `build`: hf_model's keyword arguments besides the configuration (implementations, sizes)."""
    try:
        model = hf_model(model_type, head, "meta", **build, **config_kwargs)
    except UserError:
        raise
    except Exception as exc:
        library = missing_library(exc)
        if library:
            raise UserError(f"model spec {text!r}: {NEEDS_LIBRARY} {library} (not installed): building {model_type} "
                            f"with head {head} imports it") from None
        raise UserError(f"model spec {text!r}: building {model_type} with head {head} failed: "
                        f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") \
            from None
    from conventions.llm import parameter_groups

    import inspect

    main = main_input(model)
    accepted = inspect.signature(model.forward).parameters
    grid = any(name in accepted for name in vision_inputs.GRID_INPUTS)
    tail = patch_tail(model.config) if grid and main in ("hidden_states", "pixel_values") else None
    if main == "pixel_values" and vision_inputs.takes_patch_sequence(accepted):
        tail = None  # batched: (batch, patches, channels x patch_size^2)
        sequence = vision_inputs.patch_sequence_tail(model.config)
    else:
        sequence = vision_inputs.main_tail(main, model.config, accepted, SMALL_SEQ, input_tail)  # batched too
    try:
        non_embedding = model.num_parameters(exclude_embeddings=True)
    except Exception:  # noqa: BLE001 (a model without input embeddings to exclude)
        non_embedding = sum(p.numel() for p in model.parameters())
    return {"n_params": sum(p.numel() for p in model.parameters()),
            "token_model": main == "input_ids",
            "main_input": main,
            "input_tail": tail or sequence or input_tail(main, model.config)
            or input_tail(getattr(model, "main_input_name", main), model.config),  # its forward names it otherwise
            "unbatched": tail is not None,  # the patches of every image in one sequence: no batch dimension
            "position_offset": position_offset(model),
            "model_class": type(model).__name__,
            "token_rows": getattr(model.config, CODEBOOK_ROWS[model_type]) if model_type in CODEBOOK_ROWS else 1,
            "no_forward": vision_inputs.defines_no_forward(model),
            "hf_non_embedding": non_embedding,
            **parameter_groups(model, model.config)}


_EXPERTS = ("eager", "grouped_mm", "batched_mm")


def from_transformers(text: str, batch: Optional[int] = None, seq_len: Optional[int] = None,
                      input_shape: Optional[str] = None, trace_with: Optional[Callable] = None,
                      traced: Optional[dict] = None, probe_here: bool = False) -> ModelSpec:
    """hf:MODEL_TYPE[?k=v] and preset:NAME[?k=v] -> a ModelSpec whose factory builds the model from config.

    Everything that needs `transformers` (the configuration checked, the model built once on the meta device, its
    input decided) happens in one job process (jobs.call_in_job: bounded in time and memory), so this process
    imports neither transformers nor torch for it. `trace_with(spec, framework)` (models.layer_ir): that job also
    traces the model on the meta device (on_meta), the layer IR put in `traced["ir"]` (None if it failed).
    `probe_here`: the caller is itself a job process (reconcile sweep): everything runs in it."""
    kind, _, rest = text.partition(":")
    base, query = _split_query(rest)
    note = ""
    if kind == "preset":
        from reference_models import presets

        preset = presets.get(base.strip())
        model_type, config_kwargs, head = preset.model_type, {**preset.config}, preset.head
        note = f"{preset.citation} (paper: {preset.paper_params} parameters). {preset.note}"
    else:
        model_type, config_kwargs, head = base.strip(), {}, None
    options = {k: query.pop(k) for k in _RESERVED if k in query}
    config_kwargs.update(query)
    head = options.get("head") or head
    if head is not None and head not in HEADS:
        raise UserError(f"model spec {text!r}: head must be one of {', '.join(HEADS)}, not {head!r}")
    attn = options.get("attn_implementation")
    if attn is not None and attn not in ("eager", "sdpa"):
        raise UserError(f"model spec {text!r}: attn_implementation must be eager or sdpa, not {attn!r}")
    experts = options.get("experts_implementation")
    if experts is not None and experts not in _EXPERTS:
        raise UserError(f"model spec {text!r}: experts_implementation must be one of {', '.join(_EXPERTS)}, "
                        f"not {experts!r}")
    sizes = options.get("sizes", "default")
    if sizes not in SIZES:
        raise UserError(f"model spec {text!r}: sizes must be one of {', '.join(SIZES)}, not {sizes!r}")
    extras = options.get("inputs", "")
    unknown = [n for n in str(extras).split(",") if n and n not in EXTRA_INPUTS]
    if unknown:
        raise UserError(f"model spec {text!r}: inputs may name {', '.join(EXTRA_INPUTS)}, not {', '.join(unknown)}")
    device = options.get("device")
    if device not in (None, "meta", "cpu"):
        raise UserError(f"model spec {text!r}: device must be meta or cpu, not {device!r}")
    if input_shape is not None:
        parse_shape(input_shape)  # a malformed shape is refused before any job runs
    build = {k: v for k, v in (("attn_implementation", attn), ("experts_implementation", experts),
                               ("sizes", sizes if sizes != "default" else None), ("inputs", extras)) if v}
    request = (text, model_type, config_kwargs, head, build, device, note, batch, seq_len, input_shape, trace_with)
    if probe_here:
        state, value, ir = _resolve(*request)
    else:
        from .jobs import call_in_job

        state, value, ir = call_in_job(_resolve, request, f"model spec {text[:200]!r}")
    if state == "error":
        raise UserError(value)
    if traced is not None:
        traced["ir"] = ir
    return value


def _resolve(text: str, model_type: str, config_kwargs: dict[str, Any], head: Optional[str], build: dict[str, Any],
             device: Optional[str], note: str, batch: Optional[int], seq_len: Optional[int],
             input_shape: Optional[str], trace_with: Optional[Callable]) -> tuple[str, Any, Any]:
    """In a job process: ("ok", ModelSpec, layer IR or None) or ("error", the one line, None)."""
    try:
        spec = _spec(text, model_type, config_kwargs, head, build, device, note, batch, seq_len, input_shape)
    except UserError as exc:
        return "error", str(exc), None
    ir = None
    if trace_with is not None:
        try:
            ir = trace_with(on_meta(spec), "torch")
        except Exception:  # noqa: BLE001 (traced again, and its failure said, by the caller's own trace)
            ir = None
    return "ok", spec, ir


def _spec(text: str, model_type: str, config_kwargs: dict[str, Any], head: Optional[str], build: dict[str, Any],
          device: Optional[str], note: str, batch: Optional[int], seq_len: Optional[int],
          input_shape: Optional[str]) -> ModelSpec:
    from .spec import refuse_negative_counts

    sizes = build.get("sizes") or "default"
    head = head or default_head(model_type)
    config = hf_config(model_type, config_kwargs, text, sizes, head)
    refuse_negative_counts(model_type, config_kwargs, text)
    facts = probe(model_type, head, build, config_kwargs, text)
    n_params = facts["n_params"]
    meta = device == "meta" or (device is None and n_params > META_ABOVE_PARAMS)
    token_model = facts["token_model"]
    if input_shape is not None:
        shape = parse_shape(input_shape)
        if token_model and len(shape) != 2:
            raise UserError(f"{text!r} takes token ids: --input-shape B,T (batch, sequence length), not {input_shape}")
    elif token_model:
        cap = max_positions(config)
        cap = cap - facts.get("position_offset", 0) if cap else cap
        wanted = SMALL_SEQ if sizes in ("small", "layers") else DEFAULT_SEQ_CAP
        seq = seq_len or min(cap or wanted, wanted)
        if cap is not None and seq > cap:
            raise UserError(f"--seq-len {seq} exceeds {text!r}'s {cap} positions")
        streams = token_streams(config, "input_ids")
        shape = ((batch or 1) * facts.get("token_rows", 1), seq) + ((streams,) if streams else ())
    else:
        if seq_len is not None:
            raise UserError(f"--seq-len applies to token models; {text!r} takes {facts.get('main_input')}")
        tail = facts.get("input_tail")
        if facts.get("no_forward"):
            raise UserError(f"model spec {text!r}: {facts['model_class']} defines no forward (torch.nn.Module's "
                            "unimplemented one: only its own methods, such as encode, run it): nothing to trace")
        session = vision_inputs.SESSION_INPUTS.get(facts.get("main_input"))
        if session:  # never a tensor, whatever main_input_name sizes
            raise UserError(f"model spec {text!r}: {facts['model_class']} takes {facts.get('main_input')!r}, "
                            f"{session}")
        if not tail:
            raise UserError(f"model spec {text!r}: {facts['model_class']} takes {facts.get('main_input')!r}, an "
                            "input reconcile cannot make from the configuration; give --input-shape")
        shape = tuple(tail) if facts.get("unbatched") else (batch or 1,) + tuple(tail)
    if not meta and USE_CACHE not in config_kwargs and (hasattr(config, USE_CACHE)
                                                       or _sub_config_has(config, USE_CACHE)):
        # One forward over T tokens needs no key/value cache, and its DynamicCache output stops torch.jit tracing
        # (fvcore). On the meta device the cache stays: without it transformers checks position_ids for packed
        # sequences with a .item() that meta tensors refuse (masking_utils.find_packed_sequence_indices).
        config_kwargs[USE_CACHE] = False
        config = hf_config(model_type, config_kwargs, text, sizes, head)
    kwargs = dict(model_type=model_type, head=head, device="meta" if meta else "cpu", **build, **config_kwargs)
    info = dict(_config_dict(config), head=head, model_class=facts["model_class"], n_params=n_params,
                hf_non_embedding=facts["hf_non_embedding"], main_input=facts.get("main_input", "input_ids"),
                **{k: v for k, v in facts.items() if k.startswith("p_")})  # parameter groups (conventions/llm.py)
    info.update({k: v for k, v in build.items()})
    return ModelSpec(text, shape, torch_factory=f"{__name__}:hf_model",
                     factory_kwargs=tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                                 for k, v in kwargs.items())),
                     token_model=token_model, config=info, meta=meta, note=note)
