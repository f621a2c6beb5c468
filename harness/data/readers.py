"""What the file sources (harness/data/sources/) share: reading text (.gz too), required columns, the raw tables
every source returns: interactions[user, item, timestamp] (in file order, the source's own ids) and
items[item, title, brand, category] (strings).

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

from harness.core.errors import UserError

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


def require(df: pd.DataFrame, columns: list[str], path: Path | str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, df.columns))})")


def items_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"item": df["item"].astype(str)})
    for f in TEXT_FIELDS:
        out[f] = df[f].fillna("").astype(str).str.strip() if f in df else ""
    return out.drop_duplicates("item", keep="first").reset_index(drop=True)


def interactions_frame(df: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    ts = pd.to_numeric(df["timestamp"], errors="coerce")
    if ts.isna().any():
        line = int(ts.isna().to_numpy().nonzero()[0][0])
        raise UserError(f"{path}: row {line + 1}: timestamp {df['timestamp'].iloc[line]!r} is not a number")
    return pd.DataFrame({"user": df["user"].astype(str), "item": df["item"].astype(str), "timestamp": ts})


def json_lines(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: invalid JSON ({e.msg})") from None
    return rows


def joined(value) -> str:
    """A metadata value (string, list of strings, or missing: None / NaN for a key a line lacks) as text."""
    if isinstance(value, list):
        return " ".join(joined(v) for v in value if v)
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def check_width(rows: list[list[str]], width: int, path: Path) -> None:
    for n, r in enumerate(rows, 1):
        if len(r) < width:
            raise UserError(f"{path}:{n}: expected {width} fields, found {len(r)}")


def read_table_file(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: cannot read Parquet ({e})") from None
    text = read_text(path)
    sep = "\t" if path.name.removesuffix(".gz").endswith(".tsv") else ","
    return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
