"""The SRT model: a causal transformer over a user's item history.

Inputs are item ids (B, L), left-padded with 0 so the most recent item is at L-1. Each item is embedded by
the feature extractor; the same extractor embeds the candidates that hidden states are scored against:
score(h, item) = <h, extractor(item)> / tau.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.model.features import Extractor


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, pre_norm: bool):
        super().__init__()
        self.n_heads, self.pre_norm, self.dropout = n_heads, pre_norm, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, L, D)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.attend(self.norm1(x), mask)
            return x + self.drop(self.ff(self.norm2(x)))
        x = self.norm1(x + self.attend(x, mask))
        return self.norm2(x + self.drop(self.ff(x)))


class SRT(nn.Module):
    def __init__(
        self,
        extractor: Extractor,
        d_model: int,
        n_layers: int,
        n_heads: int,
        d_ff: int,
        context: int,
        dropout: float,
        norm: str,
        positions: str,
        tau: float,
        zero_padding: bool = True,
        mask_padding: bool = True,
    ):
        super().__init__()
        self.extractor, self.context, self.tau, self.n_heads = extractor, context, tau, n_heads
        self.zero_padding, self.mask_padding = zero_padding, mask_padding
        self.relative = positions == "relative"
        if self.relative:
            self.position = nn.Embedding(context, n_heads)  # bias[distance to the prediction point, head]
            nn.init.zeros_(self.position.weight)
        else:
            self.position = nn.Embedding(context, d_model)
            nn.init.normal_(self.position.weight, std=0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout, norm == "pre") for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(d_model) if norm == "pre" else nn.Identity()

    def attention_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, 1 or H, L, L) mask: causal, padding never attended as a key unless mask_padding is off (a query
        always sees itself, so padded rows stay finite); with relative positions a float mask carrying the
        learned distance bias."""
        L = ids.shape[1]
        i = torch.arange(L, device=ids.device)
        allowed = (i[None, :] <= i[:, None]).expand(ids.shape[0], L, L)
        if self.mask_padding:
            allowed = allowed & ((ids != 0)[:, None, :] | torch.eye(L, dtype=torch.bool, device=ids.device))
        if not self.relative:
            return allowed[:, None]
        distance = (i[:, None] - i[None, :]).clamp(min=0)
        bias = self.position(distance).permute(2, 0, 1)  # (H, L, L)
        return bias[None].masked_fill(~allowed[:, None], float("-inf"))

    def encode(self, ids: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, L, d_model) for item ids (B, L). `items` (n_items + 1, d_model), when given, are
        precomputed extractor outputs for the whole catalog (used instead of calling the extractor)."""
        L = ids.shape[1]
        x = items[ids] if items is not None else self.extractor(ids)
        if not self.relative:
            x = x + self.position(torch.arange(self.context - L, self.context, device=ids.device))
        if self.zero_padding:
            x = x * (ids != 0).unsqueeze(-1).to(x.dtype)
        x = self.drop(x)
        mask = self.attention_mask(ids)
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)

    def score(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """h (..., d) against items (n, d) -> scores (..., n)."""
        return h @ items.T / self.tau


def build_model(cfg: dict, extractor: Extractor) -> SRT:
    return SRT(
        extractor,
        cfg["model.d_model"],
        cfg["model.n_layers"],
        cfg["model.n_heads"],
        cfg["model.d_ff"],
        cfg["model.context"],
        cfg["model.dropout"],
        cfg["model.norm"],
        cfg["model.positions"],
        cfg["model.tau"],
        cfg["model.zero_padding"],
        cfg["model.mask_padding"],
    )
