"""The analytic FLOP count against torch's FlopCounterMode on real forward + backward steps."""

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.core import config
from harness.model import accounting
from harness.model.features import IdExtractor, SentenceExtractor, TokenExtractor
from harness.model.losses import NegativeSampler, training_loss
from harness.model.srt import build_model

CASES = [
    ("st", {}),
    ("st", {"loss.negatives": 16}),
    ("st", {"loss.negatives": 16, "loss.shared_negatives": False}),
    ("st", {"features.adapter": "mlp", "loss.negatives": 64}),
    ("st", {"loss.supervision": "last"}),
    ("id", {}),
    ("id", {"loss.kind": "gbce", "loss.negatives": 32}),
    ("id", {"model.positions": "relative"}),
    ("tokens", {}),
    ("tokens", {"loss.negatives": 16, "loss.shared_negatives": False}),
]


@pytest.mark.parametrize("n_items", [300, 3000])
@pytest.mark.parametrize("kind,over", CASES)
def test_analytic_flops_match_torch_flop_counter(kind, over, n_items):
    B, L, d = 8, 20, 64
    cfg = config.resolve(
        {
            "model.d_model": d,
            "model.context": L,
            "train.batch_size": B,
            "model.dropout": 0.0,
            "model.n_layers": 2,
            "model.d_ff": 256,
            **over,
        }
    )
    rng = np.random.default_rng(0)
    if kind == "st":
        ext = SentenceExtractor(rng.normal(size=(n_items, 384)).astype(np.float32), d, cfg["features.adapter"])
    elif kind == "id":
        ext = IdExtractor(n_items, d)
    else:
        ext = TokenExtractor(
            [rng.integers(1, 50, (n_items, 6)), rng.integers(1, 50, (n_items, 3))], 50, 32, d, cfg["features.adapter"]
        )
    model = build_model(cfg, ext)
    inputs = torch.randint(1, n_items + 1, (B, L))
    targets = torch.randint(1, n_items + 1, (B, L))
    if cfg["loss.supervision"] == "last":
        targets[:, :-1] = 0
    mask = targets != 0
    n = int(mask.sum())
    use_catalog, _ = accounting.embedding_rows(B, L, n, cfg["loss.negatives"], cfg["loss.shared_negatives"], n_items)
    sampler = NegativeSampler(n_items, None, torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        items = model.extractor.all_items() if use_catalog else None
        h = model.encode(inputs, items)
        training_loss(model, h[mask], targets[mask], items, cfg, sampler).backward()
    analytic = accounting.flops_per_target(cfg, n_items, ext.train_flops_per_item) * n
    assert analytic == pytest.approx(counter.get_total_flops(), rel=0.10)


def test_matmul_peak_is_measured():
    peak = accounting.matmul_peak("cpu", torch.float32, n=256, seconds=0.05)
    assert 1e8 < peak < 1e14


def test_measuring_the_peak_leaves_the_training_rng_alone():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    accounting.matmul_peak("cpu", torch.float32, n=128, seconds=0.01)
    assert torch.equal(torch.get_rng_state(), state)
