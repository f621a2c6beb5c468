"""The fits of a results table, per metric and per K (negatives): what `srt-scale fit` writes to fits.json.

Targets are loss-like: perplexity is fitted as its log (the cross-entropy, nats); NDCG@5, bounded in [0, 1], as
its error 1 - NDCG@5 with the same forms (E >= 0); the SRT paper's sigmoid in ln C is fitted to the Pareto envelope
of every evaluation (`frontier`), and to the fitting points in the extrapolation check.
Joint and single-axis fits use the fitting points (analysis.table.points: annealed rows, i.e. cosine runs' final
rows and WSD cooldown-branch ends): an intermediate evaluation of a run is not a run trained to that T. The joint
laws' intervals rest on the table's noise model (analysis/noise.py: point noise and a run effect) by a parametric
bootstrap, or resample fitting points where each run has one (interval_method); each law also gets its lack-of-fit
tests (analysis/lack_of_fit.py) and a profile-likelihood cross-check (analysis/profile.py). IsoFLOP minima use every
evaluation's validation metric (see frontier.py).
For a synthetic world, `oracle_floor` compares the fitted E with the oracle's value of the same target on the same
users (the floor a perfect model reaches), and where the world records its capacity oracle, `capacity` holds the
best rank-d model's loss beside the trained runs' (analysis/capacity.py). A table with >= 3 values of K also gets
joint laws in (N, T, K) over all of them, `negatives` (analysis/negatives.py). The extrapolation check fits on runs with
C <= C_max / holdout_divisor and reports the relative error of the prediction on the others, in the metric's own units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import conventions, fit, frontier, lack_of_fit, noise, optimum, profile
from analysis.capacity import capacity
from analysis.cost import fit_cost
from analysis.negatives import fit_negatives
from analysis.table import LOWER_IS_BETTER, METRICS, TARGETS, describe, from_target, k_order, points, to_target, usable

NEGATIVES_BOOT = 200  # bootstrap resamples of the joint laws in K (each a least-squares refit of 7 parameters)
BUDGETS = 12  # budgets of approach 3 and of `optimum`: log-uniform from the table's smallest C to 10x its largest


MIN_VALUES = 3  # distinct N and T a joint law needs: E + A N^-alpha has 3 parameters, 2 values of N pin down 2 numbers
WEAK_RUN_DOF = 3.0  # a run variance on fewer degrees of freedom makes the between-run parameters' intervals wide


def interval_method(s: pd.DataFrame, intervals: str, run_ids: bool) -> tuple[str, str]:
    """The interval method for one K's fitting points and why: `runs` (parametric bootstrap with a run effect)
    where runs give several fitting points each, `points` (bootstrap over points) where every run has one point
    or the table names no runs; `intervals` other than auto forces one (runs needs run ids)."""
    if not run_ids:
        return "points", "the table has no run_id column: each row is taken as its own run (bootstrap over points)"
    one_each = bool(s.groupby("run_id").size().max() == 1)
    if intervals == "points":
        return "points", "--intervals points: bootstrap over fitting points (treats them as independent)"
    if intervals == "runs" or not one_each:
        return "runs", (
            "parametric bootstrap: tables drawn around the law with a new effect per run and new point "
            "noise (the noise model estimated from the residuals by run), each refitted"
        )
    return "points", "one fitting point per run: the bootstrap over points resamples runs"


def unfittable(s: pd.DataFrame) -> str | None:
    """Why fitting points `s` cannot carry a joint law (< MIN_VALUES distinct N or T, < 6 points), or None."""
    few = [
        f"{axis} ({s[col].nunique()})"
        for axis, col in (("N", "n_params"), ("T", "tokens"))
        if s[col].nunique() < MIN_VALUES
    ]
    if few:
        return (
            f"the joint fit needs >= {MIN_VALUES} distinct values of N and of T (have {', '.join(few)}): with 2, "
            "E and that axis's scale and exponent have an exactly flat direction"
        )
    if len(s) < 6:
        return f"the joint fit has 5 parameters and needs >= 6 points (have {len(s)})"
    return None


def joint_law(
    s: pd.DataFrame, y: np.ndarray, n_boot: int, seed: int, intervals: str = "auto", run_ids: bool = True
) -> fit.Fit | str:
    """The joint law of one K's fitting points `s` (target values y), its noise model (analysis/noise.py), 95%
    intervals by `n_boot` refits with the method interval_method picks, and identify's flags; a string says why it
    cannot be fitted."""
    why = unfittable(s)
    if why:
        return why
    xs = [s["n_params"].to_numpy(float), s["tokens"].to_numpy(float)]
    f = fit.joint(*xs, y)
    runs, cells = s["run_id"].to_numpy(), noise.cells(s)
    resid = fit.residuals(f, xs, y)
    nz = noise.estimate(resid, runs, fit.log_jacobian(f, xs), cells)
    method, why = interval_method(s, intervals, run_ids)
    f.intervals = {"method": method, "why": why, "noise": nz.to_dict()}
    sim = None
    if n_boot and method == "runs":
        sim = fit.parametric_bootstrap(f, xs, y, runs, nz, n_boot=n_boot, seed=seed)
    elif n_boot:
        fit.bootstrap(f, xs, y, np.arange(len(s)), n_boot=n_boot, seed=seed)
    open_sides = profile.check(f, xs, y, runs, nz, method) if n_boot else {}
    point_cells = None if cells is None else np.char.add(cells.astype(str), "|" + s["tokens"].astype(str).to_numpy())
    f.lack_of_fit = lack_of_fit.test(resid, xs, len(f._theta), point_cells, sim)
    fit.identify(f, xs)
    for name, why in open_sides.items():
        f.unidentified.setdefault(name, why)
    if method == "runs" and not nz.identified:
        for name in ("E", "A", "alpha"):  # the first reason: no interval of theirs can be trusted
            f.unidentified[name] = (
                f"the run-to-run noise is not identified ({nz.runs} runs, {nz.run_dof:.2g} degrees of freedom "
                "between runs after the law's N terms): replicate seeds (grid `replicates:`) would measure it"
            )
    elif method == "runs" and nz.run_dof < WEAK_RUN_DOF:
        f.intervals["warning"] = (
            f"the run-to-run noise rests on {nz.run_dof:.2g} degrees of freedom: the intervals "
            "of E, A and alpha are wide; replicate seeds (grid `replicates:`) would narrow them"
        )
    return f


def _single(s: pd.DataFrame, y: np.ndarray, axis: str, by: str) -> dict:
    """The law in `axis` for each value of `by` with >= 4 values of `axis` (all fitted at once); the others are
    counted once under 'skipped' (a table with hundreds of slices gets one line, not hundreds)."""
    out, skipped, slices = {}, 0, []
    for value, g in s.assign(y=y).groupby(by):
        if g[axis].nunique() < 4:
            skipped += 1
            continue
        slices.append((value, g))
    laws = fit.power_laws([(g[axis].to_numpy(float), g["y"].to_numpy()) for _, g in slices]) if slices else []
    for (value, g), law in zip(slices, laws):
        entry = law.to_dict()
        entry["residual_dof"] = len(g) - 3
        if len(g) - 3 < 2:
            entry["note"] = (
                f"{len(g) - 3} residual degree of freedom for 3 parameters: no interval or flag can "
                "be given; a description of these points, not a law to extrapolate"
            )
        out[str(value)] = entry
    if skipped:
        out["skipped"] = f"{skipped} value(s) of {by} with < 4 values of {axis} (a 3-parameter law needs >= 4)"
    return out


def _holdout(s: pd.DataFrame, metric: str, col: str, divisor: float) -> dict:
    """The extrapolation check: laws fitted on the runs whose fitting points all lie at C <= C_max / divisor,
    refitted from scratch, and their relative error on the other runs' points. Whole runs are held out: a run's
    early branch ends share its trunk and seed with its late ones, so training on them would leak its noise."""
    cut = s["flops"].max() / divisor
    held = set(s.loc[s["flops"] > cut, "run_id"])
    test, train = s[s["run_id"].isin(held)], s[~s["run_id"].isin(held)]
    out = {
        "c_max_fit": float(cut),
        "fit_points": len(train),
        "heldout_points": len(test),
        "fit_runs": int(train["run_id"].nunique()),
        "heldout_runs": len(held),
    }
    if len(test) == 0:
        return {**out, "skipped": "no run above the cut"}
    y = to_target(metric, train[col])
    why = unfittable(train)
    if why is None:
        j = fit.joint(train["n_params"].to_numpy(float), train["tokens"].to_numpy(float), y)
        pred = from_target(metric, fit.predict_joint(j.params, test["n_params"], test["tokens"]))
        out["joint_rel_error"] = fit.relative_error(pred, test[col])
        out["joint_predictions"] = {
            "run_id": test["run_id"].tolist(),
            "predicted": pred.tolist(),
            "observed": test[col].tolist(),
        }
    else:
        out["joint_skipped"] = f"the {out['fit_runs']} runs wholly below the cut: {why}"
    if len(train) >= 4:
        pl = fit.power_law(train["flops"].to_numpy(float), y)
        pred_c = from_target(metric, fit.predict_power_law(pl.params, test["flops"]))
        out["power_law_c_rel_error"] = fit.relative_error(pred_c, test[col])
        if metric == "ndcg@5":  # the same object as the power law: the fitting points' metric against C
            sg = fit.sigmoid(np.log(train["flops"]), train[col])
            out["sigmoid_c_rel_error"] = fit.relative_error(
                fit.predict_sigmoid(sg.params, np.log(test["flops"])), test[col]
            )
    return out


def _frontier(every: pd.DataFrame, metric: str, col: str) -> dict:
    """The Pareto envelope of (C, metric) over every evaluation row, and for NDCG@5 the SRT paper's frontier form
    (a sigmoid in ln C) fitted to it."""
    env = frontier.pareto(every, col, LOWER_IS_BETTER[metric])
    out = {"column": col, "flops": env["flops"].tolist(), "values": env[col].tolist()}
    if metric == "ndcg@5" and len(env) >= 4:
        log_c, values = np.log(env["flops"].to_numpy(float)), env[col].to_numpy(float)
        sg = fit.sigmoid(log_c, values)
        out["sigmoid_ln_c"] = {**sg.to_dict(), "asymptote": fit.sigmoid_asymptote(log_c, values, sg)}
    return out


FAMILY = ("loss.sampler", "loss.shared_negatives")  # sampled negatives of different families obey different laws


def _mixed_families(final: pd.DataFrame) -> str | None:
    """Why the sampled rows cannot share one law in K: they mix samplers or batch-shared and per-target negatives
    (the full softmax has neither); None when they do not (or the table does not say)."""
    sampled = final[final["negatives"].astype(str) != "full"]
    cols = [c for c in FAMILY if c in sampled.columns]
    families = sampled[cols].astype(str).drop_duplicates() if cols else sampled.iloc[:0]
    if len(families) <= 1:
        return None
    names = "; ".join(", ".join(f"{c} = {v}" for c, v in row.items()) for _, row in families.iterrows())
    return f"the sampled rows mix negative families ({names}); fit each family's rows (with the full softmax) apart"


def fit_table(
    table: pd.DataFrame, n_boot: int = 1000, holdout_divisor: float = 10.0, seed: int = 0, intervals: str = "auto"
) -> dict:
    """Every law of the table's fitting points, for the split its Spec names (analysis.table.describe); the joint
    laws' intervals by `intervals` (harness.core.schema.INTERVALS, interval_method)."""
    info = describe(table)
    run_ids = not any(a.startswith("no run_id") for a in info.get("assumed", []))
    split = info["split"]
    data, summary = usable(table, split)
    final = points(data)
    result = {
        "split": split,
        "table": info,
        "summary": summary,
        "targets": TARGETS,
        "n_boot": n_boot,
        "holdout_divisor": holdout_divisor,
        "intervals": intervals,
        "metrics": {},
        "messages": [],
    }
    if summary["nan_rows"]:
        result["messages"].append(
            f"{summary['nan_rows']} fitting points excluded: a non-finite {split} metric or "
            f"N, T, C <= 0 ({summary['nan_runs']} runs left with no fitting point)"
        )
    if final.empty:
        result["messages"].append("no finished run with finite metrics: nothing to fit")
        return result
    k = frontier.kappa(final)
    result["kappa"] = k
    result["cost"] = fit_cost(final)
    result["sampled"] = optimum.sampled(final)
    result["conventions"] = conventions.of(info, final, split)
    budgets = np.geomspace(final["flops"].min(), 10 * final["flops"].max(), BUDGETS)
    grid = optimum.n_grid(result["cost"])
    in_k, mixed = final["negatives"].astype(str).nunique() >= 3, _mixed_families(final)  # a law in K needs >= 3 K
    planted = capacity(final, split)
    if planted:
        result["capacity"] = planted
    for metric in METRICS:
        col = f"{split}_{metric}"
        if col not in final.columns:
            result["messages"].append(f"no column {col}: {metric} not fitted")
            continue
        per_k = {}
        for k_index, negatives in enumerate(k_order(final["negatives"])):
            s = final[final["negatives"].astype(str) == negatives]
            y = to_target(metric, s[col])
            entry = {
                "points": len(s),
                "n_values": sorted(s["n_params"].unique().tolist()),
                "t_values": sorted(s["tokens"].unique().tolist()),
            }
            j = joint_law(s, y, n_boot, seed + k_index, intervals, run_ids)  # independent draws per K
            if isinstance(j, str):
                entry["joint"] = {"skipped": j}
                result["messages"].append(f"{metric}, K={negatives}: {j}")
            else:
                entry["joint"] = j.to_dict()
                cf = frontier.closed_form(j.params, k)
                if getattr(j, "samples", None):
                    exps = [frontier.closed_form(p, k)["n_opt_exponent"] for p in j.samples]
                    cf["n_opt_exponent_ci95"] = [float(np.percentile(exps, 2.5)), float(np.percentile(exps, 97.5))]
                entry["closed_form"] = cf
                oracle_col = f"oracle_{split}_{metric}"
                if oracle_col in s.columns and s[oracle_col].notna().any():
                    floor = float(to_target(metric, s[oracle_col].mean()))
                    ci = j.ci.get("E")
                    entry["oracle_floor"] = {
                        "target": floor,
                        "E": j.params["E"],
                        "rel_error": j.params["E"] / floor - 1,
                        "in_ci": bool(ci and ci[0] <= floor <= ci[1]),
                    }
            entry["by_n_at_t"] = _single(s, y, "n_params", "tokens")
            entry["by_t_at_n"] = _single(s, y, "tokens", "n_params")
            if len(s) >= 4:
                entry["vs_flops"] = fit.power_law(s["flops"].to_numpy(float), y).to_dict()
            every = data[data["negatives"].astype(str) == negatives]
            curve_col = f"valid_{metric}" if f"valid_{metric}" in every.columns else col  # model selection on valid
            entry["frontier"] = _frontier(every, metric, curve_col)
            entry["isoflop"] = {
                "column": curve_col,
                **frontier.isoflop(every, to_target(metric, every[curve_col]), seed=seed + k_index),
            }
            entry["extrapolation"] = _holdout(s, metric, col, holdout_divisor)
            per_k[str(negatives)] = entry
        result["metrics"][metric] = per_k
        if in_k and mixed:
            result["messages"].append(f"{metric}: no joint law in K: {mixed}")
        elif in_k:
            result.setdefault("negatives", {})[metric] = fit_negatives(
                final,
                to_target(metric, final[col]),
                final[col].to_numpy(float),
                lambda y, m=metric: from_target(m, y),
                n_boot=min(n_boot, NEGATIVES_BOOT),
                seed=seed,
            )
    for metric, per_k in result["metrics"].items():  # approach 3, priced by the cost model
        for negatives, entry in per_k.items():
            if law := optimum.per_k(result, metric, negatives):
                entry["allocation"] = optimum.curve(law, result["cost"], budgets, grid, result)
    if any("params" in e.get("joint", {}) for e in result["metrics"].get(optimum.DECISIVE, {}).values()):
        result["optimum"] = optimum.over_budgets(result, budgets)
    return result
