"""The results table as analysis reads it (the contract in harness/core/schema.py, docs/design.md), what is excluded
from fits, and how a table from elsewhere is read (`Spec`, documented in docs/analysis.md "Tables from elsewhere").

A Spec is applied once, when the table is loaded: columns are renamed to the contract's names, a loss column
becomes perplexity (ppl = e^loss), missing tokens or flops are derived with C = 6 N T, missing run_id / status /
final / negatives get the one reading a table of single results allows (each row a finished run), the `rows`
choice sets which rows are fitting points, and pooling K relabels every row's K. Everything downstream sees a
table in the contract; what was assumed is listed in `table.attrs["table"]["assumed"]` and in fits.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.core.errors import UserError
from harness.core.schema import BAD_VALUES, DUPLICATES, FITTING_ROWS, N_COLUMNS, REQUIRED, SPLITS, STATUSES

METRICS = {"ppl": "perplexity", "ndcg@5": "NDCG@5"}
LOWER_IS_BETTER = {"ppl": True, "ndcg@5": False}
TARGETS = {"ppl": "ln(perplexity)", "ndcg@5": "1 - NDCG@5"}  # what a law of each metric fits


def to_target(metric: str, values) -> np.ndarray:
    """A metric's values as the quantity its law fits (TARGETS): ln perplexity, 1 - NDCG@5."""
    v = np.asarray(values, float)
    return np.log(v) if metric == "ppl" else 1.0 - v


def from_target(metric: str, y) -> np.ndarray:
    """A law's value back in the metric's units; NDCG@5 is bounded, so a prediction stays in [0, 1]."""
    y = np.asarray(y, float)
    return np.exp(y) if metric == "ppl" else np.clip(1.0 - y, 0.0, 1.0)


# Other tools' words for a run that ended normally (status is compared after strip and lower-casing).
DONE_SYNONYMS = {s: "done" for s in ("finished", "completed", "complete", "success", "succeeded")}


# Columns a Spec may map a source column onto: the contract's columns, a per-split loss (nats, read as
# ln perplexity), and an IsoFLOP budget label.
MAPPABLE = (
    "run_id",
    "status",
    "final",
    "annealed",
    "n_params",
    "tokens",
    "flops",
    "negatives",
    "budget",
    *(f"{split}_{m}" for split in SPLITS for m in ("ppl", "ndcg@5", "loss")),
)
FLOPS_PER_PARAM_TARGET = 6.0  # C = 6 N T where a table has only one of tokens and flops


@dataclass
class Spec:
    """How to read a results table: `columns` maps contract names to the table's own column names (e.g.
    {"n_params": "Model Size", "flops": "Training FLOP", "test_loss": "loss"}); `split` is the split whose
    metrics are fitted; `rows` the fitting points (auto: annealed rows where the table has them, else final rows;
    final; annealed; every evaluation; envelope: every evaluation with each run's best value so far);
    `pool_negatives` fits all K together; `protocol` names the evaluation in axis labels; `bad_values` what a
    finished run's impossible metric (check_values) does: a one-line error, or the row excluded and counted;
    `duplicates` what a repeated row does (drop_duplicates): a one-line error, or the first kept and the rest
    counted."""

    columns: dict[str, str] = field(default_factory=dict)
    split: str = "test"
    rows: str = "auto"
    pool_negatives: bool = False
    protocol: str = "full catalog"
    bad_values: str = "error"
    duplicates: str = "error"
    n_column: str = "n_params"

    def __post_init__(self) -> None:
        if self.n_column not in N_COLUMNS:
            raise UserError(f"--n-column: {self.n_column!r} is not one of {', '.join(N_COLUMNS)}")
        if self.n_column != "n_params" and "n_params" in self.columns:
            raise UserError("--n-column: give N by --column n_params=SOURCE or by --n-column, not both")
        if self.duplicates not in DUPLICATES:
            raise UserError(f"--duplicates: {self.duplicates!r} is not one of {', '.join(DUPLICATES)}")
        if self.bad_values not in BAD_VALUES:
            raise UserError(f"--bad-values: {self.bad_values!r} is not one of {', '.join(BAD_VALUES)}")
        if self.split not in SPLITS:
            raise UserError(f"--split: {self.split!r} is not one of {', '.join(SPLITS)}")
        if self.rows not in FITTING_ROWS:
            raise UserError(f"--rows: {self.rows!r} is not one of {', '.join(FITTING_ROWS)}")
        unknown = sorted(set(self.columns) - set(MAPPABLE))
        if unknown:
            raise UserError(
                f"--column: {unknown[0]!r} is not a column the analysis reads (one of {', '.join(MAPPABLE)})"
            )

    @classmethod
    def parse_columns(cls, pairs: list[str]) -> dict[str, str]:
        """['n_params=Model Size', ...] -> {'n_params': 'Model Size'}; a pair without '=' is a UserError."""
        out = {}
        for pair in pairs:
            name, sep, source = pair.partition("=")
            if not sep or not name.strip() or not source.strip():
                raise UserError(f"--column {pair!r}: expected NAME=SOURCE_COLUMN, e.g. n_params='Model Size'")
            out[name.strip()] = source.strip()
        return out


def load(path: str | Path, spec: Spec | None = None) -> pd.DataFrame:
    """A results table from .parquet or .csv, or a directory holding results.parquet, read through `spec`
    (default: a table in the contract); checks the columns and values."""
    spec = spec or Spec()
    path = Path(path)
    if path.is_dir():
        path = path / "results.parquet"
    if not path.exists():
        raise UserError(f"{path}: no results table (run `srt-scale collect` first)")
    try:
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the table ({e})") from None
    if table.empty:
        raise UserError(f"{path}: the table has no rows: nothing to fit")
    table, assumed = _apply(table, spec, path)
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)} (map the table's own names with --column NAME=SOURCE)"
        )
    table["status"] = _words(table["status"]).replace(DONE_SYNONYMS)
    unknown = sorted(set(table["status"]) - set(STATUSES))
    if unknown:
        raise UserError(f"{path}: column status: unknown value {unknown[0]!r} (known: {', '.join(STATUSES)})")
    table["negatives"] = table["negatives"].astype(str)
    for column in ("final", "annealed"):
        if column in table.columns:
            table[column] = booleans(table[column], f"{path}: column {column}")
    table, dropped = drop_duplicates(table, spec, path, any(a.startswith("no run_id") for a in assumed))
    table, excluded = check_values(table, spec, path)
    table = _select_rows(table, spec, path)
    table.attrs["table"] = {
        **_reading(spec, assumed),
        **({"excluded_values": excluded} if excluded else {}),
        **({"duplicates_dropped": dropped} if dropped else {}),
    }
    return table


def _where(table: pd.DataFrame, label, path: Path) -> str:
    """A row's place for messages: the csv line (header = line 1) or the parquet row."""
    i = table.index.get_loc(label)
    return f"line {i + 2}" if path.suffix == ".csv" else f"row {i}"


def drop_duplicates(table: pd.DataFrame, spec: Spec, path: Path, assumed_ids: bool) -> tuple[pd.DataFrame, int]:
    """Rows that repeat another: the same (run_id, tokens), or, in a table without run ids, the same values in
    every column. A UserError naming how many and the first pair by line; with spec.duplicates == "keep-first"
    each first is kept and the others counted (fitting a row twice would count its measurement twice)."""
    keys = [c for c in table.columns if c != "run_id"] if assumed_ids else ["run_id", "tokens"]
    key = table[keys].map(repr).agg("|".join, axis=1)  # repr: NaN equals NaN, lists compare as text
    dup = key.duplicated(keep="first")
    if not dup.any():
        return table, 0
    if spec.duplicates == "error":
        again = dup.idxmax()
        first = key.index[key == key[again]][0]
        what = "(run_id, tokens)" if not assumed_ids else "values in every column"
        raise UserError(
            f"{path}: {int(dup.sum())} duplicate row(s), the same {what} as an earlier row "
            f"({_where(table, again, path)} repeats {_where(table, first, path)}); "
            "--duplicates keep-first keeps each first"
        )
    return table[~dup], int(dup.sum())


def _impossible(metric: str, values: pd.Series) -> tuple[pd.Series, str]:
    """Which present values of a finished run's metric column cannot be (missing is allowed), and why."""
    v = pd.to_numeric(values, errors="coerce")
    if metric == "loss":
        return v.notna() & ~np.isfinite(v), "a loss must be finite"
    if metric == "ppl":
        return v.notna() & ~((v > 0) & np.isfinite(v)), "a perplexity must be finite and > 0"
    return v.notna() & ~v.between(0, 1), "NDCG@5 must lie in [0, 1]"


def check_values(table: pd.DataFrame, spec: Spec, path: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """A finished run's perplexity <= 0 or not finite, its loss not finite, or its NDCG@5 outside [0, 1] is a
    UserError naming the column (the table's own name), the line (csv: header = line 1) or row, and the value;
    with spec.bad_values == "exclude" those rows are dropped instead and counted by column. Diverged runs keep
    their infinite perplexity; a missing value stays missing (excluded from fits, counted there)."""
    done = table["status"] == "done"
    counts, drop = {}, pd.Series(False, index=table.index)
    for split in SPLITS:
        for metric in ("loss", "ppl", "ndcg@5"):
            col = f"{split}_{metric}"
            if col not in table.columns or (metric == "ppl" and f"{split}_loss" in table.columns):
                continue  # a ppl read from a loss column is checked as the loss
            bad, why = _impossible(metric, table[col])
            bad &= done
            if not bad.any():
                continue
            name = spec.columns.get(col, col)
            if spec.bad_values == "error":
                i = table.index.get_loc(bad.idxmax())
                where = f"line {i + 2}" if path.suffix == ".csv" else f"row {i}"
                value = table[col][bad].iloc[0]
                shown = value if isinstance(value, float) else repr(value)
                raise UserError(
                    f"{path}: column {name}, {where}: {shown} ({why}; --bad-values exclude drops "
                    "such rows and counts them)"
                )
            counts[name] = int(bad.sum())
            drop |= bad
    return table[~drop], counts


def _reading(spec: Spec, assumed: list[str]) -> dict:
    """How a table was read: the Spec as a dict, what was assumed, and the metric names (a loss column makes
    perplexity 'perplexity = e^loss')."""
    from_loss = any(name.endswith("_loss") for name in spec.columns)
    return {
        **asdict(spec),
        "assumed": assumed,
        "metric_names": {**METRICS, **({"ppl": "perplexity = e^loss"} if from_loss else {})},
    }


def describe(table: pd.DataFrame) -> dict:
    """How `table` was read (`_reading`); a table built in memory, not loaded, reads as the contract's."""
    return table.attrs.get("table") or _reading(Spec(), [])


def label(info: dict | None, metric: str, split: str = "test") -> str:
    """A metric's name for axes and text, from how the table was read (`describe`): its own metric name, the
    split and the evaluation protocol, e.g. 'validation perplexity (full catalog)'."""
    info = info or {}
    name = info.get("metric_names", {}).get(metric, METRICS[metric])
    return f"{'validation' if split == 'valid' else split} {name} ({info.get('protocol', 'full catalog')})"


def _apply(table: pd.DataFrame, spec: Spec, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Rename the spec's columns to the contract's names and fill what a table of single results leaves out."""
    absent = [source for source in spec.columns.values() if source not in table.columns]
    if absent:
        raise UserError(f"{path}: no column {absent[0]!r} (columns: {', '.join(map(str, table.columns))})")
    table = table.rename(columns={source: name for name, source in spec.columns.items()})
    assumed = []
    if spec.n_column != "n_params":
        if spec.n_column not in table.columns:
            raise UserError(f"{path}: --n-column {spec.n_column}: no such column")
        table = table.assign(n_params_nonembedding=table["n_params"], n_params=table[spec.n_column])
        assumed.append(f"N = {spec.n_column} (the non-embedding N kept as n_params_nonembedding)")
    for split in SPLITS:
        if f"{split}_loss" in table.columns:
            loss = pd.to_numeric(table[f"{split}_loss"], errors="coerce")
            table[f"{split}_ppl"] = np.exp(loss)
            assumed.append(f"{split}_ppl = e^{split}_loss ({spec.columns.get(f'{split}_loss', f'{split}_loss')})")
    for column in ("n_params", "tokens", "flops"):
        if column in table.columns:
            values = pd.to_numeric(table[column], errors="coerce")
            bad = (values.isna() & table[column].notna()) | (values <= 0)  # missing is allowed: a run that failed
            if bad.any():
                raise UserError(
                    f"{path}: column {spec.columns.get(column, column)}, {_where(table, bad.idxmax(), path)}: "
                    f"{str(table[column][bad].iloc[0])!r} is not a number > 0"
                )
            table[column] = values.astype(float)
    k = FLOPS_PER_PARAM_TARGET
    if "tokens" not in table.columns and {"flops", "n_params"} <= set(table.columns):
        table["tokens"] = table["flops"] / (k * table["n_params"])
        assumed.append(f"tokens = flops / ({k:g} n_params)")
    if "flops" not in table.columns and {"tokens", "n_params"} <= set(table.columns):
        table["flops"] = k * table["tokens"] * table["n_params"]
        assumed.append(f"flops = {k:g} n_params tokens")
    if "run_id" not in table.columns:
        table["run_id"] = [f"row{i}" for i in range(len(table))]
        assumed.append("no run_id: each row is its own run")
    if "status" not in table.columns:
        table["status"] = "done"
        assumed.append("no status: every run finished")
    if "final" not in table.columns and table["run_id"].is_unique:
        table["final"] = True
        assumed.append("no final: each run's one row is its final row")
    if "negatives" not in table.columns:
        table["negatives"] = "full"
        assumed.append("no negatives: one group, K = full")
    if spec.pool_negatives:
        table["negatives"] = "pooled"
        assumed.append("K pooled: all negatives fitted together")
    return table, assumed


def _select_rows(table: pd.DataFrame, spec: Spec, path: Path) -> pd.DataFrame:
    """Set `annealed` so that `points` picks the rows the spec asks for (auto leaves the table as it is)."""
    if spec.rows == "final":
        return table.drop(columns=["annealed"], errors="ignore")
    if spec.rows == "annealed":
        if "annealed" not in table.columns or not table["annealed"].any():
            raise UserError(f"{path}: --rows annealed: the table has no annealed rows")
        return table
    if spec.rows in ("every", "envelope"):
        table = table.assign(annealed=True)
        if spec.rows == "envelope":
            order = table.sort_values(["run_id", "tokens"]).index
            table = table.loc[order]
            for split in SPLITS:
                for metric, lower in LOWER_IS_BETTER.items():
                    col = f"{split}_{metric}"
                    if col in table.columns:
                        best = table.groupby("run_id")[col]
                        table[col] = best.cummin() if lower else best.cummax()
        return table
    return table


TRUE, FALSE = {"true", "t", "yes", "y", "1", "1.0"}, {"false", "f", "no", "n", "0", "0.0", "", "nan", "none"}


def _words(values: pd.Series) -> pd.Series:
    """A column as stripped lower-case text (missing = empty)."""
    return values.fillna("").astype(str).str.strip().str.lower()


def booleans(values: pd.Series, where: str) -> pd.Series:
    """A column of flags written as booleans, 0/1, or text (True/False, yes/no, empty = false); anything else is
    a UserError naming `where` and the first bad value."""
    if values.dtype == bool:
        return values
    text = _words(values)
    bad = ~text.isin(TRUE | FALSE)
    if bad.any():
        raise UserError(f"{where}: {values[bad].iloc[0]!r} is not a boolean (true/false, yes/no, 1/0)")
    return text.isin(TRUE)


def k_order(values) -> list[str]:
    """K labels in order: numbers ascending, then other labels alphabetically, then 'full'."""

    def key(k: str):
        try:
            return (k == "full", 0, float(k), "")
        except ValueError:
            return (k == "full", 1, 0.0, k)

    return sorted({str(v) for v in values}, key=key)


def points(rows: pd.DataFrame) -> pd.DataFrame:
    """The fitting points: rows of runs trained to their T with the learning rate annealed, i.e. `annealed` rows
    (a cosine run's final row, a WSD run's cooldown-branch ends); tables without that column: `final` rows. An
    intermediate evaluation of a run is not a run trained to that T, so it is not a fitting point."""
    return rows[rows["annealed"]] if annealed_points(rows) else rows[rows["final"]]


def annealed_points(rows: pd.DataFrame) -> bool:
    """Whether `points` takes the `annealed` rows (else the `final` ones)."""
    return "annealed" in rows.columns and bool(rows["annealed"].any())


def canonical(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows in an order that depends on their values only (K, N, T, C, then the metrics), not on run ids or the
    file's order: fits, bootstrap resamples and figures of the same measurements are then the same whatever the
    runs are called."""
    metrics = sorted(c for c in rows.columns if c.startswith(tuple(f"{s}_" for s in SPLITS)))
    keys = [c for c in ("negatives", "n_params", "tokens", "flops") if c in rows.columns] + metrics
    return rows.sort_values(keys, kind="mergesort", na_position="last")


def usable(table: pd.DataFrame, split: str = "test") -> tuple[pd.DataFrame, dict]:
    """Rows of finished runs with finite metrics and N, T, C > 0 (in canonical order), and a summary of what was
    excluded: a row that fails is dropped by itself (`nan_rows` counts the fitting points among them, `nan_runs`
    the runs left with no fitting point, which are dropped whole)."""
    table = table.reset_index(drop=True)  # row labels unique (a concatenated table repeats them)
    runs = table.groupby("run_id")["status"].last()
    bad = runs[runs != "done"]
    keep = table[table["run_id"].isin(runs[runs == "done"].index)]
    cols = [f"{split}_{m}" for m in METRICS if f"{split}_{m}" in table.columns]
    ok = np.isfinite(keep[cols].to_numpy(dtype=float)).all(axis=1) if cols else np.ones(len(keep), bool)
    ok &= (keep[["n_params", "tokens", "flops"]].to_numpy(dtype=float) > 0).all(axis=1)  # a law needs N, T, C > 0
    fitting = keep.index.isin(points(keep).index)
    good = keep[ok]
    left = set(points(good)["run_id"])
    summary = {
        "runs": int(runs.size),
        "done": int((runs == "done").sum()),
        "excluded": {s: int((bad == s).sum()) for s in sorted(bad.unique())},
        "nan_rows": int((fitting & ~ok).sum()),
        "nan_runs": int(keep["run_id"].nunique() - len(left)),
        "rows": int(len(good)),
    }
    return canonical(good[good["run_id"].isin(left)]), summary
