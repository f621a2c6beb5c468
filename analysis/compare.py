"""`srt-scale compare A B`: one study against another, per metric and K present in both.

For each joint law (analysis.laws.joint_law, fitted with the same interval method as `fit`):
- each parameter's difference A - B (and of approach 3's N_opt exponent) with a 95% interval, the percentiles of
  differences of independent refits (A's i-th minus B's i-th);
- a test of one shared law against two: D = H_pooled - H_A - H_B, H the Huber objective of the law fitted to
  both tables' points together or to each alone. Its reference distribution: pairs of tables drawn from the
  pooled law at each table's own points with each table's own noise model (analysis.fit.simulate), each pair
  fitted pooled and apart; p = (1 + #{D* >= D}) / (1 + B). A table given as fits.json has no points: then only
  the differences, and the test is skipped with a message.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import fit, frontier, laws, noise, plots
from analysis import table as results_table
from analysis.table import METRICS, k_order, points, usable
from harness.core.errors import UserError
from harness.core.io import write_json

LEVEL = 0.05
PARAMS = ("E", "A", "alpha", "B", "beta", "n_opt_exponent")


class Study:
    """One side of a comparison: its fits (laws.fit_table's per-K entries, refitted here from a table) and, for a
    table, its fitting points."""

    def __init__(self, source: str, n_boot: int, intervals: str, seed: int):
        path = Path(source)
        self.name = source
        if path.is_dir() and not (path / "results.parquet").exists() and (path / "fits.json").exists():
            path = path / "fits.json"
        self.final = None
        if path.suffix == ".json":
            try:
                fits = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise UserError(f"{path}: not a readable fits.json ({e})") from None
            self.split, self.kappa = fits["split"], fits.get("kappa", 6.0)
            self.laws = {
                (m, k): e["joint"]
                for m, per_k in fits["metrics"].items()
                for k, e in per_k.items()
                if "params" in e.get("joint", {})
            }
            return
        t = results_table.load(path)
        self.split = t.attrs["table"]["split"]
        rows, _ = usable(t, self.split)
        self.final = points(rows)
        if self.final.empty:
            raise UserError(f"{source}: no finished run with finite metrics: nothing to compare")
        self.kappa = frontier.kappa(self.final)
        run_ids = not any(a.startswith("no run_id") for a in t.attrs["table"].get("assumed", []))
        self.laws, self.fits = {}, {}
        for metric in METRICS:
            col = f"{self.split}_{metric}"
            if col not in self.final.columns:
                continue
            for k in k_order(self.final["negatives"]):
                s = self.slice(metric, k)[0]
                f = laws.joint_law(s, results_table.to_target(metric, s[col]), n_boot, seed, intervals, run_ids)
                if isinstance(f, fit.Fit):
                    self.fits[(metric, k)] = f
                    self.laws[(metric, k)] = f.to_dict()

    def slice(self, metric: str, k: str) -> tuple[pd.DataFrame, np.ndarray]:
        s = self.final[self.final["negatives"].astype(str) == k]
        return s, results_table.to_target(metric, s[f"{self.split}_{metric}"])


def _samples(law: dict, kappa: float) -> pd.DataFrame:
    rows = pd.DataFrame(law.get("bootstrap", []))
    if not rows.empty:
        rows["n_opt_exponent"] = [frontier.closed_form(p, kappa)["n_opt_exponent"] for p in law["bootstrap"]]
    return rows


def differences(a: dict, b: dict, kappa_a: float, kappa_b: float) -> dict:
    """Each parameter's A - B with the 95% interval of differences of independent refits."""
    sa, sb = _samples(a, kappa_a), _samples(b, kappa_b)
    out = {}
    for name in PARAMS:
        va = a["params"][name] if name in a["params"] else frontier.closed_form(a["params"], kappa_a)[name]
        vb = b["params"][name] if name in b["params"] else frontier.closed_form(b["params"], kappa_b)[name]
        entry = {"a": va, "b": vb, "difference": va - vb}
        m = min(len(sa), len(sb))
        if m:
            d = sa[name].to_numpy()[:m] - sb[name].to_numpy()[:m]
            d = d[np.isfinite(d)]
            lo, hi = np.percentile(d, [2.5, 97.5])
            entry.update({"ci95": [float(lo), float(hi)], "differs": bool(lo > 0 or hi < 0)})
        out[name] = entry
    return out


def _losses(theta: np.ndarray, xs: list[np.ndarray], logy: np.ndarray) -> np.ndarray:
    """The Huber objective (sum over points) of each law theta (B, P) on its table logy (B, n)."""
    logs = [np.log(np.asarray(x, float)) for x in xs]
    f, _ = fit._batch_objective(theta, logs, logy, np.ones_like(logy))
    return f * fit.DELTA


def shared_law(
    sa: pd.DataFrame, ya: np.ndarray, fa: fit.Fit, sb: pd.DataFrame, yb: np.ndarray, fb: fit.Fit, n_boot: int, seed: int
) -> dict:
    """The test of one law for both tables (module docstring)."""
    xa = [sa["n_params"].to_numpy(float), sa["tokens"].to_numpy(float)]
    xb = [sb["n_params"].to_numpy(float), sb["tokens"].to_numpy(float)]
    xp = [np.concatenate([u, v]) for u, v in zip(xa, xb)]
    pooled = fit.joint(*xp, np.concatenate([ya, yb]))
    stat = pooled.loss - fa.loss - fb.loss
    rng = np.random.default_rng(seed)
    sims = []
    for s, xs, f in ((sa, xa, fa), (sb, xb, fb)):
        nz = noise.Noise.from_dict(f.intervals["noise"])
        sims.append(fit.simulate(pooled, xs, s["run_id"].to_numpy(), nz, n_boot, rng))
    both = np.concatenate(sims, axis=1)
    theta_p, _ = fit.refit(xp, both)
    theta_a, _ = fit.refit(xa, sims[0])
    theta_b, _ = fit.refit(xb, sims[1])
    null = _losses(theta_p, xp, both) - _losses(theta_a, xa, sims[0]) - _losses(theta_b, xb, sims[1])
    p = float((1 + np.sum(null >= stat)) / (1 + n_boot))
    return {
        "statistic": float(stat),
        "p": p,
        "rejects": p < LEVEL,
        "pooled": pooled.params,
        "reference": f"{n_boot} pairs of tables drawn from the pooled law with each table's noise model",
    }


def compare(source_a: str, source_b: str, n_boot: int = 200, intervals: str = "auto", seed: int = 0) -> dict:
    """Every (metric, K) joint law in both studies: differences and the shared-law test (module docstring)."""
    a, b = (Study(s, n_boot, intervals, seed) for s in (source_a, source_b))
    out = {"a": source_a, "b": source_b, "n_boot": n_boot, "laws": {}, "messages": []}
    common = [key for key in a.laws if key in b.laws]
    if not common:
        raise UserError(f"{source_a} and {source_b} share no (metric, K) with a joint law: nothing to compare")
    for metric, k in common:
        entry = {"differences": differences(a.laws[(metric, k)], b.laws[(metric, k)], a.kappa, b.kappa)}
        if a.final is not None and b.final is not None:
            entry["shared_law"] = shared_law(
                *a.slice(metric, k), a.fits[(metric, k)], *b.slice(metric, k), b.fits[(metric, k)], n_boot, seed
            )
        else:
            out["messages"].append(f"{metric}, K={k}: a fits.json has no points: the shared-law test needs tables")
        out["laws"][f"{metric}|{k}"] = entry
    out["verdict"] = verdict(out)
    out["_studies"] = (a, b)
    return out


def verdict(result: dict) -> str:
    """One sentence per (metric, K): one law or two, and which parameters differ."""
    lines = []
    for key, e in result["laws"].items():
        metric, k = key.split("|")
        differ = [n for n, d in e["differences"].items() if d.get("differs")]
        test = e.get("shared_law")
        head = (
            f"{metric}, K={k}: "
            + (
                "two laws (one shared law rejected, p = {:.2g})"
                if test and test["rejects"]
                else "one shared law not rejected (p = {:.2g})"
            ).format(test["p"])
            if test
            else f"{metric}, K={k}: no test"
        )
        lines.append(
            head
            + (
                f"; differ beyond their intervals: {', '.join(differ)}"
                if differ
                else "; no parameter differs beyond its interval"
            )
        )
    return "\n".join(lines)


def format_compare(result: dict) -> str:
    lines = [f"A = {result['a']}", f"B = {result['b']}"]
    for key, e in result["laws"].items():
        metric, k = key.split("|")
        lines.append(f"{metric}, K={k}:")
        for name, d in e["differences"].items():
            ci = d.get("ci95")
            lines.append(
                f"  {name:>15}: A {d['a']:.4g}, B {d['b']:.4g}, A - B = {d['difference']:+.4g}"
                + (f" (95% CI {ci[0]:+.3g} – {ci[1]:+.3g}){' differs' if d['differs'] else ''}" if ci else "")
            )
        if "shared_law" in e:
            t = e["shared_law"]
            lines.append(
                f"  one shared law: D = {t['statistic']:.4g}, p = {t['p']:.2g} "
                f"({'rejected' if t['rejects'] else 'not rejected'}; {t['reference']})"
            )
    return "\n".join([*lines, "verdict:", result["verdict"], *result["messages"]])


def write(result: dict, out: str | Path) -> list[Path]:
    """compare.json and the figures (analysis.plots.compare) under `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    a, b = result["_studies"]
    write_json(out / "compare.json", {k: v for k, v in result.items() if k != "_studies"})
    written = []
    for metric in METRICS:
        keys = [key for key in result["laws"] if key.startswith(f"{metric}|")]
        if keys and a.final is not None and b.final is not None:
            fig = plots.compare(a, b, metric, [key.split("|")[1] for key in keys], result)
            written.append(plots.save(fig, out, f"compare_{metric.replace('@', '')}")[0])
    return written
