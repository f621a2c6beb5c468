"""Paper-style figures from a results table and its fits (PNG + PDF each). For metric in (ppl, ndcg@5):

1. `<m>_vs_flops`: the metric over training FLOPs, one curve per run (intermediate evaluations) coloured by N,
   with the Pareto envelope (and for NDCG@5 the sigmoid in ln C fitted to it); one panel per K.
2. `<m>_vs_n` and `<m>_vs_t`: fitting points (analysis.table.points) against N (one series per T) and against T
   (one per N), with the joint fit's curves and 95% bootstrap bands.
3. `<m>_isoflop`: IsoFLOP curves with their minima; N_opt(C) and T_opt(C) with fitted exponents.
4. `<m>_negatives`: the effect of K at fixed N and T.
5. `<m>_residuals`: joint-fit residuals against log N and log T; predicted against observed with the
   extrapolation check's held-out runs marked.
6. `capacity` (worlds with a capacity oracle): the planted gap L*(d) - E and the trained runs' best gap, against N
   and against d.
7. `<m>_negatives_law` (tables with >= 3 K): the metric against K with the selected joint law in (N, T, K).
8. `optimum`: the compute-optimal (N, T, K) against C: each K's optimum beside the joint one, N_opt(C), K*(C).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import ListedColormap, LogNorm  # noqa: E402
from matplotlib.ticker import LogFormatter, NullFormatter  # noqa: E402

from analysis import cost, fit, frontier  # noqa: E402
from analysis import negatives as negatives_laws  # noqa: E402
from analysis.table import METRICS, TARGETS, from_target, k_order, points, to_target  # noqa: E402  # noqa: E402
from analysis.table import label as table_label  # noqa: E402

C_LABEL, N_LABEL, T_LABEL = "training compute C (FLOPs)", "non-embedding parameters N", "training targets T"
MAX_LEGEND = 8  # more series than this: a colour bar, no legend


def _style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def _panels(n: int, width: float = 4.2, height: float = 3.4):
    fig, axes = plt.subplots(1, n, figsize=(width * n + 0.8, height), squeeze=False, constrained_layout=True)
    return fig, list(axes[0])


class _Plain(LogFormatter):
    """Log-axis labels as plain numbers to 4 significant digits; which minor ticks get a label is LogFormatter's
    choice (only when the axis spans little)."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:.4g}"


def label(fits: dict | None, metric: str, split: str = "test") -> str:
    """Axis label from the table's own metric name, split and evaluation protocol (analysis.table.label)."""
    return table_label((fits or {}).get("table"), metric, split)


def _metric_axis(ax, metric: str, x_label: str, y_label: str) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    if metric == "ppl":
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_Plain())  # 30, 22 rather than 3 x 10^1, 2.2 x 10^1
        ax.yaxis.set_minor_formatter(_Plain(labelOnlyBase=False))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)


def _n_colors(values):
    norm = LogNorm(vmin=min(values), vmax=max(values) * 1.0001)
    return norm, plt.get_cmap("viridis")


def vs_flops(rows: pd.DataFrame, fits: dict, metric: str):
    """Figure 1: validation metric of every evaluation row of finished runs (training curves)."""
    col_valid = f"valid_{metric}" if f"valid_{metric}" in rows.columns else f"{fits.get('split', 'test')}_{metric}"
    ks = k_order(rows["negatives"])
    fig, axes = _panels(len(ks))
    norm, cmap = _n_colors(rows["n_params"])
    for ax, k in zip(axes, ks):
        s = rows[rows["negatives"] == k]
        for _, g in s.groupby("run_id"):
            g = g.sort_values("tokens")
            ax.plot(
                g["flops"], g[col_valid], color=cmap(norm(g["n_params"].iloc[0])), alpha=0.8, lw=1.2, marker="o", ms=2.5
            )
        fr = fits["metrics"].get(metric, {}).get(k, {}).get("frontier", {})
        if fr.get("flops"):  # the Pareto envelope laws.fit_table found, held to the last evaluation's C
            c_env, y_env = [*fr["flops"], s["flops"].max()], [*fr["values"], fr["values"][-1]]
            ax.step(c_env, y_env, "k--", where="post", lw=1.4, label="Pareto envelope")
        sg = fr.get("sigmoid_ln_c")
        if sg:
            c = np.geomspace(min(fr["flops"]), s["flops"].max() * 3, 100)
            ax.plot(
                c,
                fit.predict_sigmoid(sg["params"], np.log(c)),
                "-",
                color="C3",
                lw=1.6,
                label="sigmoid in ln C, fitted to the envelope",
            )
        _metric_axis(ax, metric, C_LABEL, label(fits, metric, col_valid.split("_")[0]))
        ax.set_title(f"K = {k}")
        ax.legend(loc="best", fontsize=8, frameon=True)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, label=N_LABEL)
    return fig


def _joint_of(fits: dict, metric: str, k: str) -> dict | None:
    entry = fits["metrics"].get(metric, {}).get(k, {})
    j = entry.get("joint", {})
    return j if "params" in j else None


def _band(j: dict, metric: str, n, t):
    """95% band: 2.5 and 97.5 percentiles of the bootstrap fits' predictions."""
    if not j.get("bootstrap"):
        return None
    preds = np.array([fit.predict_joint(p, n, t) for p in j["bootstrap"]])
    return from_target(metric, np.percentile(preds, 2.5, axis=0)), from_target(
        metric, np.percentile(preds, 97.5, axis=0)
    )


def vs_axis(final: pd.DataFrame, fits: dict, metric: str, axis: str, split: str = "test"):
    """Figure 2: metric against N (axis='n_params', one series per T) or T (axis='tokens', one per N)."""
    col, other = f"{split}_{metric}", "tokens" if axis == "n_params" else "n_params"
    ks = k_order(final["negatives"])
    fig, axes = _panels(len(ks))
    values = sorted(final[other].unique())
    norm = LogNorm(vmin=min(values), vmax=max(values) * 1.0001)
    full_map = sns.color_palette("rocket" if other == "tokens" else "viridis", as_cmap=True)
    cmap = ListedColormap(full_map(np.linspace(0, 0.85, 256)))  # the palette's pale end left out
    palette = [cmap(norm(v)) for v in values]
    # past MAX_LEGEND values, the fitted curves of 6 of them (spread over the range) rather than one per value
    drawn = (
        set(values)
        if len(values) <= MAX_LEGEND
        else {values[i] for i in np.linspace(0, len(values) - 1, 6).astype(int)}
    )
    for ax, k in zip(axes, ks):
        s = final[final["negatives"] == k]
        j = _joint_of(fits, metric, k)
        grid = np.geomspace(s[axis].min() / 1.3, s[axis].max() * 1.3, 60)
        for color, v in zip(palette, values):
            g = s[s[other] == v].sort_values(axis)
            series = f"{'T' if other == 'tokens' else 'N'} = {v:.3g}"
            ax.plot(g[axis], g[col], "o", color=color, label=series)
            if j and v in drawn:
                n, t = (grid, np.full_like(grid, v)) if axis == "n_params" else (np.full_like(grid, v), grid)
                ax.plot(grid, from_target(metric, fit.predict_joint(j["params"], n, t)), "-", color=color, lw=1.2)
                band = _band(j, metric, n, t)
                if band:
                    ax.fill_between(grid, *band, color=color, alpha=0.15, lw=0)
        _metric_axis(ax, metric, N_LABEL if axis == "n_params" else T_LABEL, label(fits, metric, split))
        ax.set_title(f"K = {k}" + ("" if j else " (no joint fit)"))
        if len(values) <= MAX_LEGEND:
            ax.legend(fontsize=7, loc="best", frameon=True)
    if len(values) > MAX_LEGEND:
        fig.colorbar(
            plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, label=T_LABEL if other == "tokens" else N_LABEL
        )
    return fig


def isoflop(final: pd.DataFrame, fits: dict, metric: str):
    """Figure 3: IsoFLOP curves and minima (left), N_opt(C) and T_opt(C) (right), for the largest K."""
    k = k_order(final["negatives"])[-1]
    entry = fits["metrics"].get(metric, {}).get(k, {})
    iso = entry.get("isoflop", {})
    fig, (ax1, ax2) = _panels(2)
    curves = iso.get("curves", [])
    palette = sns.color_palette("mako", max(len(curves), 1))
    for color, c in zip(palette, curves):
        n = np.exp(c["log_n"])
        ax1.plot(n, from_target(metric, np.exp(c["log_y"])), "o-", color=color, label=f"C = {c['flops']:.2g}")
        if c["n_opt"]:
            y_min = np.exp(np.interp(np.log(c["n_opt"]), c["log_n"], c["log_y"]))
            ax1.plot([c["n_opt"]], [from_target(metric, y_min)], "*", color=color, ms=11, mec="k")
    _metric_axis(ax1, metric, N_LABEL, label(fits, metric, iso.get("column", "valid_").split("_")[0]))
    ax1.set_title(f"IsoFLOP curves, K = {k}")
    if not curves:  # the reason inside the panel, wrapped: a title this long runs into the neighbouring panel
        ax1.text(
            0.5,
            0.5,
            textwrap.fill(iso.get("skipped", "no IsoFLOP curves"), 36),
            transform=ax1.transAxes,
            ha="center",
            va="center",
            fontsize=9,
        )
    if 0 < len(curves) <= MAX_LEGEND:
        ax1.legend(fontsize=7, loc="best")
    found = [c for c in curves if c["n_opt"]]
    c_grid = np.geomspace(final["flops"].min(), final["flops"].max(), 50)
    if found:
        cs, ns = np.array([c["flops"] for c in found]), np.array([c["n_opt"] for c in found])
        ax2.plot(cs, ns, "o", color="C0", label="N_opt, IsoFLOP minima")
        ax2.plot(cs, cs / cost.per_target(fits["cost"], ns, k), "s", color="C1", label="T_opt, IsoFLOP minima")
        if "n_opt_exponent" in iso:
            ax2.plot(
                c_grid,
                iso["n_opt_coef"] * c_grid ** iso["n_opt_exponent"],
                "-",
                color="C0",
                label=f"N_opt ∝ C^{iso['n_opt_exponent']:.2f} (approach 2)",
            )
            ax2.plot(
                c_grid,
                iso["t_opt_coef"] * c_grid ** iso["t_opt_exponent"],
                "-",
                color="C1",
                label=f"T_opt ∝ C^{iso['t_opt_exponent']:.2f} (approach 2)",
            )
    al = entry.get("allocation")
    if al:
        c_al = np.array(al["flops"])
        ax2.plot(c_al, al["n_opt"], "--", color="C0", label=f"N_opt ∝ C^{al['n_opt_exponent']:.2f} (approach 3)")
        ax2.plot(c_al, al["t_opt"], "--", color="C1", label="T_opt (approach 3)")
        if "n_opt_ci95" in al:
            lo, hi = np.array(al["n_opt_ci95"], float).T
            ax2.fill_between(c_al, lo, hi, color="C0", alpha=0.12, lw=0, label="N_opt 95% CI (approach 3)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel(C_LABEL)
    ax2.set_ylabel("N_opt (parameters), T_opt (targets)")
    ax2.set_title("compute-optimal allocation")
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=7, loc="best")
    else:
        ax2.text(
            0.5,
            0.5,
            "no IsoFLOP minima and no joint fit",
            transform=ax2.transAxes,
            ha="center",
            va="center",
            fontsize=9,
        )
    return fig


def negatives(final: pd.DataFrame, fits: dict, metric: str, split: str = "test"):
    """Figure 4: the metric against K at fixed N and T."""
    col = f"{split}_{metric}"
    ks = k_order(final["negatives"])
    fig, (ax,) = _panels(1, width=5.2)
    norm, cmap = _n_colors(final["n_params"])
    line_styles = ["-", "--", ":", "-."]
    styles = {t: line_styles[i % len(line_styles)] for i, t in enumerate(sorted(final["tokens"].unique()))}
    pairs = final.groupby(["n_params", "tokens"])
    for (n, t), g in pairs:
        y = g.groupby("negatives")[col].mean().reindex(ks)  # seeds and repeats at one (N, T, K): their mean
        ax.plot(range(len(ks)), y, styles[t], marker="o", color=cmap(norm(n)), label=f"N={n:.3g}, T={t:.3g}")
    ax.set_xticks(range(len(ks)), ks)
    ax.set_xlabel("negatives per target K")
    ax.set_ylabel(label(fits, metric, split))
    if metric == "ppl":
        ax.set_yscale("log")
    if pairs.ngroups <= MAX_LEGEND:
        ax.legend(fontsize=6, ncol=2, loc="best")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=N_LABEL)
    return fig


def negatives_law(final: pd.DataFrame, fits: dict, metric: str, split: str = "test"):
    """The metric against K (log axis; the full softmax at K = n_items - 1, a star) for each N, at the largest T
    (left) and the smallest (right), with the selected joint law in (N, T, K) (fits.json `negatives`) as a curve
    over K."""
    neg = fits["negatives"][metric]
    form = negatives_laws.FORMS[neg["selected"]]
    p = neg["forms"][neg["selected"]]["params"]
    k, k_ref, _ = negatives_laws.negatives_axis(final)
    fig, axes = _panels(2)
    norm, cmap = _n_colors(final["n_params"])
    grid = np.geomspace(k.min(), k_ref, 60)
    for ax, t in zip(axes, (final["tokens"].max(), final["tokens"].min())):
        at = (final["tokens"] == t).to_numpy()
        for n in sorted(final.loc[at, "n_params"].unique()):
            rows = at & (final["n_params"] == n).to_numpy()
            full = rows & (k == k_ref)
            ax.plot(k[rows & ~full], final.loc[rows & ~full, f"{split}_{metric}"], "o", color=cmap(norm(n)))
            ax.plot(k[full], final.loc[full, f"{split}_{metric}"], "*", ms=11, color=cmap(norm(n)))
            x = np.stack([np.full(len(grid), n), np.full(len(grid), t), grid], axis=1)
            ax.plot(grid, from_target(metric, form.predict(p, x, k_ref)), "-", color=cmap(norm(n)), lw=1)
        ax.set_xscale("log")
        if metric == "ppl":
            ax.set_yscale("log")
        ax.set_xlabel("negatives per target K (star: the full softmax)")
        ax.set_ylabel(label(fits, metric, split))
        ax.set_title(f"{neg['selected']} law in K, T = {t:.3g}")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, label=N_LABEL)
    return fig


def optimum(final: pd.DataFrame, fits: dict):
    """The compute-optimal (N, T, K) against C (fits.json `optimum` and each K's approach-3 `allocation`): the
    perplexity each K reaches at its own optimum beside the joint optimum's, with the fitting points' Pareto
    envelope per K (left); N_opt(C) per K and the joint one with its band (middle); K*(C) with its band (right)."""
    o = fits["optimum"]
    c = np.array(o["flops"])
    ks = k_order(fits["metrics"]["ppl"])
    colors = dict(zip(ks, sns.color_palette("viridis", len(ks))))
    fig, (ax1, ax2, ax3) = _panels(3)
    col = f"{fits.get('split', 'test')}_ppl"
    for k in ks:
        at = fits["metrics"]["ppl"][k].get("allocation")
        if not at:
            continue
        law = fits["metrics"]["ppl"][k]["joint"]["params"]
        ppl = from_target("ppl", fit.predict_joint(law, np.array(at["n_opt"]), np.array(at["t_opt"])))
        ax1.plot(at["flops"], ppl, "-", color=colors[k], lw=1.2, label=f"K = {k}, its optimum")
        env = frontier.pareto(final[final["negatives"].astype(str) == k], col, True)
        ax1.plot(env["flops"], env[col], "o", color=colors[k], ms=3.5)
        ax2.plot(at["flops"], at["n_opt"], "-", color=colors[k], lw=1.2, label=f"K = {k}")
    ax1.plot(c, o["ppl"], "k--", lw=1.6, label="joint optimum")
    ax2.plot(c, o["n_params"], "k--", lw=1.6, label="joint optimum")
    boxes = [x for x in o["n_params_ci95"] if x]
    if len(boxes) == len(c):
        lo, hi = np.array(boxes).T
        ax2.fill_between(c, lo, hi, color="k", alpha=0.12, lw=0, label="95% CI")
    numeric = np.isfinite(o["negatives_number"]).all()
    if numeric:  # K as a number (full = n_items - 1), with the bootstrap band
        ax3.plot(c, o["negatives_number"], "ko-", ms=4, label="K*")
        boxes = [x for x in o["negatives_ci95"] if x]
        if len(boxes) == len(c):
            lo, hi = np.array(boxes).T
            ax3.fill_between(c, lo, hi, color="k", alpha=0.12, lw=0, label="95% CI")
    else:  # full without n_items: K* as the table's labels
        ax3.plot(c, [ks.index(k) for k in o["negatives"]], "ko-", ms=4, label="K*")
        ax3.set_yticks(range(len(ks)), ks)
    k_axis = "K* (full = n_items - 1)" if numeric else "K*"
    for ax, title, y_label in (
        (ax1, "loss at the optimum, per K (points: runs' envelope)", label(fits, "ppl", fits.get("split", "test"))),
        (ax2, "N_opt(C)", "N_opt (parameters)"),
        (ax3, f"K*(C), {o['law']}", k_axis),
    ):
        ax.set_xscale("log")
        if ax is not ax3 or numeric:
            ax.set_yscale("log")
        ax.set_xlabel(C_LABEL)
        ax.set_ylabel(y_label)
        ax.set_title(textwrap.fill(title, 44), fontsize=9)
        ax.legend(fontsize=7, loc="best")
    return fig


def residuals(final: pd.DataFrame, fits: dict, metric: str, split: str = "test"):
    """Figure 5: joint-fit residuals against log N and log T, and the extrapolation check (largest K)."""
    col = f"{split}_{metric}"
    k = k_order(final["negatives"])[-1]
    s = final[final["negatives"] == k]
    entry = fits["metrics"].get(metric, {}).get(k, {})
    j = _joint_of(fits, metric, k)
    fig, (ax1, ax2, ax3) = _panels(3, width=3.8)
    if j:
        pred = fit.predict_joint(j["params"], s["n_params"], s["tokens"])
        r = np.log(to_target(metric, s[col])) - np.log(pred)  # the residual the fit minimised
        ax1.plot(s["n_params"], r, "o")
        ax2.plot(s["tokens"], r, "o")
    for ax, x_label in ((ax1, N_LABEL), (ax2, T_LABEL)):
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"log residual of {TARGETS[metric]}")
        ax.set_title(f"joint fit, K = {k}" if j else "no joint fit")
    ex = entry.get("extrapolation", {}).get("joint_predictions")
    if ex:
        ax3.plot(ex["observed"], ex["predicted"], "D", color="C3", label="held out (C > C_max/10)")
        lo = min(ex["observed"] + ex["predicted"])
        hi = max(ex["observed"] + ex["predicted"])
        ax3.plot([lo, hi], [lo, hi], "k:", lw=1, label="y = x")
        ax3.legend(fontsize=7)
    short = label(fits, metric, split).rsplit(" (", 1)[0]  # without the protocol: the panel is narrow
    ax3.set_xlabel(f"observed {short}")
    ax3.set_ylabel(f"predicted {short}")
    ax3.set_title("extrapolation check" + ("" if ex else ": not possible"))
    return fig


def capacity(fits: dict):
    """The planted capacity gap L*(d) - E and the trained runs' best gap per K, against N and against d."""
    cap = fits["capacity"]
    fig, axes = _panels(2)
    for ax, axis, x_label in zip(axes, ("n_params", "d_model"), (N_LABEL, "width d (d_model)")):
        x = [w[axis] for w in cap["widths"]]
        ax.plot(x, [w["planted"] - cap["floor"] for w in cap["widths"]], "k-o", label="capacity oracle L*(d) - E")
        for i, k in enumerate(k_order({k for w in cap["widths"] for k in w["trained"]})):
            pts = [(w[axis], w["trained"][k] - cap["floor"]) for w in cap["widths"] if k in w["trained"]]
            ax.plot(*zip(*pts), "s--", color=f"C{i}", label=f"trained, K = {k}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        if axis == "d_model":  # the widths themselves as ticks
            ax.set_xticks(x, [str(int(v)) for v in x])
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"ln({cap['split']} perplexity) - E (nats)")
        ax.set_title(f"capacity oracle vs trained, against {'N' if axis == 'n_params' else 'd'}")
        ax.legend(fontsize=7)
    return fig


def adaptive(summary: dict):
    """An adaptive study's path (harness/study/adaptive.py summary.json): each target component's 95% interval width
    (the
    design's bootstrap) against the FLOPs spent, one point per round (0 = the seed design)."""
    _style()
    history = summary["history"]
    names = list(history[0]["widths"])
    fig, axes = _panels(len(names), width=3.8)
    flops = [h["flops_spent"] for h in history]
    for ax, name in zip(axes, names):
        ax.plot(flops, [h["widths"][name] for h in history], "o-", color="C3")
        for h in history:
            ax.annotate(
                str(h["round"]),
                (h["flops_spent"], h["widths"][name]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="FLOPs spent (branches included)",
            ylabel="95% interval width",
            title=f"{name} by round",
        )
        ax.xaxis.set_major_formatter(_Plain())
        ax.yaxis.set_major_formatter(_Plain())
    return fig


def compare(a, b, metric: str, ks: list[str], result: dict):
    """`srt-scale compare`'s figure: both studies' joint laws against N at the largest T both reach (T_ref), with
    their 95% bands and each study's fitting points within 10% of T_ref; one panel per K. a, b:
    analysis.compare.Study."""
    _style()
    fig, axes = _panels(len(ks))
    for ax, k in zip(axes, ks):
        (sa, _), (sb, _) = a.slice(metric, k), b.slice(metric, k)
        t_ref = min(sa["tokens"].max(), sb["tokens"].max())
        lo_n, hi_n = min(sa["n_params"].min(), sb["n_params"].min()), max(sa["n_params"].max(), sb["n_params"].max())
        grid = np.geomspace(lo_n / 1.3, hi_n * 1.3, 60)
        t = np.full_like(grid, t_ref)
        for color, study, s, tag in (("C0", a, sa, "A"), ("C1", b, sb, "B")):
            j = study.laws[(metric, k)]
            ax.plot(
                grid,
                from_target(metric, fit.predict_joint(j["params"], grid, t)),
                "-",
                color=color,
                lw=1.4,
                label=f"{tag}: {textwrap.shorten(study.name, 40)}",
            )
            band = _band(j, metric, grid, t)
            if band:
                ax.fill_between(grid, *band, color=color, alpha=0.18, lw=0)
            near = s[np.abs(np.log(s["tokens"] / t_ref)) < np.log(1.1)]
            ax.plot(near["n_params"], near[f"{study.split}_{metric}"], "o", color=color, ms=4)
        test = result["laws"][f"{metric}|{k}"].get("shared_law")
        verdict = f"; one law: p = {test['p']:.2g}" if test else ""
        _metric_axis(ax, metric, N_LABEL, label(None, metric, a.split))
        ax.set_title(f"K = {k}, T = {t_ref:.3g}{verdict}", fontsize=9)
        ax.legend(fontsize=7, loc="best", frameon=True)
    return fig


def save(fig, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for p in paths:
        fig.savefig(p, dpi=150)
    plt.close(fig)
    return paths


def plot_all(rows: pd.DataFrame, fits: dict, out: str | Path) -> list[Path]:
    """Every figure for ppl and ndcg@5 of the fits' split into `out`; returns the PNG paths."""
    _style()
    out, split = Path(out), fits.get("split", "test")
    final = points(rows)
    written = []
    for metric in METRICS:
        if f"{split}_{metric}" not in rows.columns:
            continue
        figures = {
            f"{metric}_vs_flops": vs_flops(rows, fits, metric),
            f"{metric}_vs_n": vs_axis(final, fits, metric, "n_params", split),
            f"{metric}_vs_t": vs_axis(final, fits, metric, "tokens", split),
            f"{metric}_isoflop": isoflop(final, fits, metric),
            f"{metric}_negatives": negatives(final, fits, metric, split),
            f"{metric}_residuals": residuals(final, fits, metric, split),
        }
        if fits.get("negatives", {}).get(metric):
            figures[f"{metric}_negatives_law"] = negatives_law(final, fits, metric, split)
        for name, figure in figures.items():
            written.append(save(figure, out, name.replace("@", ""))[0])
    if fits.get("capacity"):
        written.append(save(capacity(fits), out, "capacity")[0])
    if fits.get("optimum"):
        written.append(save(optimum(final, fits), out, "optimum")[0])
    return written
