"""The SRT model, extractors and losses on real tiny instances."""

import math

import numpy as np
import pytest
import torch

from harness.core import config
from harness.data.text import encode_texts
from harness.model.features import IdExtractor, SentenceExtractor, TokenExtractor, build_extractor
from harness.model.losses import NegativeSampler, binary, full_softmax, gbce_beta, sampled_softmax
from harness.model.srt import build_model


def _model(kind="id", n_items=40, **over):
    cfg = config.resolve(
        {"model.d_model": 16, "model.n_heads": 2, "model.d_ff": 32, "model.context": 8, "model.dropout": 0.0, **over}
    )
    torch.manual_seed(0)
    if kind == "id":
        ext = IdExtractor(n_items, 16)
    elif kind == "st":
        ext = SentenceExtractor(np.random.default_rng(0).normal(size=(n_items, 12)).astype(np.float32), 16, "linear")
    else:
        rng = np.random.default_rng(0)
        ext = TokenExtractor([rng.integers(0, 9, (n_items, 4)), rng.integers(0, 9, (n_items, 2))], 9, 8, 16, "linear")
    return build_model(cfg, ext).eval()


@pytest.mark.parametrize("kind", ["id", "st", "tokens"])
@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("positions", ["absolute", "relative"])
def test_padding_never_contributes(kind, norm, positions):
    """A left-padded sequence gives the same hidden states at its real positions as the unpadded sequence."""
    m = _model(kind, **{"model.norm": norm, "model.positions": positions})
    seq = torch.tensor([[5, 9, 3, 17]])
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), seq], dim=1)
    torch.testing.assert_close(m.encode(padded)[:, 4:], m.encode(seq), rtol=1e-5, atol=1e-5)
    assert torch.isfinite(m.encode(torch.zeros(2, 8, dtype=torch.long))).all()


@pytest.mark.parametrize("off", ["model.mask_padding", "model.zero_padding"])
def test_uncorrected_padding_leaks_into_real_positions(off):
    """The SASRec ablations: with padding attended as a key (or entering as a non-zero vector it is attended
    through) the padded sequence's hidden states differ from the unpadded one's."""
    seq = torch.tensor([[5, 9, 3, 17]])
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), seq], dim=1)
    leaky = _model("st", **{off: False, "model.mask_padding": False})
    assert not torch.allclose(leaky.encode(padded)[:, 4:], leaky.encode(seq), atol=1e-4)
    corrected = _model("st")
    torch.testing.assert_close(corrected.encode(padded)[:, 4:], corrected.encode(seq), rtol=1e-5, atol=1e-5)


def test_causal():
    m = _model()
    a = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    b = a.clone()
    b[0, 5:] = torch.tensor([30, 31, 32])
    torch.testing.assert_close(m.encode(a)[:, :5], m.encode(b)[:, :5])


def test_padding_embedding_is_zero():
    for kind in ("id", "st", "tokens"):
        m = _model(kind)
        ids = torch.tensor([[0, 0, 3]])
        x = m.extractor(ids) * (ids != 0).unsqueeze(-1)
        assert (x[0, :2] == 0).all()
    assert (IdExtractor(10, 4).table.weight[0] == 0).all()


def test_relative_positions_give_the_most_recent_item_distance_zero_for_every_target():
    m = _model(**{"model.positions": "relative"})
    with torch.no_grad():
        m.position.weight.copy_(torch.randn_like(m.position.weight))
    ids = torch.tensor([[0, 0, 4, 5, 6, 7, 8, 9]])
    mask = m.attention_mask(ids)[0]  # (H, L, L)
    w = m.position.weight
    for i in range(2, 8):  # every real query position, the prediction point of every intermediate target
        torch.testing.assert_close(mask[:, i, i], w[0])
        if i > 2:
            torch.testing.assert_close(mask[:, i, i - 1], w[1])
    assert torch.isinf(mask[:, 5, :2]).all() and torch.isinf(mask[:, 3, 4:]).all()


def test_n_params_do_not_grow_with_the_catalog_for_text_extractors():
    from harness.model.accounting import count_params

    small, large = _model("st", n_items=40), _model("st", n_items=4000)
    assert count_params(small)["n_params"] == count_params(large)["n_params"]
    assert count_params(small)["n_params_tables"] == count_params(large)["n_params_tables"]
    ids_small, ids_large = count_params(_model("id", 40)), count_params(_model("id", 4000))
    assert ids_small["n_params"] == ids_large["n_params"]
    assert ids_large["n_params_tables"] - ids_small["n_params_tables"] == (4000 - 40) * 16
    p = count_params(small)
    assert p["n_params_total"] == p["n_params"] + p["n_params_tables"]


def test_st_extractor_embeds_real_text_offline(tmp_path):
    texts = ["red wooden chair | Sitz | chair", "blue steel lamp | Lumo | lamp", "red wooden chair | Sitz | chair"]
    v = encode_texts(texts, tmp_path)
    assert v.shape == (3, 384) and np.allclose(v[0], v[2]) and not np.allclose(v[0], v[1])
    assert len(list(tmp_path.glob("*.npz"))) == 1
    again = encode_texts(texts[:2], tmp_path)  # served from the cache: no new shard
    np.testing.assert_allclose(again, v[:2])
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_tokens_extractor_uses_minilm_word_pieces(tiny):
    from harness.data.prepare import prepare

    data, _ = prepare(tiny())
    ext = build_extractor(tiny(**{"features__kind": "tokens"}), data)
    assert ext.field0.shape == (data.n_items + 1, 24) and (ext.field0[0] == 0).all()
    assert (ext.field0[1:] > 0).any(dim=1).all()  # every item's title has tokens
    assert ext.all_items().shape == (data.n_items + 1, 32)


# --- losses ---------------------------------------------------------------------------------------------------


def test_sampled_softmax_over_the_whole_catalog_equals_full_softmax():
    torch.manual_seed(0)
    n, d, M = 12, 5, 7
    items = torch.randn(n + 1, d)
    h, targets = torch.randn(M, d), torch.randint(1, n + 1, (M,))
    sampler = NegativeSampler(n, None, torch.Generator())
    all_ids = torch.arange(1, n + 1)  # includes each target: masked as an accidental hit
    got = sampled_softmax(h, targets, items[targets], all_ids, items[all_ids], 0.5, sampler)
    torch.testing.assert_close(got, full_softmax(h, targets, items, 0.5))


def test_logq_correction_with_popularity_sampler():
    counts = np.array([0, 10, 30, 60])
    sampler = NegativeSampler(3, counts, torch.Generator().manual_seed(0))
    ids = sampler.sample((60000,))
    freq = torch.bincount(ids, minlength=4)[1:].double() / len(ids)
    torch.testing.assert_close(freq, torch.tensor([0.1, 0.3, 0.6], dtype=torch.float64), atol=0.01, rtol=0)
    torch.testing.assert_close(sampler.logq(torch.tensor([1, 3])), torch.tensor([math.log(0.1), math.log(0.6)]))
    # per-target negatives (M, K): an accidental hit drops out, every candidate's score is corrected by log q
    h, items = torch.randn(2, 4), torch.randn(4, 4)
    targets, neg_ids = torch.tensor([1, 2]), torch.tensor([[1, 3], [3, 3]])
    got = sampled_softmax(h, targets, items[targets], neg_ids, items[neg_ids], 1.0, sampler)
    logq = torch.log(torch.tensor([0.0, 0.1, 0.3, 0.6]))
    s = lambda u, i: (h[u] * items[i]).sum() - logq[i]  # noqa: E731
    row0 = -torch.log_softmax(torch.stack([s(0, 1), s(0, 3)]), 0)[0]
    row1 = -torch.log_softmax(torch.stack([s(1, 2), s(1, 3), s(1, 3)]), 0)[0]
    torch.testing.assert_close(got, (row0 + row1) / 2)


def test_gbce_beta_limits_and_bce():
    assert gbce_beta(10, 101, 0.0) == pytest.approx(1.0)  # t = 0: plain BCE
    assert gbce_beta(10, 101, 1.0) == pytest.approx(0.1)  # t = 1: beta = alpha = K / (n_items - 1)
    h, pos, neg = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 1, 4)
    targets, neg_ids = torch.tensor([1, 2, 3]), torch.tensor([[5], [2], [6]])
    s_pos, s_neg = (h * pos).sum(-1), (h[:, None] * neg).sum(-1)[:, 0]
    hit = torch.tensor([0.0, 1.0, 0.0])
    want = (-torch.nn.functional.logsigmoid(s_pos) - torch.nn.functional.logsigmoid(-s_neg) * (1 - hit)).mean()
    torch.testing.assert_close(binary(h, targets, pos, neg_ids, neg, 1.0), want)


@pytest.mark.parametrize("shared", [True, False])
def test_bf16_hidden_states_score_the_target_and_its_negatives_at_the_same_precision(shared):
    """Review L7: under bf16 autocast the hidden states and item vectors arrive in bf16; the target's score and the
    negatives' scores are both fp32 sums of their products, so the loss is the fp32 loss of those bf16 values."""
    torch.manual_seed(0)
    M, K, d, n = 6, 4, 16, 30
    h, items = (10 * torch.randn(M, d)).bfloat16(), torch.randn(n + 1, d).bfloat16()
    targets = torch.randint(1, n + 1, (M,))
    neg_ids = torch.randint(1, n + 1, (K,) if shared else (M, K))
    sampler = NegativeSampler(n, None, torch.Generator())
    got = sampled_softmax(h, targets, items[targets], neg_ids, items[neg_ids], 0.07, sampler)
    want = sampled_softmax(h.float(), targets, items[targets].float(), neg_ids, items[neg_ids].float(), 0.07, sampler)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    got = binary(h, targets, items[targets], neg_ids, items[neg_ids], 0.07)
    want = binary(h.float(), targets, items[targets].float(), neg_ids, items[neg_ids].float(), 0.07)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
