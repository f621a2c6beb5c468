"""Datasets: the synthetic world, every reader on fixtures in its exact format, preparation and its drops."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from harness.core import config
from harness.core.errors import UserError
from harness.data import readers, synthetic
from harness.data.prepare import dataset_key, prepare

SMALL_WORLD = dict(
    n_users=300,
    n_items=150,
    mean_length=12,
    max_length=30,
    latent_dim=8,
    drift=0.3,
    sharpness=0.6,
    popularity=1.0,
    seed=3,
)


def test_synthetic_is_seeded_and_text_carries_signal():
    a_inter, a_items, a_oracle = synthetic.generate(**SMALL_WORLD)
    b_inter, b_items, _ = synthetic.generate(**SMALL_WORLD)
    pd.testing.assert_frame_equal(a_inter, b_inter)
    pd.testing.assert_frame_equal(a_items, b_items)
    c_inter, _, _ = synthetic.generate(**{**SMALL_WORLD, "seed": 4})
    assert not a_inter.equals(c_inter)
    assert a_inter.groupby("user").size().min() >= 5
    assert (a_items["title"] != "").all() and (a_items["brand"] != "").all()
    assert set(a_items["category"]) <= set(synthetic.CATEGORIES)
    # consecutive items share a category far more often than chance: the text's words carry the latent signal
    same = (a_inter["user"].diff() == 0) & (
        a_inter["item"].map(a_items.set_index("item")["category"]).pipe(lambda c: c == c.shift())
    )
    chance = (a_items["category"].value_counts(normalize=True) ** 2).sum()
    assert same.sum() / (a_inter["user"].diff() == 0).sum() > 1.5 * chance
    # the oracle figures are proper: probabilities and expected metrics in range, ndcg@10 >= ndcg@5
    assert (a_oracle["test_logp"] < 0).all()
    assert (a_oracle["test_ndcg@10"] >= a_oracle["test_ndcg@5"]).all()
    assert ((a_oracle["test_hr@10"] > 0) & (a_oracle["test_hr@10"] <= 1 + 1e-6)).all()


def test_oracle_matches_a_monte_carlo_estimate():
    """Expected NDCG@5 of ranking by p equals the average over draws from p."""
    import torch

    p = torch.softmax(torch.randn(4, 50) * 2, dim=1)
    expected = synthetic._expected_metrics(p)["ndcg@5"]
    order = torch.argsort(p, dim=1, descending=True)
    rank_of = torch.argsort(order, dim=1) + 1
    draws = torch.multinomial(p, 20000, replacement=True, generator=torch.Generator().manual_seed(0))
    r = rank_of.gather(1, draws).double()
    mc = torch.where(r <= 5, 1 / torch.log2(r + 1), 0).mean(1)
    assert torch.allclose(expected.double(), mc, atol=0.01)


def test_rejection_draws_follow_the_exact_next_item_distribution():
    """The generator's O(brands) rejection sampler draws from exactly softmax(s <u, v_i> + pop_i)."""
    import numpy as np
    import torch
    from scipy.stats import chisquare

    rng = np.random.default_rng(1)
    n_items, d, n_brand, n = 40, 8, 7, 400_000
    item_brand = np.concatenate([np.arange(n_brand - 1), rng.integers(0, n_brand - 1, n_items - n_brand + 1)])
    centre = rng.normal(0, 1, (n_brand, d))  # the last brand has no item
    item_vec = centre[item_brand] + rng.normal(0, 0.5, (n_items, d))
    pop = -np.log(rng.permutation(n_items) + 1.0)
    proposal = synthetic._Proposal(item_vec, pop, item_brand, centre, scale=0.6)
    u = torch.tensor(rng.normal(0, 1.5, (2, d)), dtype=torch.float32)
    draws = proposal.draw(u.repeat_interleave(n, 0), torch.Generator().manual_seed(0)).numpy()
    V = torch.tensor(item_vec, dtype=torch.float32)
    for k in range(2):
        p = torch.softmax(0.6 * (u[k] @ V.T) + torch.tensor(pop, dtype=torch.float32), 0).double().numpy()
        freq = np.bincount(draws[k * n : (k + 1) * n], minlength=n_items)
        assert 0.5 * np.abs(freq / n - p).sum() < 0.01  # total variation; sampling noise alone is ~0.004
        assert chisquare(freq, p / p.sum() * n).pvalue > 1e-4


def test_prepare_synthetic_manifest_and_cache_hit(tiny):
    cfg = tiny()
    data, hit = prepare(cfg)
    again, hit2 = prepare(cfg)
    assert hit2 and again.manifest == data.manifest
    m = data.manifest
    assert m["n_users"] == 200 and m["n_interactions"] == len(data.interactions)
    for split in ("valid", "test"):
        assert 0 < m["oracle"][f"{split}_ndcg@5"] < m["oracle"][f"{split}_ndcg@10"] < 1
        assert 1 < m["oracle"][f"{split}_ppl"] < m["n_items"]
    assert len(m["content_hash"]) == 64
    # ids are 1-based and dense; each user's items are contiguous and chronological
    assert data.interactions["item"].min() == 1 and data.interactions["item"].max() == data.n_items
    assert (data.interactions.groupby("user")["timestamp"].apply(lambda t: t.is_monotonic_increasing)).all()
    assert data.offsets[-1] == len(data.flat)


def test_oracle_figures_on_a_sample_of_users_are_that_sample_s(tiny):
    data, _ = prepare(tiny())
    assert data.oracle_figures() == pytest.approx(data.manifest["oracle"])
    users = np.arange(0, data.n_users, 3)
    sample = data.oracle_figures(users)
    rows = data.oracle.iloc[users]
    assert sample["test_ppl"] == pytest.approx(np.exp(-rows["test_logp"].mean()))
    assert sample["valid_ndcg@5"] == pytest.approx(rows["valid_ndcg@5"].mean())
    assert sample["test_ppl"] != pytest.approx(data.manifest["oracle"]["test_ppl"], rel=1e-6)


def test_nested_subsets_are_contained(tiny):
    small, _ = prepare(tiny(data__scale=500))
    large, _ = prepare(tiny(data__scale=1500))
    full, _ = prepare(tiny())
    assert 500 <= small.manifest["n_interactions"] < large.manifest["n_interactions"] < full.manifest["n_interactions"]

    def sequences(d):
        titles = d.items.set_index("item")["title"]
        return {tuple(titles[d.flat[a:b]]) for a, b in zip(d.offsets[:-1], d.offsets[1:])}

    assert sequences(small) <= sequences(large) <= sequences(full)
    assert "oracle" in small.manifest


def test_ml100k_from_the_recbole_wheel():
    data, _ = prepare(config.resolve({"data.name": "ml-100k"}))
    m = data.manifest
    assert (m["n_users"], m["n_items"], m["n_interactions"]) == (943, 1682, 100000)
    assert data.items.loc[0, "title"] == "Toy Story" and "Comedy" in data.items.loc[0, "category"]


# --- fixtures in each exact file format -----------------------------------------------------------------------


def _events():
    """5 users x 6 interactions over 4 items, timestamps increasing per user."""
    return [(u, i % 4 + 1, 1000 + 10 * i) for u in range(1, 6) for i in range(u, u + 6)]


ITEMS = {
    1: ("Alpha Lamp", "Lumo", "Home"),
    2: ("Beta Chair", "Sitz", "Furniture"),
    3: ("Gamma Pen", "Inko", "Office"),
    4: ("Delta Mug", "Cupa", "Kitchen"),
}


def _table_cfg(**kw):
    return config.resolve({"data.min_user_interactions": 3, **kw})


def _check(data, n_users=5, n_items=4, n=30):
    assert (data.n_users, data.n_items, data.manifest["n_interactions"]) == (n_users, n_items, n)
    assert set(data.items["title"]) == {t for t, _, _ in ITEMS.values()}


def test_recbole_atomic(tmp_path):
    d = tmp_path / "shop"
    d.mkdir()
    (d / "shop.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        + "".join(f"u{u}\ti{i}\t4\t{t}\n" for u, i, t in _events())
    )
    (d / "shop.item").write_text(
        "item_id:token\ttitle:token_seq\tbrand:token\tcategories:token_seq\n"
        + "".join(f"i{i}\t{t}\t{b}\t{c}\n" for i, (t, b, c) in ITEMS.items())
    )
    data, _ = prepare(_table_cfg(**{"data.name": "recbole", "data.path": str(d)}))
    _check(data)
    assert set(data.items["brand"]) == {"Lumo", "Sitz", "Inko", "Cupa"}


@pytest.mark.parametrize("gz", [False, True])
def test_amazon2018_ratings_csv_and_metadata(tmp_path, gz):
    def write(path, text):
        if gz:
            path = path.with_name(path.name + ".gz")
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
        return path

    ratings = write(tmp_path / "Toys.csv", "".join(f"A{i},U{u},5.0,{t}\n" for u, i, t in _events()))
    meta = write(
        tmp_path / "meta_Toys.json",
        "".join(
            json.dumps({"asin": f"A{i}", "title": t, "brand": b, "category": ["Toys", c]}) + "\n"
            for i, (t, b, c) in ITEMS.items()
        ),
    )
    data, _ = prepare(
        _table_cfg(**{"data.name": "amazon2018", "data.path": str(ratings), "data.items_path": str(meta)})
    )
    _check(data)
    assert "Toys Home" in set(data.items["category"])


def test_amazon2018_review_json(tmp_path):
    reviews = tmp_path / "Toys_5.json"
    reviews.write_text(
        "".join(
            json.dumps({"reviewerID": f"U{u}", "asin": f"A{i}", "unixReviewTime": t, "overall": 5.0}) + "\n"
            for u, i, t in _events()
        )
    )
    meta = tmp_path / "meta_Toys.json"
    meta.write_text(
        "".join(
            json.dumps({"asin": f"A{i}", "title": t, "brand": b, "category": [c]}) + "\n"
            for i, (t, b, c) in ITEMS.items()
        )
    )
    _check(
        prepare(_table_cfg(**{"data.name": "amazon2018", "data.path": str(reviews), "data.items_path": str(meta)}))[0]
    )


def test_movielens_dat(tmp_path):
    (tmp_path / "ratings.dat").write_text("".join(f"{u}::{i}::4::{t}\n" for u, i, t in _events()))
    (tmp_path / "movies.dat").write_bytes(
        "".join(f"{i}::{t}::{c}|Drama\n" for i, (t, _, c) in ITEMS.items()).encode("latin-1")
    )
    data, _ = prepare(_table_cfg(**{"data.name": "movielens", "data.path": str(tmp_path)}))
    _check(data)
    assert "Home Drama" in set(data.items["category"])


def test_movielens_u_data(tmp_path):
    (tmp_path / "u.data").write_text("".join(f"{u}\t{i}\t4\t{t}\n" for u, i, t in _events()))
    flags = lambda k: "|".join("1" if j == k else "0" for j in range(19))  # noqa: E731
    (tmp_path / "u.item").write_bytes(
        "".join(f"{i}|{t}|01-Jan-1995||http://x|{flags(i)}\n" for i, (t, _, _) in ITEMS.items()).encode("latin-1")
    )
    data, _ = prepare(_table_cfg(**{"data.name": "movielens", "data.path": str(tmp_path)}))
    _check(data)
    assert data.items.loc[0, "category"] == "Action"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_generic_table(tmp_path, fmt):
    inter = pd.DataFrame(_events(), columns=["uid", "iid", "ts"])
    items = pd.DataFrame([(i, *v) for i, v in ITEMS.items()], columns=["iid", "name", "maker", "cat"])
    if fmt == "csv":
        inter.to_csv(tmp_path / "inter.csv", index=False)
        items.to_csv(tmp_path / "items.csv", index=False)
    else:
        inter.to_parquet(tmp_path / "inter.parquet")
        items.to_parquet(tmp_path / "items.parquet")
    cols = {"user": "uid", "item": "iid", "timestamp": "ts", "title": "name", "brand": "maker", "category": "cat"}
    _check(
        prepare(
            _table_cfg(
                **{
                    "data.name": "table",
                    "data.path": str(tmp_path / f"inter.{fmt}"),
                    "data.items_path": str(tmp_path / f"items.{fmt}"),
                    "data.columns": cols,
                }
            )
        )[0]
    )


def test_chronological_order_with_stable_ties(tmp_path):
    rows = [("u1", "i1", 5), ("u1", "i3", 3), ("u1", "i2", 3), ("u1", "i4", 1)]  # i3 before i2 in the file
    pd.DataFrame(rows, columns=["u", "i", "t"]).to_csv(tmp_path / "x.csv", index=False)
    items = pd.DataFrame({"i": ["i1", "i2", "i3", "i4"], "title": ["a", "b", "c", "d"]})
    items.to_csv(tmp_path / "items.csv", index=False)
    cols = {"user": "u", "item": "i", "timestamp": "t", "title": "title"}
    data, _ = prepare(
        _table_cfg(
            **{
                "data.name": "table",
                "data.path": str(tmp_path / "x.csv"),
                "data.items_path": str(tmp_path / "items.csv"),
                "data.columns": cols,
            }
        )
    )
    titles = data.items.set_index("item")["title"]
    assert list(titles[data.flat]) == ["d", "c", "b", "a"]


# --- bad input: one-line errors or counted, reported drops ------------------------------------------------


def _write_table(tmp_path, events, items):
    pd.DataFrame(events, columns=["u", "i", "t"]).to_csv(tmp_path / "inter.csv", index=False)
    pd.DataFrame(items, columns=["i", "title", "brand"]).to_csv(tmp_path / "items.csv", index=False)
    return _table_cfg(
        **{
            "data.name": "table",
            "data.path": str(tmp_path / "inter.csv"),
            "data.items_path": str(tmp_path / "items.csv"),
            "data.columns": {"user": "u", "item": "i", "timestamp": "t", "title": "title", "brand": "brand"},
        }
    )


def test_item_without_text_and_user_with_one_interaction_are_counted_drops(tmp_path):
    events = [(u, i, t) for u, i, t in _events()] + [(9, 1, 5)] + [(u, 5, 9999) for u in range(1, 4)]
    items = [(i, t, b) for i, (t, b, _) in ITEMS.items()] + [(5, "", "")]
    data, _ = prepare(_write_table(tmp_path, events, items))
    drops = data.manifest["drops"]
    assert drops["items_no_text"] == 1 and drops["interactions_item_no_text"] == 3
    assert drops["users_too_few"] == 1 and drops["interactions_users_too_few"] == 1
    assert data.n_users == 5 and data.n_items == 4


def test_item_kcore_is_iterative_and_counted(tmp_path):
    events = _events() + [(1, 7, 20000)]
    items = [(i, t, b) for i, (t, b, _) in ITEMS.items()] + [(7, "Rare", "X")]
    cfg = _write_table(tmp_path, events, items)
    data, _ = prepare({**cfg, "data.item_kcore": 2})
    assert data.manifest["drops"]["items_kcore"] == 1 and data.n_items == 4


def test_missing_column_names_file_and_column(tmp_path):
    (tmp_path / "inter.csv").write_text("u,i\n1,2\n")
    (tmp_path / "items.csv").write_text("i,title\n2,x\n")
    cfg = _table_cfg(
        **{
            "data.name": "table",
            "data.path": str(tmp_path / "inter.csv"),
            "data.items_path": str(tmp_path / "items.csv"),
            "data.columns": {"user": "u", "item": "i", "timestamp": "t", "title": "title"},
        }
    )
    with pytest.raises(UserError, match=r"inter\.csv: missing column\(s\) t"):
        prepare(cfg)


def test_empty_file(tmp_path):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "shop.inter").write_text("")
    (tmp_path / "shop" / "shop.item").write_text("item_id:token\ttitle:token_seq\n1\tx\n")
    with pytest.raises(UserError, match=r"shop\.inter: empty file"):
        prepare(_table_cfg(**{"data.name": "recbole", "data.path": str(tmp_path / "shop")}))


def test_non_utf8_text_names_the_line(tmp_path):
    reviews = tmp_path / "r.csv"
    reviews.write_bytes(b"A1,U1,5,100\nA2,U1,5,\xff\xfe200\n")
    (tmp_path / "m.json").write_text('{"asin": "A1", "title": "x"}\n')
    cfg = _table_cfg(
        **{"data.name": "amazon2018", "data.path": str(reviews), "data.items_path": str(tmp_path / "m.json")}
    )
    with pytest.raises(UserError, match=r"r\.csv:2: not valid UTF-8"):
        prepare(cfg)


def test_invalid_json_line(tmp_path):
    (tmp_path / "r.json").write_text('{"reviewerID": "U1", "asin": "A1", "unixReviewTime": 1}\n{oops\n')
    (tmp_path / "m.json").write_text('{"asin": "A1", "title": "x"}\n')
    cfg = _table_cfg(
        **{
            "data.name": "amazon2018",
            "data.path": str(tmp_path / "r.json"),
            "data.items_path": str(tmp_path / "m.json"),
        }
    )
    with pytest.raises(UserError, match=r"r\.json:2: invalid JSON"):
        prepare(cfg)


def test_everything_filtered_is_an_error(tmp_path):
    cfg = _write_table(tmp_path, [(1, 1, 1), (1, 2, 2)], [(1, "a", "b"), (2, "c", "d")])
    with pytest.raises(UserError, match="no users left after filtering"):
        prepare(cfg)


def test_cache_key_follows_content(tmp_path):
    cfg = _write_table(tmp_path, _events(), [(i, t, b) for i, (t, b, _) in ITEMS.items()])
    key = dataset_key(cfg)
    assert key == dataset_key(cfg)
    events = _events()
    events[0] = (events[0][0], events[0][1], 1)
    _write_table(tmp_path, events, [(i, t, b) for i, (t, b, _) in ITEMS.items()])
    assert dataset_key(cfg) != key
    assert dataset_key({**cfg, "data.min_user_interactions": 4}) != dataset_key(cfg)


def test_read_text_handles_gzip(tmp_path):
    p = tmp_path / "a.txt.gz"
    p.write_bytes(gzip.compress("héllo\n".encode()))
    assert readers.read_text(p) == "héllo\n"


# --- real-file quirks: cleaned and counted ------------------------------------------------------------------

AMAZON_QUIRKS = [
    {"asin": "A1", "title": "Ear Buds &amp; Case", "brand": "Sonix", "category": ["Electronics", "Audio"]},
    {
        "asin": "A2",
        "title": '<span class="a-size-medium">Wireless Mouse</span>',
        "brand": "Clikk",
        "category": ["Electronics", "</span></span>Computers"],
    },
    {"asin": "A3", "title": "var aPageStart = (new Date()).getTime();", "brand": "Acme"},  # junk, brand kept
    {"asin": "A4", "title": "", "brand": "Tabla", "category": ["Home &amp;amp; Kitchen"]},  # empty title
    {"asin": "A5", "title": "Desk  Lamp\n", "category": ["Home"]},  # no brand key at all
    {"asin": "A6", "title": "var aPageStart = (new Date()).getTime();"},  # junk and nothing else: no usable text
]


def _amazon_quirks(tmp_path, **kw):
    events = [(u, f"A{i % 6 + 1}", 1000 + 10 * i) for u in range(1, 7) for i in range(u, u + 8)]
    dup = events[:3]  # exact (user, item, time) repeats
    (tmp_path / "r.csv").write_text("".join(f"{i},U{u},5.0,{t}\n" for u, i, t in events + dup))
    (tmp_path / "m.json").write_text("".join(json.dumps(row) + "\n" for row in AMAZON_QUIRKS))
    return (
        prepare(
            _table_cfg(
                **{
                    "data.name": "amazon2018",
                    "data.path": str(tmp_path / "r.csv"),
                    "data.items_path": str(tmp_path / "m.json"),
                    **kw,
                }
            )
        )[0],
        len(events),
        len(dup),
    )


def test_amazon_metadata_quirks_are_cleaned_and_counted(tmp_path):
    data, n_events, n_dup = _amazon_quirks(tmp_path)
    c, drops = data.manifest["cleaning"], data.manifest["drops"]
    assert c["html_entities"] == 2 and c["markup"] == 2 and c["script_text"] == 2
    assert c["missing_brand"] == 2 and c["missing_title"] == 3 and c["duplicate_interactions"] == n_dup
    assert drops["interactions_duplicate"] == n_dup and drops["items_no_text"] == 1  # A6
    texts = data.item_texts()
    assert len(texts) == 5 == data.n_items
    for text in texts:
        assert "&amp;" not in text and "<" not in text and "getTime" not in text
        assert "nan" not in text.lower().split() and "none" not in text.lower().split()
    titles = set(data.items["title"])
    assert {"Ear Buds & Case", "Wireless Mouse", "Desk Lamp"} <= titles
    assert "Acme" in set(data.items["brand"]) and "Home & Kitchen" in set(data.items["category"])
    assert data.manifest["n_interactions"] + drops["interactions_item_no_text"] == n_events


def test_duplicates_can_be_kept(tmp_path):
    data, n_events, n_dup = _amazon_quirks(tmp_path, **{"data.duplicates": "keep"})
    assert data.manifest["cleaning"]["duplicate_interactions"] == n_dup
    assert data.manifest["drops"]["interactions_duplicate"] == 0
    assert data.manifest["n_interactions"] + data.manifest["drops"]["interactions_item_no_text"] == n_events + n_dup


def test_placeholders_in_tables_and_movielens_genres_are_missing(tmp_path):
    items = [(1, "Alpha Lamp", "None"), (2, "Beta Chair", "nan"), (3, "Gamma Pen", "Inko"), (4, "Delta Mug", "")]
    data, _ = prepare(_write_table(tmp_path, _events(), items))
    assert data.manifest["cleaning"]["placeholders"] == 2 and data.manifest["cleaning"]["missing_brand"] == 3
    assert set(data.items["brand"]) == {"", "Inko"}
    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "ratings.dat").write_text("".join(f"{u}::{i}::4::{t}\n" for u, i, t in _events()))
    (ml / "movies.dat").write_text(
        "".join(f"{i}::{t}::{'(no genres listed)' if i == 2 else c}\n" for i, (t, _, c) in ITEMS.items())
    )
    data, _ = prepare(_table_cfg(**{"data.name": "movielens", "data.path": str(ml)}))
    assert data.items.loc[1, "category"] == "" and data.manifest["cleaning"]["placeholders"] == 1


def _interaction_only(tmp_path):
    events = [(u, i % 7 + 1, 1000 + 10 * i) for u in range(1, 41) for i in range(u, u + 9)]
    pd.DataFrame(events, columns=["user_id", "item_id", "ts"]).to_csv(tmp_path / "log.csv", index=False)
    return {
        "data.name": "table",
        "data.path": str(tmp_path / "log.csv"),
        "data.columns": {"user": "user_id", "item": "item_id", "timestamp": "ts"},
    }


def test_interaction_only_log_trains_with_id_features(tmp_path, tiny):
    from harness.run import train

    source = _interaction_only(tmp_path)
    data, _ = prepare(_table_cfg(**source))
    assert data.manifest["text"] is False and data.n_items == 7 and data.manifest["drops"]["items_no_text"] == 0
    result = train(
        tiny(features__kind="id", train__tokens=600, **{k.replace(".", "__"): v for k, v in source.items()}),
        tmp_path / "runs",
        progress=False,
    )
    assert result["status"] == "done" and result["n_items"] == 7


def test_text_extractor_on_an_interaction_only_log_is_one_line(tmp_path, shared_cache):
    import os
    import subprocess
    import sys

    source = _interaction_only(tmp_path)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"data: {{name: table, path: {source['data.path']}, columns: {{user: user_id, item: item_id, "
        "timestamp: ts}}\nfeatures: {kind: st}\ntrain: {tokens: 600}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "train", str(cfg), "--out", str(tmp_path / "runs"), "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "SRT_SCALE_CACHE": str(shared_cache)},
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "features.kind = st reads item text" in proc.stderr and "interaction-only" in proc.stderr


def test_draws_of_the_spectral_world_follow_the_exact_next_item_distribution():
    import numpy as np
    import torch
    from scipy.stats import chisquare

    from harness.data import spectral

    logits = torch.randn(2, 40, generator=torch.Generator().manual_seed(3)) * 2
    n = 400_000
    draws = spectral.categorical_draw(logits.repeat_interleave(n, 0), torch.Generator().manual_seed(0)).numpy()
    for k in range(2):
        p = torch.softmax(logits[k].double(), 0).numpy()
        freq = np.bincount(draws[k * n : (k + 1) * n], minlength=40)
        assert 0.5 * np.abs(freq / n - p).sum() < 0.01  # total variation; sampling noise alone is ~0.004
        assert chisquare(freq, p * n).pvalue > 1e-4


@pytest.mark.parametrize("nu", [0.8, 1.0, 1.2])
def test_the_capacity_oracle_follows_the_planted_spectrum(nu):
    """Without training: in the spectral world the best rank-d model's gap to the exact entropy falls as the planted
    spectrum's tail sum_{d < k <= D} lambda_k^2 (~ d^(1 - 2 nu) when D >> d; over d = 8..48 at D = 128 the finite
    tail is steeper), the log-log slopes within 0.15 (small logits: sharpness 2); at full
    width it is the oracle itself (gap < 1e-6 nats); the latents are a linear function of the title's words, with
    the catalog's second moment exactly the planted diag(lambda) / sum(lambda)."""
    import numpy as np

    from harness.data import spectral

    inter, items, oracle = spectral.generate(
        n_users=600,
        n_items=1000,
        mean_length=12,
        max_length=30,
        latent_dim=128,
        drift=0.3,
        sharpness=2.0,
        popularity=0.5,
        spectrum=nu,
        seed=0,
    )
    widths = [w for w in spectral.CAPACITY_WIDTHS if 8 <= w <= 48]
    exact = oracle["test_exact_ce"].mean()
    gaps = [oracle[f"test_capacity_{w}_ce"].mean() - exact for w in widths]
    slope = np.polyfit(np.log(widths), np.log(gaps), 1)[0]
    lam = spectral.spectrum(128, nu)
    planted = np.polyfit(np.log(widths), np.log([(lam[w:] ** 2).sum() for w in widths]), 1)[0]
    assert abs(slope - planted) < 0.15, (slope, planted)
    assert abs(oracle["test_capacity_128_ce"].mean() - exact) < 1e-6 and min(gaps) > 0
    assert np.isclose(np.exp(-oracle["test_logp"].mean()), np.exp(exact), rtol=0.1)  # a sample vs the expectation
    assert items["title"].str.split().str.len().eq(spectral.TITLE_WORDS).all()
    assert inter["item"].max() <= 1000 and (inter.groupby("user").size() >= 5).all()
    _, v, _ = spectral.catalog(1000, 128, nu, 0.5, np.random.default_rng(1))
    np.testing.assert_allclose(v.T @ v / 1000, np.diag(lam / lam.sum()), atol=1e-12)
