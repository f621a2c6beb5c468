"""The results table's contract, defined once: the columns a run records, their order, and the statuses.

A run writes one row per evaluation point to metrics.jsonl (RUN_COLUMNS + ROW_COLUMNS + the split's metrics);
its result.json is the last row plus STATUS, the config keys as dotted columns, ENVIRONMENT and the dataset's
oracle figures (`oracle_*`). `collect` orders a table's columns by ORDER; `analysis` requires REQUIRED.
docs/design.md describes every column.
"""

from __future__ import annotations

# a run's status: its outcome (done, diverged, failed: it raised), or while it has none, its job's state
STATUSES = ("done", "diverged", "failed", "timed_out", "interrupted", "running", "pending")
FINISHED = ("done", "diverged")  # never trained again
SPLITS = ("valid", "test")
METRICS = ("ndcg@5", "ndcg@10", "hr@5", "hr@10", "mrr", "ppl")
RUN_COLUMNS = (
    "run_id",
    "n_params",
    "n_params_total",
    "n_params_tables",
    "negatives",
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "n_items",
    "n_users",
    "target_kl",
)  # fixed for a run
ROW_COLUMNS = (
    "final",
    "annealed",
    "tokens",
    "flops",
    "flops_spent",
    "epochs",
    "wall_s",
    "train_s",
    "targets_per_s",
    "mfu",
    "train_loss",
)  # one evaluation point
DIVERGED_COLUMNS = ("diverged_step", "diverged_tokens", "diverged_reason")  # on a diverged run's last row
ENVIRONMENT = ("host", "torch", "numpy", "srt_scale", "git_sha", "threads", "world_size")
ORDER = (
    "run_id",
    "status",
    "final",
    "n_params",
    "n_params_total",
    "n_params_tables",
    "tokens",
    "negatives",
    "flops",
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "epochs",
    "wall_s",
    "targets_per_s",
    "mfu",
)
REQUIRED = ("run_id", "status", "final", "n_params", "tokens", "flops", "negatives")
# which rows of a table analysis fits (analysis.table.Spec.rows; docs/analysis.md)
FITTING_ROWS = ("auto", "final", "annealed", "every", "envelope")
INTERVALS = ("auto", "runs", "points")  # how the joint laws' intervals are made (analysis.laws.interval_method)
BAD_VALUES = ("error", "exclude")  # what a finished run's impossible metric does (analysis.table.check_values)
DUPLICATES = ("error", "keep-first")  # what a repeated row does (analysis.table.drop_duplicates)
N_COLUMNS = ("n_params", "n_params_total")  # the N a law is fitted on: non-embedding, or with the id / token tables
# a running run's targets trained so far, rewritten every PROGRESS_EVERY_S seconds (read by harness/sweep/progress.py)
PROGRESS_FILE = "progress.json"
PROGRESS_EVERY_S = 2.0
