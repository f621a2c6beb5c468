"""Readers for the file sources. Each returns raw tables with the source's own ids:
interactions[user, item, timestamp] (in file order) and items[item, title, brand, category] (strings).

Errors name the file (and line where known) and raise UserError; nothing is silently changed here (text
cleaning and drops happen in prepare, where they are counted). A field a file does not give is the empty
string, never `nan` or `None`. A source without item text (an interaction-only log) gives items with every
text field empty.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pandas as pd

from harness.errors import UserError

TEXT_FIELDS = ["title", "brand", "category"]


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Whole file as text; `.gz` transparently. Non-UTF-8 bytes -> UserError naming file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise UserError(f"{path}: not a valid gzip file ({e})") from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not valid {encoding.upper()} text") from None
    if not text.strip():
        raise UserError(f"{path}: empty file")
    return text


def _require(df: pd.DataFrame, columns: list[str], path: Path | str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, df.columns))})")


def _items_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"item": df["item"].astype(str)})
    for f in TEXT_FIELDS:
        out[f] = df[f].fillna("").astype(str).str.strip() if f in df else ""
    return out.drop_duplicates("item", keep="first").reset_index(drop=True)


def _interactions_frame(df: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    ts = pd.to_numeric(df["timestamp"], errors="coerce")
    if ts.isna().any():
        line = int(ts.isna().to_numpy().nonzero()[0][0])
        raise UserError(f"{path}: row {line + 1}: timestamp {df['timestamp'].iloc[line]!r} is not a number")
    return pd.DataFrame({"user": df["user"].astype(str), "item": df["item"].astype(str), "timestamp": ts})


# --- RecBole atomic files -----------------------------------------------------------------------------------

_RECBOLE_TEXT = {"title": ["title", "movie_title", "name", "item_name"], "brand": ["brand", "release_year"],
                 "category": ["categories", "category", "class", "genre"]}


def _read_atomic(path: Path) -> pd.DataFrame:
    text = read_text(path)
    df = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, quoting=3)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def read_recbole(directory: str | Path, name: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """RecBole atomic files `<name>.inter` (user_id, item_id, timestamp) and `<name>.item` (text fields; without
    it the source is interaction-only)."""
    directory = Path(directory)
    name = name or directory.name
    inter_path, item_path = directory / f"{name}.inter", directory / f"{name}.item"
    if not inter_path.exists():
        raise UserError(f"{inter_path}: RecBole atomic file not found")
    inter = _read_atomic(inter_path)
    _require(inter, ["user_id", "item_id", "timestamp"], inter_path)
    if not item_path.exists():
        return _interactions_frame(inter.rename(columns={"user_id": "user", "item_id": "item"}), inter_path), \
            _items_frame(pd.DataFrame({"item": inter["item_id"]}))
    items = _read_atomic(item_path)
    _require(items, ["item_id"], item_path)
    fields = {"item": items["item_id"]}
    for field, candidates in _RECBOLE_TEXT.items():
        found = [c for c in candidates if c in items.columns]
        if found:
            fields[field] = items[found[0]]
    interactions = _interactions_frame(
        inter.rename(columns={"user_id": "user", "item_id": "item"}), inter_path)
    return interactions, _items_frame(pd.DataFrame(fields))


# --- Amazon Review Data 2018 ----------------------------------------------------------------------------------

def _json_lines(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: invalid JSON ({e.msg})") from None
    return rows


def _joined(value) -> str:
    """A metadata value (string, list of strings, or missing: None / NaN for a key a line lacks) as text."""
    if isinstance(value, list):
        return " ".join(_joined(v) for v in value if v)
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def read_amazon2018(reviews: str | Path, metadata: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Amazon 2018: ratings CSV (no header: item,user,rating,timestamp) or 5-core review JSON lines
    (reviewerID, asin, unixReviewTime); metadata JSON lines (asin, title, brand, category list). .gz or plain."""
    reviews, metadata = Path(reviews), Path(metadata)
    stem = reviews.name.removesuffix(".gz")
    if stem.endswith(".csv"):
        text = read_text(reviews)
        df = pd.read_csv(io.StringIO(text), header=None, dtype=str)
        if df.shape[1] != 4:
            raise UserError(f"{reviews}: expected 4 columns item,user,rating,timestamp, found {df.shape[1]}")
        df.columns = ["item", "user", "rating", "timestamp"]
    else:
        df = pd.DataFrame(_json_lines(reviews))
        _require(df, ["reviewerID", "asin", "unixReviewTime"], reviews)
        df = df.rename(columns={"reviewerID": "user", "asin": "item", "unixReviewTime": "timestamp"})
    meta = pd.DataFrame(_json_lines(metadata))
    _require(meta, ["asin"], metadata)
    fields = {"item": meta["asin"]}
    for f in TEXT_FIELDS:
        if f in meta:
            fields[f] = meta[f].map(_joined)
    return _interactions_frame(df, reviews), _items_frame(pd.DataFrame(fields))


# --- MovieLens ---------------------------------------------------------------------------------------------

_ML_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
              "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
              "War", "Western"]


def read_movielens(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MovieLens `ratings.dat` + `movies.dat` (ML-1M/10M, '::'-separated) or `u.data` + `u.item` (ML-100K).
    GroupLens ships these files in Latin-1, which is how they are decoded."""
    directory = Path(directory)
    if (directory / "ratings.dat").exists():
        ratings = [ln.split("::") for ln in read_text(directory / "ratings.dat", "latin-1").splitlines() if ln]
        movies = [ln.split("::") for ln in read_text(directory / "movies.dat", "latin-1").splitlines() if ln]
        _check_width(ratings, 4, directory / "ratings.dat")
        _check_width(movies, 3, directory / "movies.dat")
        inter = pd.DataFrame([r[:4] for r in ratings], columns=["user", "item", "rating", "timestamp"])
        items = pd.DataFrame({"item": [m[0] for m in movies], "title": [m[1] for m in movies],
                              "category": [m[2].replace("|", " ") for m in movies]})
        return _interactions_frame(inter, directory / "ratings.dat"), _items_frame(items)
    if (directory / "u.data").exists():
        ratings = [ln.split("\t") for ln in read_text(directory / "u.data", "latin-1").splitlines() if ln]
        movies = [ln.split("|") for ln in read_text(directory / "u.item", "latin-1").splitlines() if ln]
        _check_width(ratings, 4, directory / "u.data")
        _check_width(movies, 5 + len(_ML_GENRES), directory / "u.item")
        inter = pd.DataFrame([r[:4] for r in ratings], columns=["user", "item", "rating", "timestamp"])
        genres = [" ".join(g for g, flag in zip(_ML_GENRES, m[5:]) if flag.strip() == "1") for m in movies]
        items = pd.DataFrame({"item": [m[0] for m in movies], "title": [m[1] for m in movies], "category": genres})
        return _interactions_frame(inter, directory / "u.data"), _items_frame(items)
    raise UserError(f"{directory}: no MovieLens ratings.dat or u.data found")


def _check_width(rows: list[list[str]], width: int, path: Path) -> None:
    for n, r in enumerate(rows, 1):
        if len(r) < width:
            raise UserError(f"{path}:{n}: expected {width} fields, found {len(r)}")


# --- generic CSV / Parquet -----------------------------------------------------------------------------------

def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: cannot read Parquet ({e})") from None
    text = read_text(path)
    sep = "\t" if path.name.removesuffix(".gz").endswith(".tsv") else ","
    return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)


def read_table(path: str | Path, items_path: str | Path | None, columns: dict[str, str]):
    """Generic CSV/TSV/Parquet: `columns` maps user/item/timestamp (and title/brand/category in the items
    file, or in the interactions file when there is no items file) to the file's column names."""
    path = Path(path)
    for key in ("user", "item", "timestamp"):
        if key not in columns:
            raise UserError(f"data.columns: missing {key!r}")
    df = _read_table(path)
    _require(df, [columns[k] for k in ("user", "item", "timestamp")], path)
    inter = _interactions_frame(df.rename(columns={columns[k]: k for k in ("user", "item", "timestamp")}), path)
    src, src_path = (_read_table(Path(items_path)), items_path) if items_path else (df, path)
    text_cols = {columns[f]: f for f in TEXT_FIELDS if f in columns}
    _require(src, [columns["item"], *text_cols], src_path)
    items = src.rename(columns={columns["item"]: "item", **text_cols})
    return inter, _items_frame(items)
