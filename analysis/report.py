"""report.md: data summary, oracle ceiling, fit tables with 95% intervals, held-out errors, compute-optimal
exponents from both approaches, which NDCG@5 form extrapolates better, and every figure that exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import lack_of_fit, laws, plots
from analysis.plots import label
from analysis.table import TARGETS, annealed_points, points, usable
from harness.core.io import write_json, write_text


def _num(x) -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.4g}"


def _count(x: float) -> str:
    """A parameter or target count: with thousands separators when it is a whole number below 10^7, else to 4
    significant digits (a table from elsewhere may hold N = 57334197.40687078)."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e7 else f"{x:.4g}"


def _param_rows(law: dict) -> list[str]:
    flags = law.get("unidentified", {})
    rows = []
    for name, value in law["params"].items():
        lo, hi = law.get("ci95", {}).get(name, (None, None))
        note = f" (not identified: {flags[name]})" if name in flags else ""
        rows.append(f"| {name} | {_num(value)}{note} | {_num(lo)} – {_num(hi)} |")
    return rows


def _points_kind(table: pd.DataFrame) -> str:
    if annealed_points(table):
        branches = int((table["annealed"] & ~table["final"]).sum())
        return f"annealed rows: {int(table['annealed'].sum())}, of which {branches} cooldown-branch ends"
    return "final rows"


def _capacity_lines(fits: dict) -> list[str]:
    """The planted capacity curve beside the trained runs (fits.json `capacity`), and its exponent beside alpha."""
    cap = fits.get("capacity")
    if not cap:
        return []
    ks = sorted({k for w in cap["widths"] for k in w["trained"]})
    lines = [
        "## Capacity oracle (planted)",
        "",
        "The best rank-d model of this world (the exact law's top d singular directions, its best temperature) "
        f"against the trained runs' best ln({cap['split']} perplexity) over their fitting points; "
        f"the floor E = ln(exact perplexity) = {cap['floor']:.4f}.",
        "",
        "| d | N | planted L*(d) | " + " | ".join(f"trained, K = {k}" for k in ks) + " |",
        "|---|---|---|" + "---|" * len(ks),
    ]
    for w in cap["widths"]:
        lines.append(
            f"| {w['d_model']} | {_count(w['n_params'])} | {w['planted']:.4f} | "
            + " | ".join(_num(w["trained"].get(k)) for k in ks)
            + " |"
        )
    if "gap_exponent_vs_n" in cap:
        alphas = ", ".join(
            f"K = {k}: {_num(e['joint']['params']['alpha'])}"
            for k, e in fits["metrics"].get("ppl", {}).items()
            if "params" in e.get("joint", {})
        )
        lines += [
            "",
            f"The planted gap L*(d) - E falls as N^-{cap['gap_exponent_vs_n']:.3f} over these widths "
            f"(d^-{cap['gap_exponent_vs_d']:.3f}); the joint perplexity law's fitted alpha: {alphas or '–'}.",
        ]
    return lines + [""]


def _negatives_lines(fits: dict) -> list[str]:
    """The joint laws in (N, T, K) (fits.json `negatives`): every form's held-out errors, the selected one's
    parameters."""
    if not fits.get("negatives"):
        return []
    lines = ["## Negatives as an axis: joint laws in (N, T, K)", ""]
    for metric, neg in fits["negatives"].items():
        lines += [
            f"### {label(fits, metric, fits['split'])}",
            "",
            f"K values {', '.join(f'{k:g}' for k in neg['k_values'])}; the reference K_ref is {neg['reference']}.",
            "",
            "| form | rms log residual | held-out error, leave one K out | leave one run out |",
            "|---|---|---|---|",
        ]
        for name, f in neg["forms"].items():
            mark = " (selected)" if name == neg["selected"] else ""
            k_out = f["heldout"].get("leave_one_k_out")
            lines.append(
                f"| {name}{mark}: `{f['formula']}` | {f['rms_log']:.2%} | "
                f"{'–' if k_out is None else f'{k_out:.2%}'} | {f['heldout']['leave_one_run_out']:.2%} |"
            )
        skipped = next(iter(neg["forms"].values()))["heldout"].get("leave_one_k_out_skipped")
        if skipped:
            lines += ["", f"Leave one K out not made: {skipped}; the form is selected by leave one run out."]
        lines += [
            "",
            f"The selected form, {neg['selected']}:",
            "",
            "| parameter | value | 95% CI |",
            "|---|---|---|",
            *_param_rows(neg["forms"][neg["selected"]]),
            "",
            *_k_moves(fits, metric),
        ]
    return lines


def _cost_lines(fits: dict) -> list[str]:
    """The cost per target in (N, K) that approach 3 and the optimum price runs with (fits.json `cost`)."""
    cost = fits.get("cost")
    if not cost:
        return []
    lin = cost["linear"]
    return [
        "## Cost per target",
        "",
        "Approach 3 and the compute-optimal (N, T, K) price a run by the table's own training FLOPs per target at "
        "each (N, K), interpolated linearly in N (analysis/cost.py). In one line, C/T ≈ a N + b_K with a = "
        f"{lin['a']:.3g} and "
        + ", ".join(f"b_{k} = {v:.3g}" for k, v in lin["b"].items())
        + f" (largest relative error over the table's points {lin['max_rel_error']:.1%}).",
        "",
    ]


def _k_moves(fits: dict, metric: str) -> list[str]:
    """Which parameters of the per-K joint laws K moves: those whose 95% intervals at two K values do not overlap."""
    laws = {k: e["joint"] for k, e in fits["metrics"].get(metric, {}).items() if e.get("joint", {}).get("ci95")}
    if len(laws) < 2:
        return []
    moved = []
    for name in ("E", "A", "alpha", "B", "beta"):
        cis = {k: j["ci95"][name] for k, j in laws.items()}
        if max(lo for lo, _ in cis.values()) > min(hi for _, hi in cis.values()):
            values = ", ".join(f"K = {k}: {_num(j['params'][name])}" for k, j in laws.items())
            moved.append(f"{name} ({values})")
    return [
        "Across the per-K joint laws, K moves "
        + ("; ".join(moved) if moved else "none of E, A, alpha, B, beta")
        + " (a parameter moves where two K values' 95% intervals do not overlap).",
        "",
    ]


def _beyond(decades: dict, col: str) -> str:
    """' (+1.2 dec)' for a value that many decades beyond the sampled range of `col`, '' inside it."""
    d = decades.get(col, 0.0)
    return f" ({d:+.2g} dec)" if d else ""


def _optimum_lines(fits: dict) -> list[str]:
    """The compute-optimal (N, T, K) over the budgets of fits.json `optimum`, with intervals."""
    o = fits.get("optimum")
    if not o:
        return []

    def ci(x, fmt="{:.3g}"):
        return f"{fmt.format(x[0])} – {fmt.format(x[1])}" if x else "–"

    lines = [
        "## Compute-optimal (N, T, K)",
        "",
        f"From {o['law']} and the cost per target, at budgets from the table's smallest C to 10x its largest "
        "(95% bootstrap intervals; a K interval is over K as a number, full = n_items - 1):",
        "",
        "| C (FLOPs) | K* | 95% CI of K* | N_opt | 95% CI | T_opt | 95% CI | negatives' cost share | "
        "predicted perplexity |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, c in enumerate(o["flops"]):
        share = o["negatives_share"][i]
        ex = (o.get("extrapolation") or [{}] * len(o["flops"]))[i]
        d = ex.get("decades", {})
        lines.append(
            f"| {c:.3g} | {o['negatives'][i]} | {ci(o['negatives_ci95'][i])} | {o['n_params'][i]:.3g}"
            + (" (edge)" if o["edge"][i] else "")
            + _beyond(d, "n_params")
            + f" | {ci(o['n_params_ci95'][i])} | "
            f"{o['tokens'][i]:.3g}{_beyond(d, 'tokens')} | "
            f"{ci(o['tokens_ci95'][i])} | {'–' if share is None else f'{share:.0%}'} | {_num(o['ppl'][i])} |"
        )
    n_out = sum(bool(e.get("extrapolated")) for e in o.get("extrapolation") or [])
    edge = [e for e in o.get("edge_refits") or [] if e and e >= 5e-4]
    lines += [
        "",
        f"{n_out} of {len(o['flops'])} budgets put N_opt or T_opt outside the N and T ranges the fitting "
        "points sample (marked in decades beyond them): those rows are extrapolations of the law, not "
        "measurements.",
    ]
    if edge:
        lines.append(
            f"Bootstrap refits with no optimum inside the searched N grid (its edge) are left out of the "
            f"intervals: up to {max(edge):.1%} of them at a budget."
        )
    return lines + [""]


def _noise_text(nz: dict) -> str:
    """A noise model (analysis.noise.Noise.to_dict) in words."""
    rep = (
        f"; {nz['replicate_runs']} replicate runs give a pure-error run sd of {_num(nz['replicate_run'])} on "
        f"{nz['replicate_dof']} dof"
        if nz.get("replicate_runs")
        else "; no replicate runs"
    )
    run = (
        f"run sd {nz['run']:.3g} ({nz['run_dof']:.2g} dof)"
        if nz["identified"]
        else f"run sd not identified ({nz['run_dof']:.2g} dof)"
    )
    return (
        f"point sd {nz['point']:.3g} ({nz['point_dof']:.3g} dof), {run} of ln(target), from {nz['runs']} runs and "
        f"{nz['points']} points{rep}"
    )


def _profile_text(intervals: dict) -> str:
    """The profile-likelihood cross-check in words, naming the exponents where it disagrees with the bootstrap."""
    pr = intervals.get("profile")
    if not pr:
        return ""
    ends = "; ".join(
        f"{name} {_num(v['ci95'][0]) if v['ci95'][0] is not None else 'open'} – "
        f"{_num(v['ci95'][1]) if v['ci95'][1] is not None else 'open'} ({v['dof']:.2g} dof)"
        for name, v in pr.items()
    )
    flag = (
        f" **The profile disagrees with the bootstrap for {', '.join(intervals['profile_disagrees'])}**."
        if intervals.get("profile_disagrees")
        else ""
    )
    widened = (
        f" **The profile of {', '.join(intervals['profile_widened'])} stays open: the interval reported is "
        "widened to the exponents' box and the exponent flagged not identified.**"
        if intervals.get("profile_widened")
        else ""
    )
    return f" Profile-likelihood cross-check: {ends}.{flag}{widened}"


def _claims_lines(fits: dict) -> list[str]:
    """The report's first section: how each joint law's intervals were made, the noise model they rest on, and
    whether the law's lack-of-fit test rejects it (the intervals are then conditional on a rejected law)."""
    rows = []
    for metric, per_k in fits["metrics"].items():
        for k, e in per_k.items():
            j = e.get("joint", {})
            if "params" not in j or "intervals" not in j:
                continue
            lof = j.get("lack_of_fit") or {}
            tests = ", ".join(f"{name} p = {t['p']:.2g}" for name, t in lof.get("tests", {}).items()) or "none"
            verdict = f"**{lack_of_fit.sentence(lof)}**" if lof.get("rejects") else f"not rejected ({tests})"
            rows.append(
                f"- {metric}, K = {k}: {j['intervals']['method']} method; {_noise_text(j['intervals']['noise'])}. "
                f"Lack of fit: {verdict}."
                + (f" {j['intervals']['warning']}." if "warning" in j["intervals"] else "")
                + _profile_text(j["intervals"])
            )
    if not rows:
        return []
    methods = {
        j["joint"]["intervals"]["why"]
        for per_k in fits["metrics"].values()
        for j in per_k.values()
        if "intervals" in j.get("joint", {})
    }
    return [
        "## Intervals and lack of fit",
        "",
        "95% intervals: " + "; ".join(sorted(methods)) + f" ({fits['n_boot']} refits each).",
        "",
        *rows,
        "",
    ]


def _split_word(column: str) -> str:
    """'validation' for a valid_* column, else the column's split prefix (test_*: 'test')."""
    prefix = column.split("_", 1)[0]
    return "validation" if prefix == "valid" else prefix


def _asymptote_text(a: dict) -> str:
    """The sigmoid's asymptote, or why it is not a claim (fit.sigmoid_asymptote)."""
    if a["bounded"]:
        return (
            f"NDCG@5 -> {a['value']:.4g} as C grows (the data reject an asymptote of {a['bound']:g}: "
            f"F = {a['f']:.3g}, p = {a['p']:.2g})."
        )
    why = a.get("why") or (f"holding it at {a['bound']:g} fits as well: F = {a['f']:.3g}, p = {a['p']:.2g}")
    return (
        f"its asymptote ({a['value']:.4g}) is **not bounded by these data** ({why}): the envelope has not "
        "saturated, and no ceiling can be read from it."
    )


def _sensitive(e: dict, key: str, which: int) -> str:
    """One value of the N-convention check, marked when its fit's alpha sits on the box's edge."""
    at_bound = e.get("alpha_at_bound", [False, False])[which]
    return f"{e[key][which]:.3g}" + (" (bound)" if at_bound else "")


def _conventions_lines(conv: dict | None) -> list[str]:
    """Which N and C the laws use, and alpha and the N_opt exponent refitted on the other N."""
    if not conv:
        return []
    text = f"- N = `{conv['n']}` ({conv['n_means']}); C = `flops` ({conv['flops_means']})."
    sens = conv.get("sensitivity")
    if sens and sens["laws"]:
        text += f" Refitted on N = `{sens['other_n']}` (point estimates, this fit's first): " + "; ".join(
            f"{metric} K={k}: alpha {_sensitive(e, 'alpha', 0)} vs {_sensitive(e, 'alpha', 1)}, N_opt exponent "
            f"{_sensitive(e, 'n_opt_exponent', 0)} vs {_sensitive(e, 'n_opt_exponent', 1)}"
            for metric, per_k in sens["laws"].items()
            for k, e in per_k.items()
        )
        text += "."
        bound = [e for per_k in sens["laws"].values() for e in per_k.values() if any(e.get("alpha_at_bound", []))]
        if bound:
            d = bound[0]["n_decades"]
            text += (
                " A value marked (bound) is the exponent box's edge, not an estimate: that N does not pin alpha "
                f"(N spans {d[0]:.2f} decades, `{sens['other_n']}` {d[1]:.2f})."
            )
    return [text]


def render(table: pd.DataFrame, fits: dict, figures: list[Path], out: Path) -> str:
    s = fits["summary"]
    final = points(table)
    lines = [
        "# Scaling study report",
        "",
        *_claims_lines(fits),
        "## Data",
        "",
        f"- {s['runs']} runs in the table, {s['done']} finished; excluded: "
        + (", ".join(f"{n} {k}" for k, n in s["excluded"].items()) or "none")
        + f"; {s['nan_rows']} fitting points with a non-finite metric or N, T, C <= 0 excluded"
        + (f" ({s['nan_runs']} runs left with none, dropped)" if s.get("nan_runs") else "")
        + ".",
        f"- Fitting points ({_points_kind(table)}): N from {_count(final['n_params'].min())} to "
        f"{_count(final['n_params'].max())}; T from {_count(final['tokens'].min())} to "
        f"{_count(final['tokens'].max())}; K in {{{', '.join(sorted(table['negatives'].astype(str).unique()))}}}; "
        f"C from {final['flops'].min():.3g} to {final['flops'].max():.3g} FLOPs "
        f"(C / (N T) = {fits.get('kappa', float('nan')):.3g} FLOPs per parameter per target).",
        f"- The laws are fitted to the fitting points' {fits['split']} metrics (Approach 2's IsoFLOP minima and "
        "the Pareto frontier select models, on validation metrics where the table has them); targets are loss-like: "
        + "; ".join(f"{m} as {t}" for m, t in TARGETS.items())
        + f". Intervals: {fits['n_boot']} refits "
        "each (methods in the first section).",
    ]
    lines += _conventions_lines(fits.get("conventions"))
    info = fits.get("table") or {}
    if info.get("columns") or info.get("assumed"):
        lines.append(
            "- Table read with "
            + (
                ", ".join(f"{name} = `{source}`" for name, source in info.get("columns", {}).items())
                or "the contract's column names"
            )
            + (f"; assumed: {'; '.join(info['assumed'])}" if info.get("assumed") else "")
            + "."
        )
    if info.get("duplicates_dropped"):
        lines.append(f"- Duplicate rows dropped (`--duplicates keep-first`): {info['duplicates_dropped']}.")
    if info.get("excluded_values"):
        lines.append(
            "- Rows excluded for impossible values (`--bad-values exclude`): "
            + ", ".join(f"{n} in `{col}`" for col, n in info["excluded_values"].items())
            + "."
        )
    lines.append("")
    oracle = [c for c in table.columns if c.startswith("oracle_test_")]
    if oracle:
        o = table[oracle].mean()
        lines += [
            "## Oracle ceiling (synthetic world)",
            "",
            "The generator's true next-item distribution gives test NDCG@5 = "
            f"{o.get('oracle_test_ndcg@5', float('nan')):.4f} and test perplexity = "
            f"{o.get('oracle_test_ppl', float('nan')):.2f}; the best run here reached "
            f"NDCG@5 = {table['test_ndcg@5'].max():.4f} and perplexity = {table['test_ppl'].min():.2f}.",
            "",
        ]
    lines += _capacity_lines(fits)
    lines += _cost_lines(fits)
    for metric, per_k in fits["metrics"].items():
        lines += [f"## {label(fits, metric, fits['split'])}", ""]
        for k, e in per_k.items():
            lines += [f"### K = {k} ({e['points']} fitting points)", ""]
            j = e["joint"]
            if "params" in j:
                nz = j.get("intervals", {}).get("noise")
                noise_sd = f" (noise model: point sd {nz['point']:.2%}, run sd {nz['run']:.2%})" if nz else ""
                lines += [
                    f"Joint fit `{TARGETS[metric]} = {j['form']}`: rms log residual {j['rms_log']:.2%}"
                    f"{noise_sd}, L-BFGS "
                    f"{'converged' if j['converged'] else 'did NOT converge'}, {j['n_points']} points"
                    + (
                        f"; {100 * j['bootstrap_converged']:.0f}% of the bootstrap refits converged"
                        if j.get("bootstrap_converged") is not None
                        else ""
                    )
                    + ".",
                    "",
                    "| parameter | value | 95% CI |",
                    "|---|---|---|",
                    *_param_rows(j),
                    "",
                ]
                fl = e.get("oracle_floor")
                if fl:
                    lines += [
                        f"The floor E = {_num(fl['E'])} against the oracle's {TARGETS[metric]} = "
                        f"{_num(fl['target'])} on the same users: {fl['rel_error']:+.1%}; the 95% CI "
                        f"{'contains' if fl['in_ci'] else 'does not contain'} it.",
                        "",
                    ]
            else:
                lines += [f"Joint fit: {j['skipped']}.", ""]
            cf, iso, al = e.get("closed_form"), e.get("isoflop", {}), e.get("allocation")
            if al:
                ci = al.get("n_opt_exponent_ci95")
                lines.append(
                    f"- Approach 3 (the joint law, each run priced by the table's cost per target): N_opt ∝ "
                    f"C^{al['n_opt_exponent']:.3f}"
                    + (f" (95% CI {ci[0]:.3f} – {ci[1]:.3f})" if ci else "")
                    + f" over C = {al['flops'][0]:.3g} – {al['flops'][-1]:.3g}; N_opt = "
                    f"{_count(round(al['n_opt'][-1]))} at the largest"
                    + (" (on the searched N range's edge)" if al["edge"][-1] else "")
                    + f". Under C = {cf['kappa']:.3g} N T the closed form's exponent is "
                    f"{cf['n_opt_exponent']:.3f}."
                )
            if "n_opt_exponent" in iso:
                ci2 = iso.get("n_opt_exponent_ci95")
                inside = sum(c["n_opt"] is not None for c in iso["curves"])
                lines.append(
                    f"- Approach 2 (IsoFLOP minima of {_split_word(iso.get('column', ''))} {metric}, model "
                    f"selection; {inside} of {len(iso['curves'])} budgets have their "
                    f"minimum inside their N range): N_opt ∝ C^{iso['n_opt_exponent']:.3f}"
                    + (
                        f" (95% CI {ci2[0]:.3f} – {ci2[1]:.3f}, {iso['bootstrap']['resamples']} resamples "
                        f"of runs through the whole pipeline, {iso['bootstrap']['with_slope']} giving a slope)"
                        if ci2
                        else f" ({iso['interval_note']})"
                        if iso.get("interval_note")
                        else ""
                    )
                    + ", "
                    f"T_opt ∝ C^{iso['t_opt_exponent']:.3f}"
                    + (
                        f"; disagreement with approach 3 on the N_opt exponent: "
                        f"{iso['n_opt_exponent'] - al['n_opt_exponent']:+.3f}."
                        if al
                        else "."
                    )
                )
            else:
                lines.append(f"- Approach 2 (IsoFLOP minima): {iso.get('skipped') or iso.get('note')}.")
            ex = e.get("extrapolation", {})
            parts = []
            for key, name in (
                ("joint_rel_error", "joint law"),
                ("power_law_c_rel_error", "power law in C"),
                ("sigmoid_c_rel_error", "sigmoid in ln C"),
            ):
                if key in ex:
                    parts.append(f"{name} {ex[key]:.1%}")
            lines.append(
                f"- Extrapolation check (refit on the {ex.get('fit_runs', 0)} runs wholly at C <= "
                f"{ex.get('c_max_fit', float('nan')):.3g}, {ex.get('fit_points', 0)} points; predict the "
                f"{ex.get('heldout_points', 0)} points of the {ex.get('heldout_runs', 0)} runs held out whole): "
                + ("mean relative error " + ", ".join(parts) if parts else ex.get("skipped", "not possible"))
                + "."
            )
            if metric == "ndcg@5" and "power_law_c_rel_error" in ex and "sigmoid_c_rel_error" in ex:
                better = (
                    "the sigmoid in ln C"
                    if ex["sigmoid_c_rel_error"] < ex["power_law_c_rel_error"]
                    else "the power law on 1 - NDCG@5"
                )
                lines.append(f"- NDCG@5 form: {better} extrapolates better here (held-out error above).")
            sg = e.get("frontier", {}).get("sigmoid_ln_c")
            if sg:
                lines.append(
                    f"- Frontier: the SRT paper's sigmoid in ln C fitted to the Pareto envelope of "
                    f"{len(e['frontier']['flops'])} evaluations of {_split_word(e['frontier']['column'])} {metric} "
                    f"(R² {sg['r2']:.3f}), half-way at "
                    f"C = {np.exp(sg['params']['c0']):.3g}; " + _asymptote_text(sg["asymptote"])
                )
            lines.append("")
    lines += _negatives_lines(fits)
    lines += _optimum_lines(fits)
    if fits.get("messages"):
        lines += ["## Fits not possible", "", *[f"- {m}" for m in fits["messages"]], ""]
    lines += ["## Figures", ""]
    for fig in figures:
        rel = fig.relative_to(out) if fig.is_relative_to(out) else fig
        lines += [f"![{fig.stem}]({rel.as_posix()})", f"*{fig.stem}* (PDF beside it)", ""]
    return "\n".join(lines)


def write(
    table: pd.DataFrame,
    out: str | Path,
    fits: dict | None = None,
    n_boot: int = 1000,
    holdout_divisor: float = 10.0,
    what: str = "report",
    intervals: str = "auto",
) -> dict:
    """fits.json (what='fit'), + figures (what='plot'), + report.md (what='report') under `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if fits is None:
        fits = laws.fit_table(table, n_boot=n_boot, holdout_divisor=holdout_divisor, intervals=intervals)
        write_json(out / "fits.json", fits)
    if what in ("plot", "report"):
        rows, _ = usable(table, fits["split"])
        figures = plots.plot_all(rows, fits, out / "figures") if not points(rows).empty else []
        if what == "report":
            write_text(out / "report.md", render(rows if len(rows) else table, fits, figures, out))
    return fits


def summary(fits: dict) -> str:
    """A few lines per metric and K: the joint law's exponents with 95% intervals and the held-out error."""
    lines = []
    for metric, per_k in fits["metrics"].items():
        for k, e in per_k.items():
            j = e["joint"]
            if "params" not in j:
                lines.append(f"{metric} K={k}: {j['skipped']}")
                continue
            ci = j.get("ci95", {})
            ex = e.get("extrapolation", {}).get("joint_rel_error")
            lines.append(
                f"{metric} K={k}: {TARGETS[metric]} = E + A/N^alpha + B/T^beta, "
                + ", ".join(
                    f"{p}={_num(v)} [{_num(ci.get(p, (None, None))[0])}, {_num(ci.get(p, (None, None))[1])}]"
                    for p, v in j["params"].items()
                )
                + f", rms log residual {j['rms_log']:.2%}"
                + (f", held-out error {ex:.1%}" if ex is not None else "")
                + "".join(f"\n  {p} not identified: {why}" for p, why in j.get("unidentified", {}).items())
                + (
                    f"\n  {lack_of_fit.sentence(j['lack_of_fit'])}"
                    if (j.get("lack_of_fit") or {}).get("rejects")
                    else ""
                )
            )
    return "\n".join(lines + fits.get("messages", []))
