"""Small models written the way current vision/transformer code is written, for the reference's conservation
tests: parameters used directly in forward, einsum / wrapped / SDPA attention, functional norms, mean pooling,
stochastic depth, an auxiliary head that does not run in eval mode."""
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

DIM, HEADS, TOKENS = 32, 4, 16  # 4x4 patches of a 1x3x16x16 image


@torch.fx.wrap
def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int) -> torch.Tensor:
    """Attention inside non-overlapping windows of `window` tokens (Swin-style), opaque to torch.fx."""
    b, h, t, d = q.shape
    q, k, v = (x.reshape(b, h, t // window, window, d) for x in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) * d ** -0.5
    out = scores.softmax(-1) @ v
    return out.reshape(b, h, t, d)


class DropPath(nn.Module):
    """Stochastic depth: identity in eval mode."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        keep = torch.rand(x.shape[0], 1, 1) > self.p
        return x * keep / (1 - self.p)


class Modern(nn.Module):
    def __init__(self, attention: str = "einsum"):
        super().__init__()
        self.attention = attention
        self.patch = nn.Conv2d(3, DIM, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_embed = nn.Parameter(torch.zeros(1, TOKENS + 1, DIM))
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.gamma = nn.Parameter(torch.ones(DIM))  # layer scale
        self.norm_weight = nn.Parameter(torch.ones(DIM))
        self.mix = nn.Parameter(torch.zeros(DIM, DIM))  # a bare parameter in a matmul
        self.drop_path = DropPath()
        self.head = nn.Linear(DIM, 10)
        self.aux_head = nn.Linear(DIM, 10)  # used only in training

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        h = F.layer_norm(x, (DIM,), self.norm_weight)
        b, t, _ = h.shape
        q, k, v = self.qkv(h).reshape(b, t, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        if self.attention == "einsum":
            a = torch.einsum("bhqd,bhkd->bhqk", q, k).softmax(-1)
            o = torch.einsum("bhqk,bhkd->bhqd", a, v)
        elif self.attention == "sdpa":
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            o = window_attention(q, k, v, t)
        x = x + self.drop_path(self.gamma * self.proj(o.transpose(1, 2).reshape(b, t, DIM)))
        x = torch.matmul(x, self.mix)
        return self.head(x.mean(dim=1))


def einsum_attention() -> nn.Module:
    return Modern("einsum")


def sdpa_attention() -> nn.Module:
    return Modern("sdpa")


def window_attention_model() -> nn.Module:
    return Modern("window")
