"""Adaptive studies: a grid's candidate runs for `advise --next`, and `study --adaptive`, which closes the loop.

A study directory holds study.json (its settings: a re-run must give the same ones) and one directory per round,
round_00 the seed design, then round_01, ...: grid.yaml (the round's runs as a grid: the study grid's base, `set`,
shape policy and `scale` rules, with the runs zipped), design.json (rounds >= 1: the proposal, `advise --next
--json`'s object, with the fit it was made from) and the round's sweep (plan.json, runs/, results.parquet). A
round's design.json is written once, after its grid.yaml; a re-run of a killed study re-reads it instead of
proposing again, and the sweep skips finished runs and resumes interrupted ones, so nothing is lost or run twice.
`results.parquet` in the study directory is every round's table together.

Seed design (round 0): the grid's smallest, middle and largest n_params values, each trained to a quarter of its
largest tokens value with those of the grid's branches that end no earlier than the grid's own shortest fitting
length (shorter runs are dominated by warmup) and whose cooldown spans >= schedules.MIN_COOLDOWN_STEPS steps (so
do the candidates' branches), at the study's K. Each later round spends (C - spent) / (rounds
left), in up to `count` runs, until the target's 95% intervals are all <= `width`, the FLOPs are spent, or no
candidate fits what is left.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import design, plots
from analysis.table import load, points
from harness.core import config
from harness.core.errors import UserError
from harness.core.io import atomic_path, write_json, write_text
from harness.data.prepare import dataset_summary
from harness.model import schedules
from harness.plan import grid
from harness.sweep.results import write_table

SEED_SHARE = 0.25  # the seed design's runs train to this fraction of the grid's largest T
MIDDLE = (0.25, 0.5, 1.0)  # a branch template besides the grid's own and a single end


def k_value(label: str):
    """A table's K label as loss.negatives takes it."""
    return label if label == "full" else int(float(label))


def grid_pool(grid_path: str | Path, problem: design.Problem) -> list[design.Candidate]:
    """Candidate runs from the grid's shape policy: shapes from half the table's smallest N to twice its largest
    (each shape once), lengths T on half-decade steps (design.t_values, at most one epoch unless the table already
    trains longer), and branch templates: the grid's own, MIDDLE and the end alone (wsd), no fitting length below
    the table's smallest T (the law is not extrapolated to shorter runs, where warmup dominates); each priced by the
    harness's accounting, branches included."""
    lo, hi = problem.n.min() / 2, problem.n.max() * 2
    shapes = {}
    for target in np.geomspace(lo, hi, 4 * design.NS):
        s = grid.shape_for(grid_path, target)
        if lo <= s.n_params <= hi:
            shapes[s.n_params] = s
    k = {"loss.negatives": k_value(problem.negatives)}
    out = []
    for s in shapes.values():
        _, cfg = grid.config_for(grid_path, s.n_params, int(problem.t.max()), k)
        per_target = grid.flops_per_target(cfg)
        epoch = dataset_summary(cfg)["targets_per_epoch"]
        templates = {(1.0,)}
        if cfg["train.schedule"] == "wsd":
            templates |= {tuple(cfg["train.branches"] or (1.0,)), MIDDLE}
        shape = {"d_model": s.d_model, "n_layers": s.n_layers, "n_heads": s.n_heads, "d_ff": s.d_ff}
        for t in design.t_values(problem.t, max(epoch, problem.t.max())):
            for fractions in sorted(templates):
                run = {**cfg, "train.tokens": int(t), "train.branches": list(fractions)}
                lengths = schedules.lengths(run)
                if (
                    min(lengths) < problem.t.min()
                    or len(set(lengths)) < len(fractions)
                    or any(schedules.cooldown_too_short(run, e) for e in lengths[:-1])
                ):
                    continue
                out.append(
                    design.Candidate(
                        float(s.n_params),
                        int(t),
                        tuple(lengths),
                        problem.negatives,
                        per_target * schedules.targets_spent(run),
                        shape,
                        fractions,
                    )
                )
    return out


def used_seeds(table: pd.DataFrame) -> dict:
    """(N, T, fitting lengths) -> the seeds the table's runs already use there (a harness table's columns)."""
    if "train.seed" not in table.columns or "train.tokens" not in table.columns:
        return {}
    out: dict = {}
    for _, g in points(table).groupby("run_id"):
        key = (int(g["n_params"].iloc[0]), int(g["train.tokens"].iloc[0]), tuple(sorted(g["tokens"].astype(int))))
        out.setdefault(key, set()).add(int(g["train.seed"].iloc[0]))
    return out


def write_grid(study_grid: str | Path, runs: list[dict], path: Path) -> None:
    """A grid YAML of exactly `runs` (dicts with n_params, tokens, negatives, fractions, seed): the study grid's
    base (by absolute path), `set`, shape policy and `scale` rules, the runs zipped."""
    study_grid = Path(study_grid)
    tree = config.load_yaml(study_grid)
    out = {
        "base": str((study_grid.parent / str(tree["base"])).resolve()),
        **{k: tree[k] for k in ("set", "shape", "scale") if k in tree},
        "zip": {
            "n_params": [float(r["n_params"]) for r in runs],
            "tokens": [int(r["tokens"]) for r in runs],
            "negatives": [k_value(str(r["negatives"])) for r in runs],
            "train.branches": [list(r["fractions"]) for r in runs],
            "train.seed": [int(r["seed"]) for r in runs],
        },
    }
    write_text(path, yaml.safe_dump(out, sort_keys=False))


def seed_runs(study_grid: str | Path, negatives: str | None) -> list[dict]:
    """The seed design (module doc)."""
    tree = config.load_yaml(study_grid)
    axes = tree.get("axes") or {}
    if "n_params" not in axes or "tokens" not in axes:
        raise UserError(f"{study_grid}: an adaptive study needs a grid with n_params and tokens axes")
    ns = sorted(float(v) for v in axes["n_params"])
    if len(ns) < 3:
        raise UserError(f"{study_grid}: axes.n_params: an adaptive study's seed needs >= 3 values (have {len(ns)})")
    ks = [str(v) for v in axes.get("negatives", [])]
    k = negatives if negatives is not None else (ks[-1] if ks else None)
    if k is None:
        k = str(
            config.resolve(config.flatten(config.load_yaml(Path(study_grid).parent / str(tree["base"]))))[
                "loss.negatives"
            ]
        )
    longest = max(int(float(v)) for v in axes["tokens"])
    t = round(SEED_SHARE * longest)
    _, cfg = grid.config_for(study_grid, ns[0], t)
    fractions = [1.0]
    if cfg["train.schedule"] == "wsd" and cfg["train.branches"]:
        shortest = min(int(float(v)) for v in axes["tokens"]) * min(cfg["train.branches"])
        fractions = [
            f
            for f in cfg["train.branches"]
            if f * t >= shortest and (f == 1.0 or not schedules.cooldown_too_short(cfg, round(f * t)))
        ] or [1.0]
    return [
        {
            "n_params": grid.shape_for(study_grid, n).n_params,
            "tokens": t,
            "negatives": k,
            "fractions": fractions,
            "seed": 0,
        }
        for n in (ns[0], ns[len(ns) // 2], ns[-1])
    ]


def record(out: Path, where: Path) -> list[Path]:
    """Copy the study's table (results.parquet and .csv) to `where` and its record (study.json, summary.json, each
    round's grid.yaml and design.json) under where/study/, and draw its path (analysis.plots.adaptive) as
    where/figures/adaptive_widths; returns the PNG. Nothing is copied onto itself."""
    if where.resolve() != out.resolve():
        for name in ("results.parquet", "results.csv"):
            with atomic_path(where / name) as tmp:
                shutil.copyfile(out / name, tmp)

    for path in [
        out / "study.json",
        out / "summary.json",
        *sorted(out.glob("round_*/grid.yaml")),
        *sorted(out.glob("round_*/design.json")),
    ]:
        if where.resolve() != out.resolve():
            write_text(where / "study" / path.relative_to(out), path.read_text())
    summary = json.loads((out / "summary.json").read_text())
    return plots.save(plots.adaptive(summary), where / "figures", "adaptive_widths")[:1]


def _round_table(rdir: Path) -> pd.DataFrame:
    return load(rdir / "results.parquet")


def run(
    study_grid: str,
    out: str | Path,
    spend: float,
    rounds: int,
    target: str,
    width: float | None,
    count: int,
    negatives: str | None,
    n_boot: int,
    sweep_round: Callable[[Path, Path], None],
    log: Callable[[str], None] = print,
) -> dict:
    """The adaptive study (module doc). `sweep_round(grid_yaml, sweep_dir)` runs a round's grid to completion and
    collects it into sweep_dir/results.parquet (the CLI's sweep and collect). Returns the summary written to
    study.json's neighbour summary.json."""
    out = Path(out)
    settings = {
        "grid": str(Path(study_grid).resolve()),
        "spend": spend,
        "rounds": rounds,
        "target": target,
        "width": width,
        "count": count,
        "negatives": negatives,
        "bootstrap": n_boot,
    }
    if not spend > 0:
        raise UserError(f"--spend {spend}: must be a positive number of FLOPs")
    if rounds < 1:
        raise UserError(f"--rounds {rounds}: expected a positive number of rounds")
    if target not in design.TARGETS:
        raise UserError(f"--target {target}: expected one of {', '.join(design.TARGETS)}")
    stored = out / "study.json"
    if stored.exists():
        before = json.loads(stored.read_text())
        if before != settings:
            changed = ", ".join(k for k in settings if before.get(k) != settings[k])
            raise UserError(f"{out}: holds an adaptive study with other settings ({changed}); use another --out")
    else:
        write_json(stored, settings)
    seed_dir = out / "round_00"
    if not (seed_dir / "grid.yaml").exists():
        write_grid(study_grid, seed_runs(study_grid, negatives), seed_dir / "grid.yaml")
    log(f"round 0: the seed design ({seed_dir / 'grid.yaml'})")
    sweep_round(seed_dir / "grid.yaml", seed_dir)
    done, history, stop = [seed_dir], [], None
    for r in range(1, rounds + 1):
        table = pd.concat([_round_table(d) for d in done], ignore_index=True)
        used = design.spent(table)
        rdir = out / f"round_{r:02d}"
        problem = design.problem(table, "test", negatives, target, None, n_boot)
        now = design.widths(problem.samples())
        history.append({"round": r - 1, "flops_spent": used, "widths": dict(zip(problem.names(), now.tolist()))})
        if (rdir / "design.json").exists():
            proposal = json.loads((rdir / "design.json").read_text())
            log(f"round {r}: resuming its proposal ({len(proposal['runs'])} runs)")
        else:
            if width is not None and np.all(now <= width):
                stop = f"every 95% interval is <= {width:g} after round {r - 1}"
                break
            left = spend - used
            if left <= 0:
                stop = f"the {spend:.3g} FLOPs are spent ({used:.3g})"
                break
            pool = grid_pool(study_grid, problem)
            proposal = design.propose(problem, pool, left / (rounds - r + 1), count, used_seeds(table))
            if not proposal["runs"]:
                stop = f"no candidate run fits the {left / (rounds - r + 1):.3g} FLOPs of round {r}"
                break
            write_grid(study_grid, proposal["runs"], rdir / "grid.yaml")
            write_json(rdir / "design.json", proposal)
            log(f"round {r}:\n{design.format_proposal(proposal)}")
        sweep_round(rdir / "grid.yaml", rdir)
        done.append(rdir)
    table = pd.concat([_round_table(d) for d in done], ignore_index=True)
    write_table(table, out / "results")
    if stop is None:
        problem = design.problem(table, "test", negatives, target, None, n_boot)
        history.append(
            {
                "round": len(done) - 1,
                "flops_spent": design.spent(table),
                "widths": dict(zip(problem.names(), design.widths(problem.samples()).tolist())),
            }
        )
        stop = f"{rounds} rounds done"
    summary = {"rounds_run": len(done) - 1, "stopped": stop, "flops_spent": design.spent(table), "history": history}
    write_json(out / "summary.json", summary)
    log(f"adaptive study stopped: {stop}; {summary['flops_spent']:.3g} FLOPs spent")
    return summary
