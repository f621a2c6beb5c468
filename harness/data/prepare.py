"""Preparation: a source (harness/data/sources/) -> the canonical dataset (docs/design.md), cached by content hash.

Canonical form, in `<cache>/datasets/<source>-<key>/`:
- interactions.parquet: user (1..n_users), item (1..n_items), timestamp; grouped by user, chronological within
  a user (ties keep file order);
- items.parquet: item, title, brand, category;
- manifest.json: options, counts, every drop with its count, content hash, oracle figures where known;
- oracle.parquet (synthetic worlds only): user, then per user the generator's log p of the true validation and test
  items and the expected ranking metrics (synthetic.ORACLE_COLUMNS), so a run that evaluates a sample of users
  states the ceiling on that same sample.
Ids are re-indexed from 1 (0 is padding). Splits are leave-one-out: per user the last item is test, the
second-to-last validation, the rest training.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.core import config, registry
from harness.core.errors import UserError
from harness.core.io import cache_dir, write_json
from harness.data import clean, readers, synthetic

PREPARE_VERSION = 3  # 2: item text cleaned (data/clean.py), duplicate interactions; 3: oracle.parquet


@dataclass
class Dataset:
    """A prepared dataset. `flat[offsets[u-1]:offsets[u]]` is user u's chronological item sequence."""

    root: Path
    interactions: pd.DataFrame
    items: pd.DataFrame
    manifest: dict[str, Any]
    oracle: pd.DataFrame | None = None  # per-user oracle (user 1..n_users in order), synthetic worlds only

    def __post_init__(self) -> None:
        self.flat = self.interactions["item"].to_numpy(np.int64)
        counts = np.bincount(self.interactions["user"].to_numpy(), minlength=self.n_users + 1)[1:]
        self.offsets = np.concatenate([[0], np.cumsum(counts)])

    @property
    def n_users(self) -> int:
        return int(self.manifest["n_users"])

    @property
    def n_items(self) -> int:
        return int(self.manifest["n_items"])

    def training_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """Each user's training part [start, stop) of `flat`: all but the validation and test items."""
        return self.offsets[:-1], self.offsets[1:] - 2

    def oracle_figures(self, users: np.ndarray | None = None) -> dict[str, float]:
        """The oracle's figures (metric means; valid_/test_ppl = exp(-mean log p)) over `users` (0-based indices,
        None = everyone); empty for a dataset without an oracle."""
        return {} if self.oracle is None else oracle_figures(self.oracle if users is None else self.oracle.iloc[users])

    def item_texts(self) -> list[str]:
        """One string per item id 1..n_items: 'title | brand | category' with empty fields left out."""
        return [" | ".join(x for x in row if x) for row in self.items[readers.TEXT_FIELDS].itertuples(index=False)]


def positions(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every flat index in the parts [starts, stops), in order, and the part each belongs to."""
    lengths = stops - starts
    part = np.repeat(np.arange(len(starts)), lengths)
    return np.arange(lengths.sum()) + np.repeat(starts - np.cumsum(lengths) + lengths, lengths), part


def _source(cfg: dict):
    return registry.SOURCES.get(cfg["data.name"])


def _filter(inter: pd.DataFrame, items: pd.DataFrame, min_user: int, kcore: int, drops: dict) -> pd.DataFrame:
    """Drop interactions with items not in the item table, items without usable text (unless no item has any:
    an interaction-only source), then rare items (k-core) and users with too few interactions, counting each."""
    known = inter["item"].isin(items["item"])
    drops["interactions_unknown_item"] = int((~known).sum())
    inter = inter[known]
    has_text = (items[readers.TEXT_FIELDS] != "").any(axis=1)
    no_text = set(items.loc[~has_text, "item"]) if has_text.any() else set()
    drops["items_no_text"] = len(no_text)
    mask = inter["item"].isin(no_text)
    drops["interactions_item_no_text"] = int(mask.sum())
    inter = inter[~mask]
    drops.update(users_too_few=0, interactions_users_too_few=0, items_kcore=0, interactions_kcore=0)
    while True:
        if kcore:
            inter = _drop_rare(inter, "item", kcore, drops, "items_kcore", "interactions_kcore")
        inter = _drop_rare(inter, "user", min_user, drops, "users_too_few", "interactions_users_too_few")
        if not kcore or inter.empty or inter["item"].value_counts().min() >= kcore:
            return inter


def _drop_rare(
    inter: pd.DataFrame, column: str, minimum: int, drops: dict, count_key: str, rows_key: str
) -> pd.DataFrame:
    """Drop the interactions of every user/item with fewer than `minimum`, adding to the drop counts."""
    counts = inter[column].value_counts()
    rare = counts.index[counts < minimum]
    mask = inter[column].isin(rare)
    drops[count_key] += len(rare)
    drops[rows_key] += int(mask.sum())
    return inter[~mask]


def _subset(inter: pd.DataFrame, scale: int | None, seed: int) -> pd.DataFrame:
    """Nested subsets: users in one seeded order; a subset is the shortest prefix with >= scale interactions,
    so a smaller subset is always contained in a larger one."""
    if scale is None:
        return inter
    users = np.sort(inter["user"].unique())
    order = users[np.random.default_rng(seed).permutation(len(users))]
    sizes = inter["user"].value_counts().reindex(order).to_numpy()
    n = int(np.searchsorted(np.cumsum(sizes), scale) + 1)
    return inter[inter["user"].isin(set(order[:n]))]


def _natural_order(ids: pd.Series) -> np.ndarray:
    """Unique ids sorted numerically when they are all integers, else as strings."""
    uniq = ids.unique()
    numeric = pd.to_numeric(pd.Series(uniq), errors="coerce")
    return uniq[np.argsort(numeric.to_numpy())] if not numeric.isna().any() else np.sort(uniq)


def oracle_figures(per_user: pd.DataFrame) -> dict[str, float]:
    """Per-user oracle rows -> the figures a run reports: every metric's mean, perplexity exp(-mean log p), and
    for each expected cross-entropy column (<name>_ce, nats) the perplexity exp(its mean) as <name>_ppl."""
    figures = {c: float(per_user[c].mean()) for c in synthetic.ORACLE_COLUMNS if not c.endswith("logp")}
    for split in ("valid", "test"):
        figures[f"{split}_ppl"] = float(np.exp(-per_user[f"{split}_logp"].mean()))
    for c in per_user.columns:  # expected cross-entropies (the spectral world's entropy and capacity oracle)
        if c.endswith("_ce"):
            figures[c[: -len("_ce")] + "_ppl"] = float(np.exp(per_user[c].mean()))
    return figures


def _build(cfg: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict, pd.DataFrame | None]:
    inter, items, oracle = _source(cfg).read(cfg)
    if inter.empty:
        raise UserError(f"{cfg['data.name']}: no interactions")
    n_raw, n_items_raw = len(inter), items["item"].nunique()
    items, cleaning = clean.clean_items(items)
    inter, cleaning["duplicate_interactions"] = clean.duplicates(inter, cfg["data.duplicates"])
    drops: dict[str, int] = {
        "interactions_duplicate": cleaning["duplicate_interactions"] if cfg["data.duplicates"] == "drop" else 0
    }
    inter = inter.reset_index(drop=True).assign(order=np.arange(len(inter)))
    inter = _filter(inter, items, cfg["data.min_user_interactions"], cfg["data.item_kcore"], drops)
    if inter.empty:
        why = ", ".join(f"{k} = {v}" for k, v in drops.items() if v)
        raise UserError(
            f"{cfg['data.name']}: no users left after filtering ({why or 'nothing dropped'}; "
            f"data.min_user_interactions = {cfg['data.min_user_interactions']}, "
            f"data.item_kcore = {cfg['data.item_kcore']})"
        )
    inter = _subset(inter, cfg["data.scale"], cfg["data.subset_seed"])
    user_ids = {u: i + 1 for i, u in enumerate(_natural_order(inter["user"]))}
    item_ids = {it: i + 1 for i, it in enumerate(_natural_order(inter["item"]))}
    inter = inter.assign(user=inter["user"].map(user_ids), item=inter["item"].map(item_ids))
    inter = inter.sort_values(["user", "timestamp", "order"], kind="stable")[["user", "item", "timestamp"]]
    items = items[items["item"].isin(item_ids)].assign(item=lambda d: d["item"].map(item_ids))
    items = items.sort_values("item").reset_index(drop=True)
    lengths = inter.groupby("user").size()
    manifest = {
        "source": cfg["data.name"],
        "n_users": len(user_ids),
        "n_items": len(item_ids),
        "n_interactions": len(inter),
        "raw_interactions": n_raw,
        "raw_items": int(n_items_raw),
        "mean_length": float(lengths.mean()),
        "max_length": int(lengths.max()),
        "text": bool((items[readers.TEXT_FIELDS] != "").any(axis=None)),
        "drops": drops,
        "cleaning": cleaning,
        "split": "leave-one-out: last item test, second-to-last validation, rest training",
    }
    if oracle is not None:
        oracle = oracle[oracle["user"].isin(user_ids)].assign(user=lambda d: d["user"].map(user_ids))
        oracle = oracle.sort_values("user").reset_index(drop=True)
        manifest["oracle"] = oracle_figures(oracle)
    return inter.reset_index(drop=True), items, manifest, oracle


DROP_WORDS = {
    "interactions_duplicate": "duplicate (user, item, timestamp) interactions",
    "interactions_unknown_item": "interactions with an item missing from the items file",
    "items_no_text": "items without text (title, brand, category all empty)",
    "interactions_item_no_text": "interactions with those items",
    "items_kcore": "items below data.item_kcore",
    "interactions_kcore": "interactions of those items",
    "users_too_few": "users below data.min_user_interactions",
    "interactions_users_too_few": "interactions of those users",
}


def describe(manifest: dict) -> str:
    """What a prepared dataset kept and dropped, in two lines (its manifest's counts)."""
    kept = (
        f"kept {manifest['n_users']:,} users, {manifest['n_items']:,} items, {manifest['n_interactions']:,} "
        f"interactions (of {manifest['raw_interactions']:,} interactions and {manifest['raw_items']:,} items read)"
    )
    drops = [f"{n:,} {DROP_WORDS.get(k, k)}" for k, n in manifest["drops"].items() if n]
    return kept + "\n" + ("dropped: " + "; ".join(drops) if drops else "dropped: nothing")


def _content_hash(inter: pd.DataFrame, items: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for col in ("user", "item", "timestamp"):
        h.update(np.ascontiguousarray(inter[col].to_numpy()).tobytes())
    h.update("\n".join(items[["title", "brand", "category"]].astype(str).agg("\t".join, axis=1)).encode())
    return h.hexdigest()


def dataset_key(cfg: dict) -> str:
    """The cache key: source content + preparation options + the preparation code's version."""
    name, fingerprint = cfg["data.name"], _source(cfg).fingerprint(cfg)
    options = {
        k: cfg[k]
        for k in ("data.min_user_interactions", "data.item_kcore", "data.scale", "data.subset_seed", "data.duplicates")
    }
    blob = json.dumps({"v": PREPARE_VERSION, "source": fingerprint, "options": options}, sort_keys=True)
    return f"{name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


@functools.lru_cache(maxsize=64)
def _summary(data_options: str) -> dict:
    data = prepare(config.resolve(json.loads(data_options)))[0]
    starts, stops = data.training_parts()
    return {
        "n_items": data.n_items,
        "n_users": data.n_users,
        "targets_per_epoch": int(np.maximum(stops - starts - 1, 0).sum()),
    }


def dataset_summary(cfg: dict) -> dict:
    """n_items, n_users and targets_per_epoch (training targets of one epoch over the real sequences) of the
    config's dataset, prepared once per process (the planner and grids ask for it per point)."""
    return _summary(json.dumps({k: v for k, v in cfg.items() if k.startswith("data.")}, sort_keys=True))


def prepare(cfg: dict) -> tuple[Dataset, bool]:
    """Prepared dataset for a resolved config; returns (dataset, cache_hit)."""
    root = cache_dir() / "datasets" / dataset_key(cfg)
    hit = (root / "manifest.json").exists()
    if not hit:
        inter, items, manifest, oracle = _build(cfg)
        is_synthetic = cfg["data.name"] == "synthetic"
        manifest["options"] = {
            k: v
            for k, v in cfg.items()
            if k.startswith("data.") and (is_synthetic or not k.startswith("data.synthetic."))
        }
        manifest["content_hash"] = _content_hash(inter, items)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
        try:
            inter.to_parquet(tmp / "interactions.parquet", index=False)
            items.to_parquet(tmp / "items.parquet", index=False)
            if oracle is not None:
                oracle.to_parquet(tmp / "oracle.parquet", index=False)
            write_json(tmp / "manifest.json", manifest)
            try:
                tmp.rename(root)
            except OSError:  # another process finished the same dataset first
                shutil.rmtree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    manifest = json.loads((root / "manifest.json").read_text())
    oracle = pd.read_parquet(root / "oracle.parquet") if (root / "oracle.parquet").exists() else None
    return Dataset(
        root, pd.read_parquet(root / "interactions.parquet"), pd.read_parquet(root / "items.parquet"), manifest, oracle
    ), hit
