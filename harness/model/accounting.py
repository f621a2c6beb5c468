"""Parameter counts, analytic training FLOPs, and MFU against a matmul peak measured in this process.

FLOPs count matmuls only (2 FLOPs per multiply-add): the per-layer projections and FFN, the attention score and
value products over the full L x L (what SDPA computes), the extractor's adapter on every row it embeds, and
the scoring dot products. Training = forward + backward = 3x forward, except the first adapter layer over frozen
text embeddings, whose input needs no gradient (2x).
"""

from __future__ import annotations

import time
from functools import cache

import torch
from torch import nn

from harness.core.errors import UserError


def count_params(model: nn.Module) -> dict[str, int]:
    """n_params: trainable parameters outside lookup tables (blocks, norms, adapters) = N;
    n_params_tables: embedding tables (item ids, tokens, positions); n_params_total: both."""
    tables = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters())
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"n_params": total - tables, "n_params_total": total, "n_params_tables": tables}


def embedding_rows(
    batch: int, context: int, targets: int, negatives: int | str, shared: bool, n_items: int
) -> tuple[bool, int]:
    """How a training step embeds items: (use_catalog, rows). Either the extractor runs once over the whole
    catalog (n_items + 1 rows, then gathered) or directly on the inputs, targets and negatives; the cheaper."""
    if negatives == "full":
        return True, n_items + 1
    direct = batch * context + targets + (negatives if shared else targets * negatives)
    return (True, n_items + 1) if direct > n_items + 1 else (False, direct)


def train_flops_per_step(
    d_model: int,
    n_layers: int,
    d_ff: int,
    batch: int,
    context: int,
    targets: int,
    negatives: int | str,
    shared: bool,
    n_items: int,
    extractor_flops_per_item: int,
) -> float:
    """Forward + backward FLOPs of one training step on `batch` sequences of length `context` with `targets`
    supervised positions and K = `negatives` (or 'full') candidates besides each target."""
    per_position = n_layers * (8 * d_model**2 + 4 * d_model * d_ff + 4 * context * d_model)
    candidates = n_items if negatives == "full" else negatives + 1
    scoring = targets * candidates * 2 * d_model
    _, rows = embedding_rows(batch, context, targets, negatives, shared, n_items)
    return 3.0 * (batch * context * per_position + scoring) + rows * extractor_flops_per_item


def flops_per_target(cfg: dict, n_items: int, extractor_flops_per_item: int) -> float:
    """C per target for a config, for full-length sequences: one step's FLOPs / its targets
    (supervision 'all': batch x context targets; 'last': one per sequence). Every run is priced here before it
    trains or is planned, so a K the catalog cannot supply (K >= n_items) is a UserError here."""
    negatives = cfg["loss.negatives"]
    if negatives != "full" and negatives >= n_items:
        raise UserError(
            f"loss.negatives = {negatives}: not fewer than the catalog's {n_items} items "
            f"({cfg['data.name']}); sample fewer, or use loss.negatives: full"
        )
    B, L = cfg["train.batch_size"], cfg["model.context"]
    targets = B * L if cfg["loss.supervision"] == "all" else B
    return (
        train_flops_per_step(
            cfg["model.d_model"],
            cfg["model.n_layers"],
            cfg["model.d_ff"],
            B,
            L,
            targets,
            cfg["loss.negatives"],
            cfg["loss.shared_negatives"],
            n_items,
            extractor_flops_per_item,
        )
        / targets
    )


@cache
def matmul_peak(device: str = "cpu", dtype: torch.dtype = torch.float32, n: int = 2048, seconds: float = 0.5) -> float:
    """Achievable matmul FLOP/s on this device and dtype, measured now (n x n x n products for ~`seconds`)."""
    gen = torch.Generator(device=device).manual_seed(0)  # never touch the global RNG that training uses
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    sync()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    sync()
    return 2 * n**3 * reps / (time.perf_counter() - start)
