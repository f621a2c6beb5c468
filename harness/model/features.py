"""Item feature extractors: item ids -> d_model vectors. One interface, chosen by `features.kind`.

- `st`: frozen all-MiniLM-L6-v2 sentence embedding of the item text (computed once per dataset and cached on
  disk per (model, text hash)) + a trainable adapter (linear or MLP) to d_model.
- `tokens`: the SRT paper's extractor: title and brand tokenized with the MiniLM tokenizer, one trainable token
  table per field, masked sum pooling, concatenation, linear adapter.
- `id`: one embedding row per item (the SASRec baseline).

Id 0 is padding; what an extractor returns for it is masked by the model. Per-item inputs (frozen embeddings,
token ids) are non-persistent buffers: a checkpoint holds only trainable weights.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from harness.core.errors import UserError
from harness.core.registry import EXTRACTORS
from harness.data.text import ST_DIM, encode_texts, st_model_path


def _adapter(kind: str, d_in: int, d_model: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(d_in, d_model)
    return nn.Sequential(nn.Linear(d_in, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model))


def adapter_flops(adapter: nn.Module, input_has_grad: bool) -> int:
    """Training (forward + backward) matmul FLOPs of the adapter for one item. Each linear layer costs
    2 in out forward, the same again for its weight gradient, and again for its input gradient unless its
    input is a frozen buffer (the first layer over frozen text embeddings)."""
    linears = [m for m in adapter.modules() if isinstance(m, nn.Linear)]
    return sum(2 * m.in_features * m.out_features * (3 if (i or input_has_grad) else 2) for i, m in enumerate(linears))


class Extractor(nn.Module):
    """ids (...) -> vectors (..., d_model). `train_flops_per_item`: forward + backward matmul FLOPs per item.
    A kind is registered in harness/core/registry.py (EXTRACTORS) and built from a config by `build`; `train_flops`
    gives its per-item training FLOPs without building it (the planner)."""

    n_items: int
    train_flops_per_item: int = 0
    reads_text: bool = True
    adapter_input_grad: bool = True  # False: the adapter reads frozen vectors (no input gradient)

    @classmethod
    def build(cls, cfg: dict, dataset) -> Extractor:
        raise NotImplementedError

    @staticmethod
    def adapter_for(cfg: dict, d_model: int) -> nn.Module | None:
        """A fresh copy of the trainable adapter this kind puts on top of its features (None: no adapter)."""
        return None

    @classmethod
    def train_flops(cls, cfg: dict) -> int:
        """Per-item training FLOPs of the adapter, without building the extractor (the planner)."""
        adapter = cls.adapter_for(cfg, cfg["model.d_model"])
        return 0 if adapter is None else adapter_flops(adapter, cls.adapter_input_grad)

    def all_items(self) -> torch.Tensor:
        """Vectors for ids 0..n_items: (n_items + 1, d_model)."""
        return self(torch.arange(self.n_items + 1, device=self.device))

    @property
    def device(self) -> torch.device:
        return next(self.buffers(), next(self.parameters())).device


class SentenceExtractor(Extractor):
    adapter_input_grad = False

    def __init__(self, vectors: np.ndarray, d_model: int, adapter: str):
        super().__init__()
        table = np.concatenate([np.zeros((1, vectors.shape[1]), np.float32), vectors])
        self.register_buffer("text", torch.from_numpy(table), persistent=False)
        self.n_items = len(vectors)
        self.adapter = _adapter(adapter, vectors.shape[1], d_model)
        self.train_flops_per_item = adapter_flops(self.adapter, self.adapter_input_grad)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.text[ids])

    @classmethod
    def build(cls, cfg: dict, dataset) -> SentenceExtractor:
        return cls(encode_texts(dataset.item_texts()), cfg["model.d_model"], cfg["features.adapter"])

    @staticmethod
    def adapter_for(cfg: dict, d_model: int) -> nn.Module:
        return _adapter(cfg["features.adapter"], ST_DIM, d_model)


class TokenExtractor(Extractor):
    """SRT's extractor: per-field token tables, masked sum pooling, concatenation, linear adapter."""

    def __init__(self, fields: list[np.ndarray], vocab: int, token_dim: int, d_model: int, adapter: str):
        super().__init__()
        for i, ids in enumerate(fields):
            padded = np.concatenate([np.zeros((1, ids.shape[1]), np.int64), ids])
            self.register_buffer(f"field{i}", torch.from_numpy(padded), persistent=False)
        self.n_items = len(fields[0])
        self.tables = nn.ModuleList(nn.Embedding(vocab, token_dim, padding_idx=0) for _ in fields)
        self.adapter = _adapter(adapter, token_dim * len(fields), d_model)
        self.train_flops_per_item = adapter_flops(self.adapter, self.adapter_input_grad)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pooled = [table(getattr(self, f"field{i}")[ids]).sum(-2) for i, table in enumerate(self.tables)]
        return self.adapter(torch.cat(pooled, dim=-1))

    @classmethod
    def build(cls, cfg: dict, dataset) -> TokenExtractor:
        fields = [dataset.items[f].tolist() for f in ("title", "brand")]
        ids, vocab = tokenize_fields(fields, [cfg["features.title_tokens"], cfg["features.brand_tokens"]])
        return cls(ids, vocab, cfg["features.token_dim"], cfg["model.d_model"], cfg["features.adapter"])

    @staticmethod
    def adapter_for(cfg: dict, d_model: int) -> nn.Module:
        return _adapter(cfg["features.adapter"], 2 * cfg["features.token_dim"], d_model)


class IdExtractor(Extractor):
    reads_text = False

    def __init__(self, n_items: int, d_model: int):
        super().__init__()
        self.n_items = n_items
        self.table = nn.Embedding(n_items + 1, d_model, padding_idx=0)
        nn.init.normal_(self.table.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.table.weight[0].zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids)

    @classmethod
    def build(cls, cfg: dict, dataset) -> IdExtractor:
        return cls(dataset.n_items, cfg["model.d_model"])


def tokenize_fields(fields: list[list[str]], lengths: list[int]) -> tuple[list[np.ndarray], int]:
    """MiniLM word pieces per field, truncated, remapped to a compact vocabulary (0 = pad).
    Returns ([(n_items, length) int64 per field], vocabulary size including pad)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(st_model_path())
    raw = [
        tok(texts, add_special_tokens=False, truncation=True, max_length=n)["input_ids"]
        for texts, n in zip(fields, lengths)
    ]
    used = sorted({t for field in raw for ids in field for t in ids})
    remap = {t: i + 1 for i, t in enumerate(used)}
    out = []
    for field, n in zip(raw, lengths):
        arr = np.zeros((len(field), n), np.int64)
        for row, ids in enumerate(field):
            arr[row, : len(ids)] = [remap[t] for t in ids]
        out.append(arr)
    return out, len(used) + 1


def train_flops_per_item(cfg: dict) -> int:
    """`Extractor.train_flops_per_item` of the configured extractor, without building it."""
    return EXTRACTORS.get(cfg["features.kind"]).train_flops(cfg)


def build_extractor(cfg: dict, dataset) -> Extractor:
    """The configured extractor (`features.kind`, registered in harness/core/registry.py) for `dataset`."""
    kind = EXTRACTORS.get(cfg["features.kind"])
    if kind.reads_text and not dataset.manifest.get("text", True):
        raise UserError(
            f"features.kind = {cfg['features.kind']} reads item text, but the data source "
            f"({cfg['data.name']}{', ' + cfg['data.path'] if cfg['data.path'] else ''}) has none "
            "(interaction-only): use features.kind: id, or give item text (data.items_path, "
            "data.columns title/brand/category)"
        )
    return kind.build(cfg, dataset)
