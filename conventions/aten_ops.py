"""The products law's oracle: every op a PyTorch forward may dispatch, and what it multiplies.

Each op (an aten overload packet such as `addmm`, `_grouped_mm`, `mkldnn_rnn_layer`; a custom op as
`namespace::name`) is in exactly one category:
- PRODUCT: it does multiply-accumulates, counted by a formula over its argument shapes (one function per family
  below, each saying what the kernel multiplies);
- FREE: it does no multiply-accumulate: element-wise arithmetic and activations, normalisations, softmax,
  reductions and scans, pools, interpolation, losses, views, copies, creation, random numbers, indexing, sorting,
  bookkeeping;
- NO_MACC_CONVENTION: arithmetic that is neither of those and has no agreed multiply-accumulate count (FFTs,
  matrix decompositions and solves, sparse products whose count depends on the sparsity pattern, quantized
  kernels whose packed weights hide their shapes): the front end gives such an op a row that says so.
An op in none of them is unsupported: the front end gives it a row of kind `unsupported_op` and a warning, never
a silent 0. Backward kernels are not listed: a forward does not run them.

The table is kept apart from the layer typing (reconcile/frontends/torch_ir.py): the MACC law compares the
layers' terms with the total this table computes from the ops the forward executed. Pure Python: a formula reads
argument shapes (`Arg`), never tensors.

Sources (torch 2.13.0): aten/src/ATen/native/native_functions.yaml for the op signatures and the FREE lists
(`tags: pointwise`, `tags: reduction` and the view ops, which the ops' `torch.Tag` / `is_view` confirm, see
tests/test_aten_ops.py); the kernels cited per formula; torch/utils/flop_counter.py, whose formulas count the same
products (2 FLOPs each) where it has one. Ops with a CompositeImplicitAutograd kernel only (`linear`, `matmul`,
`einsum`, `lstm`, `conv2d`, ...) decompose before dispatch and are seen as the ops they become; the product ones
are listed anyway so the table reads the same whatever level records the forward.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

PRODUCT = "product"
FREE = "product-free"
NO_MACC_CONVENTION = "no multiply-accumulate convention"
UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Arg:
    """What a formula reads of a tensor argument: its shape, and for a 1-D integer tensor on a real device its
    last element (the offsets of a grouped matmul end there: rows past it are not multiplied)."""

    shape: tuple[int, ...]
    last: Optional[int] = None


Formula = Callable[[tuple, dict, tuple], int]  # (args, kwargs, output shape) -> multiply-accumulates


@dataclass(frozen=True)
class OpRule:
    category: str
    says: str  # what the op multiplies (PRODUCT), or what kind of op it is
    formula: Optional[Formula] = None
    factors: Optional[tuple[int, ...]] = None  # positions of the multiplied tensors; None: every tensor argument
    bias: Optional[int] = None  # position of a bias the op adds to its products
    split: Optional[Callable[[tuple, dict, tuple], tuple[int, int]]] = None  # fused: (against weights, activations)
    routed: bool = False  # its rows go to groups (experts) by data: each multiplies only its own group


def _prod(shape) -> int:
    return math.prod(shape) if shape else 1


def _tensors(value: Any) -> list[Arg]:
    if isinstance(value, Arg):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, Arg)]
    return []


# ------------------------------------------------------------------------------------------------ formulas
def _rows_k_n(a: int, b: int) -> Formula:
    """(..., M, K) x (..., K, N): every row of a against every column of b, K multiply-accumulates each."""
    return lambda args, kwargs, out: _prod(args[a].shape[:-1]) * args[a].shape[-1] * args[b].shape[-1]


def _out_times_k(a: int) -> Formula:
    """Every output element is one dot product over a's last dimension (the packed / quantized weight layouts
    hide N, the output shows it)."""
    return lambda args, kwargs, out: _prod(out) * args[a].shape[-1]


def _matrix_vector(a: int) -> Formula:
    return lambda args, kwargs, out: _prod(args[a].shape)  # (M, K) x (K,): M*K


def _dot(args, kwargs, out) -> int:
    return args[0].shape[-1]


def _outer(args, kwargs, out) -> int:
    return args[1].shape[0] * args[2].shape[0]  # addr: an outer product, one multiply per pair (K = 1)


def _conv(transposed_at: Optional[int], always_transposed: bool = False) -> Formula:
    """batch x kernel weights (C_out x C_in/groups x k...) x positions: the output's positions for a convolution,
    the input's for a transposed one (each input element is multiplied by the whole kernel slice it scatters)."""
    def formula(args, kwargs, out) -> int:
        x, w = args[0].shape, args[1].shape
        transposed = always_transposed or (transposed_at is not None and len(args) > transposed_at
                                           and bool(args[transposed_at]))
        return x[0] * _prod(w) * _prod(x[2:] if transposed else out[2:])
    return formula


def _conv_tbc(args, kwargs, out) -> int:
    w = args[1].shape  # (k, C_in, C_out); out (T', B, C_out)
    return _prod(out) * w[0] * w[1]


def _deform_conv(args, kwargs, out) -> int:
    # torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp: the bilinear sampling of each tap is interpolation; the
    # products are the convolution's, over the output positions
    return out[0] * _prod(out[2:]) * _prod(args[1].shape)


def _attention(q: int = 0, k: int = 1, v: int = 2, key_len_axis: int = -2) -> Formula:
    """Q K^T and A V: every query row against every key, over the query/key width and then the value width."""
    def formula(args, kwargs, out) -> int:
        sq, sk, sv = args[q].shape, args[k].shape, args[v].shape
        return _prod(sq[:-1]) * sk[key_len_axis] * (sq[-1] + sv[-1])
    return formula


def _mha_split(args, kwargs, out) -> tuple[int, int]:
    """aten._native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, ...): the q/k/v and
    output projections against the weights, and QK^T + AV between activations."""
    q, k = args[0].shape, args[1].shape
    embed = q[-1]
    q_rows, kv_rows = _prod(q[:-1]), _prod(k[:-1])
    return (2 * q_rows + 2 * kv_rows) * embed * embed, 2 * q_rows * k[-2] * embed


def _encoder_layer_split(args, kwargs, out) -> tuple[int, int]:
    """aten._transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias,
    use_gelu, norm_first, eps, norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1,
    ffn_weight_2, ffn_bias_2, ...): every token through the qkv, output and two feed-forward weights; QK^T + AV."""
    src = args[0].shape
    rows = _prod(src[:-1])
    weights = sum(_prod(args[i].shape) for i in (3, 5, 14, 16))
    return rows * weights, 2 * rows * src[-2] * src[-1]


def _fused(split) -> Formula:
    return lambda args, kwargs, out: sum(split(args, kwargs, out))


def _recurrent(weights: Callable[[tuple], list[Arg]]) -> Formula:
    """Every step of every layer and direction multiplies its input by W_ih (gates*H x in) and the previous hidden
    state by W_hh (gates*H x H, or x P with projections), plus W_hr (P x H) with projections: one multiply-
    accumulate per weight element per row (sequence step x batch). Gates: 4 for an LSTM (i, f, g, o), 3 for a
    GRU (r, z, n; r scales W_hn h after the product), 1 for a plain RNN; they are in the weights' first
    dimension, so the formula needs no mode."""
    def formula(args, kwargs, out) -> int:
        rows = _prod(args[0].shape[:-1])  # (T, B, in), (B, T, in), (T, in) or packed (sum of batch sizes, in)
        return rows * sum(_prod(w.shape) for w in weights(args) if len(w.shape) == 2)
    return formula


def _last_list(args) -> list[Arg]:
    """aten.lstm/gru/rnn_* (input or packed data, ..., hx, params, ...): params is the last tensor list."""
    lists = [a for a in args if isinstance(a, (list, tuple)) and _tensors(a)]
    return _tensors(lists[-1]) if lists else []


def _offsets(args, kwargs) -> Optional[Arg]:
    offs = kwargs.get("offs")
    if offs is None:
        offs = next((a for a in args[2:] if isinstance(a, Arg) and len(a.shape) == 1 and a.last is not None), None)
    return offs if isinstance(offs, Arg) else None


def _grouped(args, kwargs, out) -> int:
    """torch/nn/functional.py grouped_mm: a 2-D operand is cut into groups by `offs` (rows past offs[-1] are not
    multiplied); a 3-D one enumerates its groups. (S, K) x (G, K, N): each routed row against its group's
    weight only, S*K*N, whatever G is; (G, M, K) x (G, K, N): G*M*K*N; (M, K) x (K, N) with K cut into groups
    (weight gradients): M*K*N."""
    a, b = args[0].shape, args[1].shape
    offs = _offsets(args, kwargs)
    covered = (lambda n: min(n, offs.last)) if offs is not None and offs.last is not None else (lambda n: n)
    if len(a) == 2 and len(b) == 2:
        return a[0] * covered(a[1]) * b[1]
    if len(a) == 2:
        return covered(out[0]) * a[1] * out[-1]
    if len(b) == 2:
        return _prod(out[:-1]) * covered(out[-1]) * a[-1]
    return _prod(out) * a[-1]


def _pairwise(args, kwargs, out) -> int:
    # cdist: (..., P, M) x (..., R, M), one multiply-accumulate per coordinate of every pair ((x - y)^2 summed; the
    # p=2 kernel runs it as a matmul)
    return _prod(args[0].shape[:-1]) * args[1].shape[-2] * args[0].shape[-1]


def _pdist(args, kwargs, out) -> int:
    n, m = args[0].shape
    return n * (n - 1) // 2 * m


def _trilinear(args, kwargs, out) -> int:
    """aten._trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim) (F.bilinear: x1^T W x2): one multiply-
    accumulate per point of the broadcast space of the three (unsqueezed) operands."""
    shapes = []
    for tensor, expand in zip(args[:3], args[3:6]):
        shape = list(tensor.shape)
        for dim in sorted(expand):
            shape.insert(dim, 1)
        shapes.append(shape)
    return _prod([max(s[d] for s in shapes) for d in range(len(shapes[0]))])


def _affine_grid(args, kwargs, out) -> int:
    return _prod(out) * (out[-1] + 1)  # each grid point (x, y[, z], 1) against its row of theta


def _embedding_bag(args, kwargs, out) -> int:
    # per_sample_weights (argument 6) scale each looked-up row before the sum: a sparse matrix times the table
    weighted = len(args) > 6 and isinstance(args[6], Arg) or isinstance(kwargs.get("per_sample_weights"), Arg)
    return _prod(args[1].shape) * args[0].shape[-1] if weighted else 0


def _foreach_mm(args, kwargs, out) -> int:
    return sum(_prod(a.shape[:-1]) * a.shape[-1] * b.shape[-1] for a, b in zip(_tensors(args[0]), _tensors(args[1])))


# ------------------------------------------------------------------------------------------------ the table
_MM = "one multiply-accumulate per (row of the first operand, column of the second, contracted element)"
_PRODUCTS: dict[str, OpRule] = {
    **{op: OpRule(PRODUCT, _MM, _rows_k_n(0, 1), (0, 1)) for op in ("mm", "bmm", "_int_mm", "matmul")},
    **{op: OpRule(PRODUCT, _MM + "; the added input is a bias", _rows_k_n(1, 2), (1, 2), bias=0)
       for op in ("addmm", "baddbmm", "addbmm", "_addmm_activation", "_sparse_addmm_dense")},
    "mv": OpRule(PRODUCT, "matrix x vector: M*K", _matrix_vector(0), (0, 1)),
    "addmv": OpRule(PRODUCT, "matrix x vector plus a bias: M*K", _matrix_vector(1), (1, 2), bias=0),
    "dot": OpRule(PRODUCT, "K multiply-accumulates", _dot, (0, 1)),
    "vdot": OpRule(PRODUCT, "K multiply-accumulates", _dot, (0, 1)),
    "addr": OpRule(PRODUCT, "outer product plus a bias: M*N multiplies (a matmul with K = 1)", _outer, (1, 2),
                   bias=0),
    **{op: OpRule(PRODUCT, "x W^T (+ b): every output element a dot product over the input width",
                  _out_times_k(0), (0, 1), bias=2)
       for op in ("linear", "mkldnn_linear", "_mixed_dtypes_linear")},
    **{op: OpRule(PRODUCT, "a matmul against a packed or scaled (quantized) weight: output elements x K",
                  _out_times_k(0), (0, 1))
       for op in ("_scaled_mm", "_scaled_mm_v2", "_weight_int8pack_mm", "_weight_int4pack_mm",
                  "_weight_int4pack_mm_for_cpu", "_weight_int4pack_mm_with_scales_and_zeros",
                  "_dyn_quant_matmul_4bit")},
    **{op: OpRule(PRODUCT, "grouped matmul (mixture-of-experts experts): each routed row against its own group's "
                           "weight only", _grouped, (0, 1), routed=True)
       for op in ("_grouped_mm", "grouped_mm", "_scaled_grouped_mm", "_scaled_grouped_mm_v2",
                  "transformers::grouped_mm_fallback")},
    "_foreach_mm": OpRule(PRODUCT, _MM + ", for each pair of the two lists", _foreach_mm, (0, 1)),
    **{op: OpRule(PRODUCT, "convolution: batch x weight elements x output positions (input positions when "
                           "transposed)", _conv(6), (0, 1), bias=2)
       for op in ("convolution", "_convolution", "convolution_overrideable")},
    **{op: OpRule(PRODUCT, "convolution: batch x weight elements x output positions", _conv(None), (0, 1))
       for op in ("mkldnn_convolution", "cudnn_convolution", "cudnn_convolution_relu", "cudnn_convolution_add_relu",
                  "miopen_convolution", "miopen_depthwise_convolution", "miopen_convolution_relu",
                  "miopen_convolution_add_relu", "_mps_convolution", "_slow_conv2d_forward", "slow_conv3d_forward",
                  "slow_conv_dilated2d", "slow_conv_dilated3d", "_conv_depthwise2d", "conv_depthwise3d",
                  "_nnpack_spatial_convolution", "thnn_conv2d", "conv1d", "conv2d", "conv3d")},
    **{op: OpRule(PRODUCT, "transposed convolution: batch x weight elements x input positions",
                  _conv(None, always_transposed=True), (0, 1))
       for op in ("cudnn_convolution_transpose", "miopen_convolution_transpose", "_mps_convolution_transpose",
                  "slow_conv_transpose2d", "slow_conv_transpose3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d")},
    "conv_tbc": OpRule(PRODUCT, "time-batch-channel convolution: output elements x kernel x C_in", _conv_tbc,
                       (0, 1), bias=2),
    "torchvision::deform_conv2d": OpRule(PRODUCT, "deformable convolution: the convolution's products (the bilinear "
                                                  "sampling of each tap is interpolation)", _deform_conv, (0, 1),
                                         bias=4),
    **{op: OpRule(PRODUCT, "scaled dot-product attention: QK^T and AV, rows x keys x (E + E_v)", _attention(),
                  (0, 1, 2))
       for op in ("_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu",
                  "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
                  "_scaled_dot_product_fused_attention_overrideable", "_scaled_dot_product_attention_math",
                  "_scaled_dot_product_attention_math_for_mps", "scaled_dot_product_attention",
                  "_triton_scaled_dot_attention")},
    **{op: OpRule(PRODUCT, "attention kernel with (batch, length, heads, E) operands: QK^T and AV",
                  _attention(key_len_axis=1), (0, 1, 2))
       for op in ("_flash_attention_forward", "_efficient_attention_forward")},
    **{op: OpRule(PRODUCT, "fused nn.MultiheadAttention: q/k/v/output projections and QK^T + AV",
                  _fused(_mha_split), (5, 7), split=_mha_split)
       for op in ("_native_multi_head_attention", "_triton_multi_head_attention")},
    "_transformer_encoder_layer_fwd": OpRule(PRODUCT, "fused nn.TransformerEncoderLayer: projections, feed-forward "
                                                      "and QK^T + AV", _fused(_encoder_layer_split), (3, 5, 14, 16),
                                             split=_encoder_layer_split),
    "mkldnn_rnn_layer": OpRule(PRODUCT, "one LSTM layer and direction (oneDNN): rows x (W_ih + W_hh) elements",
                               _recurrent(lambda args: list(args[1:3])), (1, 2)),
    **{op: OpRule(PRODUCT, "recurrent network, every layer and direction: rows x its 2-D weights' elements",
                  _recurrent(_last_list), None)
       for op in ("lstm", "gru", "rnn_tanh", "rnn_relu", "_lstm_mps", "_cudnn_rnn", "miopen_rnn")},
    **{op: OpRule(PRODUCT, "one recurrent cell step: rows x (W_ih + W_hh) elements",
                  _recurrent(lambda args: list(args[2:4])), (2, 3))
       for op in ("lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell")},
    **{op: OpRule(PRODUCT, "pairwise distances: one multiply-accumulate per coordinate of every pair", _pairwise,
                  (0, 1)) for op in ("_cdist_forward", "_euclidean_dist")},
    "_pdist_forward": OpRule(PRODUCT, "pairwise distances within one set: N(N-1)/2 pairs x M", _pdist, (0,)),
    "_trilinear": OpRule(PRODUCT, "x1^T W x2 (F.bilinear): one per point of the broadcast space", _trilinear,
                         (0, 1, 2)),
    **{op: OpRule(PRODUCT, "affine grid: each (x, y[, z], 1) point against its row of theta", _affine_grid, (0,))
       for op in ("affine_grid_generator", "cudnn_affine_grid_generator")},
    "_embedding_bag": OpRule(PRODUCT, "embedding bag: with per-sample weights one multiply-accumulate per looked-up "
                                      "element, else additions only (0)", _embedding_bag, (0,)),
    "_embedding_bag_forward_only": OpRule(PRODUCT, "as _embedding_bag", _embedding_bag, (0,)),
}

# Element-wise ops (native_functions.yaml `tags: pointwise`), activations and element-wise kernels.
_ELEMENTWISE = """
__and__ __iand__ __ilshift__ __ior__ __irshift__ __ixor__ __lshift__ __or__ __rshift__ __xor__ _add_relu
_amp_foreach_non_finite_check_and_unscale _amp_update_scale _conj_physical _compute_linear_combination
_dirichlet_grad _fake_quantize_learnable_per_channel_affine _fake_quantize_learnable_per_tensor_affine
_fake_quantize_per_tensor_affine_cachemask_tensor_qparams _fused_moving_avg_obs_fq_helper
_fused_moving_avg_obs_fq_helper_functional _masked_scale _prelu_kernel _standard_gamma_grad _thnn_fused_gru_cell
_thnn_fused_lstm_cell _transform_bias_rescale_qkv _weight_norm_interface abs acos acosh add addcdiv addcmul angle
asin asinh atan atan2 atanh bitwise_and bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor
ceil celu clamp clamp_max clamp_min complex conj_physical copysign cos cosh deg2rad dequantize digamma div elu
embedding_renorm eq erf erfc erfinv exp exp2 expm1 fake_quantize_per_channel_affine_cachemask
fake_quantize_per_tensor_affine_cachemask float_power floor floor_divide fmax fmin fmod frac frexp gcd ge gelu
gelu_backward glu gt hardshrink hardsigmoid hardswish hardtanh heaviside hypot i0 igamma igammac int_repr isinf
isnan isneginf isposinf lcm ldexp le leaky_relu lerp lgamma linalg_cross log log10 log1p log2 log_sigmoid_forward
logaddexp logaddexp2 logical_and logical_not logical_or logical_xor logit logit_backward lt masked_fill max maximum
min minimum mish mul mvlgamma nan_to_num native_dropout native_dropout_backward ne neg nextafter polar polygamma
pow prelu quantize_per_channel quantize_per_tensor quantize_per_tensor_dynamic rad2deg reciprocal relu relu6
remainder renorm round rrelu_with_noise rrelu_with_noise_functional rsqrt rsub sgn sigmoid sigmoid_backward sign
signbit silu silu_backward sin sinc sinh softplus softshrink special_airy_ai special_bessel_j0 special_bessel_j1
special_bessel_y0 special_bessel_y1 special_chebyshev_polynomial_t special_chebyshev_polynomial_u
special_chebyshev_polynomial_v special_chebyshev_polynomial_w special_entr special_erfcx
special_hermite_polynomial_h special_hermite_polynomial_he special_i0e special_i1 special_i1e
special_laguerre_polynomial_l special_legendre_polynomial_p special_log_ndtr special_modified_bessel_i0
special_modified_bessel_i1 special_modified_bessel_k0 special_modified_bessel_k1 special_ndtri
special_scaled_modified_bessel_k0 special_scaled_modified_bessel_k1 special_shifted_chebyshev_polynomial_t
special_shifted_chebyshev_polynomial_u special_shifted_chebyshev_polynomial_v special_shifted_chebyshev_polynomial_w
special_spherical_bessel_j0 special_xlog1py special_zeta sqrt square sub tan tanh tanh_backward threshold
threshold_backward trunc where xlogy _fused_dropout _fused_adam _fused_adamw _fused_sgd _fused_adagrad
"""
# Normalisations, softmax, reductions, scans, pools, interpolation and losses: arithmetic, no dot products.
_NORMALISE_REDUCE_POOL = """
_batch_norm_no_update _batch_norm_with_update _batch_norm_with_update_functional _fused_rms_norm
_native_batch_norm_legit _native_batch_norm_legit_functional _native_batch_norm_legit_no_training batch_norm_elemt
batch_norm_gather_stats batch_norm_gather_stats_with_counts batch_norm_stats batch_norm_update_stats
cudnn_batch_norm miopen_batch_norm native_batch_norm native_group_norm native_layer_norm native_norm rms_norm
quantized_batch_norm _softmax _log_softmax softmax log_softmax _safe_softmax _masked_softmax
_nested_tensor_softmax_with_shape _sparse_softmax _sparse_log_softmax
all amax amin aminmax _aminmax any argmax argmin count_nonzero linalg__powsum linalg_vector_norm logsumexp mean
nansum norm prod std std_mean sum var var_mean trace dist _foreach_norm _foreach_powsum _foreach_max
cumsum cumprod logcumsumexp _logcumsumexp cummax cummin _cummax_helper _cummin_helper segment_reduce
index_reduce scatter_reduce _sparse_sum _sparse_csr_sum _sparse_csr_prod median nanmedian mode kthvalue
adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d _adaptive_avg_pool2d _adaptive_avg_pool3d
adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d avg_pool1d avg_pool2d avg_pool3d max_pool1d max_pool2d
max_pool3d max_pool2d_with_indices max_pool3d_with_indices max_pool1d_with_indices fractional_max_pool2d
fractional_max_pool3d mkldnn_adaptive_avg_pool2d mkldnn_max_pool2d mkldnn_max_pool3d quantized_max_pool1d
quantized_max_pool2d quantized_max_pool3d max_unpool2d max_unpool3d lp_pool1d lp_pool2d
upsample_bicubic2d upsample_bilinear2d upsample_linear1d upsample_nearest1d upsample_nearest2d upsample_nearest3d
upsample_trilinear3d _upsample_bicubic2d_aa _upsample_bilinear2d_aa _upsample_lanczos2d_aa _upsample_nearest_exact1d
_upsample_nearest_exact2d _upsample_nearest_exact3d grid_sampler_2d grid_sampler_3d _grid_sampler_2d_cpu_fallback
cudnn_grid_sampler col2im im2col torchvision::roi_align torchvision::ps_roi_align torchvision::roi_pool
torchvision::ps_roi_pool torchvision::_interpolate_bilinear2d_aa torchvision::_interpolate_bicubic2d_aa
nll_loss_forward nll_loss2d_forward binary_cross_entropy binary_cross_entropy_with_logits mse_loss smooth_l1_loss
huber_loss soft_margin_loss multi_margin_loss multilabel_margin_loss_forward _ctc_loss _cudnn_ctc_loss miopen_ctc_loss
kl_div
"""
# Views, copies, creation, random numbers, indexing, sorting and bookkeeping: no arithmetic on values.
_DATA = """
_conj _fw_primal _indices _make_dual _neg_view _nested_get_values _nested_view_from_buffer _nested_view_from_jagged
_reshape_alias _sparse_broadcast_to _values alias as_strided ccol_indices col_indices copy crow_indices detach
diagonal expand indices lift_fresh permute row_indices select slice slice_inverse split split_with_sizes squeeze t
transpose unbind unfold unsqueeze values view view_as_complex view_as_real _unsafe_view _reshape_copy
_reshape_alias_copy alias_copy as_strided_copy detach_copy diagonal_copy expand_copy narrow_copy permute_copy
select_copy slice_copy split_copy split_with_sizes_copy squeeze_copy t_copy transpose_copy unbind_copy
unfold_copy unsqueeze_copy values_copy indices_copy view_copy view_as_complex_copy view_as_real_copy _conj_copy
_neg_view_copy ccol_indices_copy col_indices_copy crow_indices_copy row_indices_copy _nested_get_values_copy
_nested_view_from_buffer_copy _nested_view_from_jagged_copy _fw_primal_copy _make_dual_copy _indices_copy
_values_copy _sparse_broadcast_to_copy
clone _to_copy copy_ _copy_from _copy_from_and_resize _lazy_clone lift lift_fresh_copy contiguous _to_dense
_to_sparse _to_sparse_csr _to_sparse_csc _to_sparse_bsr _to_sparse_bsc to_mkldnn _mkldnn_reshape _mkldnn_transpose
mkldnn_reorder_conv2d_weight mkldnn_reorder_conv3d_weight to_padded_tensor _convert_weight_to_int4pack
_convert_weight_to_int4pack_for_cpu _dyn_quant_pack_4bit_weight _cudnn_rnn_flatten_weight _pin_memory
resize resize_as _resize_output set fill zero _foreach_copy _foreach_clone _foreach_zero
cat _cat stack _stack _chunk_cat repeat repeat_interleave constant_pad_nd reflection_pad1d reflection_pad2d
reflection_pad3d replication_pad1d replication_pad2d replication_pad3d _pad_circular pixel_shuffle pixel_unshuffle
channel_shuffle roll flip rot90 tril triu diag_embed block_diag unsafe_split unsafe_split_with_sizes
select_scatter slice_scatter diagonal_scatter as_strided_scatter _pack_padded_sequence _pad_packed_sequence
_jagged_to_padded_dense_forward _padded_dense_to_jagged_forward _nested_tensor_from_mask
_nested_tensor_from_mask_left_aligned _nested_from_padded _nested_from_padded_and_nested_example
_nested_from_padded_tensor _nested_tensor_from_tensor_list
empty empty_like empty_permuted empty_strided empty_quantized new_empty new_empty_strided new_full new_ones
new_zeros _new_zeros_with_same_feature_meta zeros zeros_like ones ones_like full full_like scalar_tensor arange
range linspace logspace eye tril_indices triu_indices bartlett_window blackman_window hamming_window hann_window
kaiser_window fft_fftfreq fft_rfftfreq _efficientzerotensor from_file _empty_affine_quantized
_empty_per_channel_affine_quantized _make_per_tensor_quantized_tensor _make_per_channel_quantized_tensor
sparse_coo_tensor sparse_compressed_tensor _sparse_coo_tensor_with_dims _sparse_coo_tensor_with_dims_and_tensors
_sparse_compressed_tensor_with_dims _spdiags _coalesce _coalesced _cudnn_init_dropout_state
rand rand_like randn randn_like randint randint_like randperm random normal normal_functional uniform bernoulli
binomial poisson multinomial exponential geometric cauchy log_normal _standard_gamma _sample_dirichlet
_philox_key_fold_in _philox_key_split _philox_normal _philox_uniform _fill_mem_eff_dropout_mask
embedding index index_select gather take masked_select index_put _index_put_impl _unsafe_index _unsafe_index_put
_unsafe_masked_index _unsafe_masked_index_put_accumulate index_add index_copy index_fill put scatter scatter_add
masked_scatter sparse_mask _sparse_mask_projection
sort topk argsort msort unique_consecutive unique_dim unique_dim_consecutive _unique _unique2 nonzero
nonzero_static bucketize searchsorted histc histogram _histogramdd_bin_edges _histogramdd_from_bin_cts
_histogramdd_from_bin_tensors bincount isin allclose equal is_same_size is_set_to is_coalesced is_pinned
_local_scalar_dense _assert_async _assert_scalar _assert_tensor_metadata _functional_assert_async
_functional_assert_scalar _functional_sym_constrain_range _functional_sym_constrain_range_for_size
sym_constrain_range sym_constrain_range_for_size _make_dep_token _print record_stream _has_same_storage_numel _nnz
dense_dim sparse_dim _dimI _dimV q_per_channel_axis q_per_channel_scales q_per_channel_zero_points q_scale
q_zero_point qscheme _fused_sdp_choice _use_cudnn_ctc_loss _use_miopen_ctc_loss _linalg_check_errors _is_all_true
_is_any_true hash_tensor _validate_compressed_sparse_indices _convert_indices_from_coo_to_csr
_convert_indices_from_csr_to_coo _nested_tensor_size _nested_tensor_strides _nested_tensor_storage_offsets
_nested_compute_contiguous_strides_offsets _nested_get_jagged_dummy _nested_get_lengths _nested_get_max_seqlen
_nested_get_min_seqlen _nested_get_offsets _nested_get_ragged_idx sparse_resize sparse_resize_and_clear
resize_as_sparse copy_sparse_to_sparse torchvision::nms size sym_size stride sym_stride storage_offset
sym_storage_offset numel sym_numel dim is_contiguous sym_is_contiguous is_strides_like_format
is_non_overlapping_and_dense prim::device prim::layout
"""
# Arithmetic with no agreed multiply-accumulate count.
_NO_CONVENTION = {
    **{op: "a fast Fourier transform: butterflies, not dot products; no multiply-accumulate convention"
       for op in ("_fft_r2c", "_fft_c2r", "_fft_c2c")},
    **{op: "a matrix decomposition, inverse or solve: its arithmetic depends on the algorithm, not a dot-product "
           "count" for op in (
        "_linalg_det", "_linalg_eigh", "_linalg_eigvals", "_linalg_slogdet", "_linalg_solve_ex", "_linalg_svd",
        "linalg_cholesky_ex", "linalg_eig", "linalg_eigvals", "linalg_householder_product", "linalg_inv_ex",
        "linalg_ldl_factor_ex", "linalg_ldl_solve", "linalg_lstsq", "linalg_lu", "linalg_lu_factor_ex",
        "linalg_lu_solve", "linalg_matrix_exp", "linalg_pinv", "linalg_qr", "linalg_solve_triangular", "cholesky",
        "cholesky_inverse", "cholesky_solve", "_cholesky_solve_helper", "geqrf", "ormqr", "lu_unpack",
        "triangular_solve", "_spsolve")},
    **{op: "a sparse product: its multiply-accumulates depend on the sparsity pattern" for op in (
        "_sparse_addmm", "_sparse_mm_reduce_impl", "hspmm", "sspaddmm", "_sparse_sparse_matmul", "_cslt_sparse_mm",
        "_cslt_sparse_mm_search", "_cslt_compress", "sparse_sampled_addmm", "_sparse_semi_structured_addmm",
        "_sparse_semi_structured_linear", "_sparse_semi_structured_mm", "_sparse_semi_structured_apply",
        "_sparse_semi_structured_apply_dense", "_sparse_semi_structured_tile", "_to_sparse_semi_structured")},
    **{op: "a quantized recurrent kernel: its packed weights do not show their shapes"
       for op in ("quantized_lstm", "quantized_gru", "quantized_lstm_cell", "quantized_gru_cell",
                  "quantized_rnn_tanh_cell", "quantized_rnn_relu_cell")},
}

_FREE_GROUPS = {
    "element-wise arithmetic or activation": _ELEMENTWISE,
    "normalisation, softmax, reduction, scan, pool, interpolation or loss": _NORMALISE_REDUCE_POOL,
    "view, copy, creation, random numbers, indexing, sorting or bookkeeping": _DATA,
}

TABLE: dict[str, OpRule] = {
    **{op: OpRule(FREE, says) for says, names in _FREE_GROUPS.items() for op in names.split()},
    **{op: OpRule(NO_MACC_CONVENTION, says) for op, says in _NO_CONVENTION.items()},
    **_PRODUCTS,
}
# `_foreach_<op>` applies an element-wise op to each tensor of a list: the element-wise op's category.
_FOREACH_PREFIX = "_foreach_"


def rule(op: str) -> Optional[OpRule]:
    """The table's entry for an op (overload packet name; `namespace::name` outside aten), or None: unsupported.
    An in-place variant (`add_`, `__iadd__`) is its out-of-place op."""
    found = TABLE.get(op)
    if found is None and op.endswith("_") and not op.endswith("__"):
        found = TABLE.get(op[:-1])
    if found is None and op.startswith("__i") and op.endswith("__"):
        found = TABLE.get("__" + op[3:]) or TABLE.get(op[3:-2])
    if found is None and op.startswith("__") and op.endswith("__"):
        found = TABLE.get(op[2:-2])
    if found is None and op.startswith(_FOREACH_PREFIX):
        inner = rule(op[len(_FOREACH_PREFIX):])
        found = inner if inner is not None and inner.category == FREE else None
    return found


def category(op: str) -> str:
    found = rule(op)
    return found.category if found is not None else UNSUPPORTED


def products(op: str, args: tuple, kwargs: dict, out: tuple[int, ...]) -> int:
    """Multiply-accumulates of one executed op (0 for an op without products or without a formula)."""
    found = rule(op)
    if found is None or found.formula is None:
        return 0
    return int(found.formula(args, kwargs, out))


def is_product(op: str) -> bool:
    return category(op) == PRODUCT
