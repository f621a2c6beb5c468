"""Joint laws in (N, T, K) (analysis/negatives.py) on planted tables of each form, 0.5% noise."""

import numpy as np
import pandas as pd
import pytest
from figure_text import overlaps

from analysis import advise, cost, laws, negatives, plots, report
from analysis.table import points
from harness.core.errors import UserError

PLANTED = {
    "additive": dict(E=1.0, A=30.0, alpha=0.35, B=200.0, beta=0.4, D=0.5, gamma=0.3),
    "effective_data": dict(E=1.0, A=30.0, alpha=0.35, B=200.0, beta=0.4, K0=100.0, gamma=0.8),
    "effective_capacity": dict(E=1.0, A=30.0, alpha=0.35, B=200.0, beta=0.4, K0=100.0, gamma=0.8, zeta=1.0),
}


def planted_table(
    form,
    params=None,
    ks=(16, 64, 256, 1024, "full"),
    n_items=10000,
    seed=1,
    noise=0.005,
    per_target=lambda n, k: 6.5 * n,
):
    """A results table whose ln(perplexity) follows `form` exactly, times log-normal noise: 4 N x 5 K runs, each
    with 6 fitting points (cooldown branches) over 1.5 decades of T; C = per_target(N, K) T."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in (1e4, 3e4, 1e5, 3e5):
        for k in ks:
            for t in (1e5, 2e5, 4e5, 8e5, 1.6e6, 3.2e6):
                rows.append(
                    {
                        "run_id": f"{n:g}-{k}",
                        "status": "done",
                        "final": t == 3.2e6,
                        "annealed": True,
                        "n_params": int(n),
                        "tokens": int(t),
                        "negatives": str(k),
                        "n_items": n_items,
                        "flops": per_target(n, n_items - 1 if k == "full" else k) * t,
                    }
                )
    df = pd.DataFrame(rows)
    k, k_ref, _ = negatives.negatives_axis(df)
    x = np.stack([df["n_params"], df["tokens"], k], axis=1).astype(float)
    ce = negatives.FORMS[form].predict(params or PLANTED[form], x, k_ref) * np.exp(rng.normal(0, noise, len(df)))
    df["test_ppl"] = np.exp(ce)
    df["valid_ppl"] = np.exp(ce)
    return df


@pytest.mark.parametrize("form", list(PLANTED))
def test_the_planted_form_is_selected_by_heldout_error_and_its_exponents_recovered(form):
    t = planted_table(form)
    k, k_ref, _ = negatives.negatives_axis(t)
    out = negatives.fit_negatives(t, np.log(t["test_ppl"].to_numpy()), t["test_ppl"].to_numpy(), np.exp, n_boot=20)
    assert out["selected"] == form
    for other in set(out["forms"]) - {form}:
        assert out["forms"][form]["heldout"]["mean"] <= out["forms"][other]["heldout"]["mean"] * (
            1 + negatives.SELECT_MARGIN
        )
    p = out["forms"][form]["params"]
    for name in ("alpha", "beta"):
        assert p[name] == pytest.approx(PLANTED[form][name], rel=0.05)
    assert out["k_ref"] == 9999 and "full softmax" in out["reference"]
    ci = out["forms"][form]["ci95"]
    assert all(ci[name][0] <= p[name] <= ci[name][1] for name in p)


def test_a_knee_below_every_sampled_k_is_flagged_not_reported_confidently():
    """Every sampled K lies past the knee (K0 = 2 < 16): K0 is named as not identified, with its bound and the law's
    slope in ln K over the sampled range."""
    t = planted_table("effective_data", {**PLANTED["effective_data"], "K0": 2.0})
    out = negatives.fit_negatives(t, np.log(t["test_ppl"].to_numpy()), t["test_ppl"].to_numpy(), np.exp, n_boot=20)
    flag = out["forms"]["effective_data"]["unidentified"]["K0"]
    assert "outside the sampled K range" in flag and "K0 < 16" in flag and "d ln g / d ln K" in flag


def test_full_needs_n_items_and_a_table_without_full_rows_needs_none():
    t = planted_table("additive").drop(columns="n_items")
    with pytest.raises(UserError, match="column n_items: rows with negatives = full need it"):
        negatives.negatives_axis(t)
    sampled = t[t["negatives"] != "full"]
    k, k_ref, reference = negatives.negatives_axis(sampled)
    assert k_ref == 1024 and "largest sampled K" in reference
    out = negatives.fit_negatives(
        sampled, np.log(sampled["test_ppl"].to_numpy()), sampled["test_ppl"].to_numpy(), np.exp, n_boot=0
    )
    assert out["selected"] in negatives.FORMS


def test_fits_and_report_carry_the_joint_laws_in_k(tmp_path):
    """A results table with >= 3 values of K: fits.json `negatives` per metric, a report section naming every
    form's held-out errors and a figure of the metric against K with the selected law (written, and its text
    neither clips nor overlaps); a table with 2 values of K has none."""
    t = planted_table("additive", ks=(16, 256, "full"))
    t["test_ndcg@5"] = 1 - 0.5 * np.log(t["test_ppl"]) / np.log(t["test_ppl"]).max()
    t["valid_ndcg@5"] = t["test_ndcg@5"]
    fits = laws.fit_table(t, n_boot=0)  # the per-K laws' bootstrap is tested elsewhere
    assert set(fits["negatives"]) == {"ppl", "ndcg@5"}
    assert fits["negatives"]["ppl"]["selected"] == "additive"
    text = report.render(t, fits, [], tmp_path)
    assert "## Negatives as an axis" in text and "leave one K out" in text and "additive (selected)" in text
    written = plots.plot_all(t, fits, tmp_path / "figures")
    assert {"ppl_negatives_law.png", "ndcg5_negatives_law.png"} <= {p.name for p in written}
    plots._style()
    fig = plots.negatives_law(t, fits, "ppl")
    assert overlaps(fig) == [] and len(fig.axes[0].lines) == 3 * 4  # points, full-softmax star, law per N
    two = laws.fit_table(t[t["negatives"].isin(["256", "full"])], n_boot=0)
    assert "negatives" not in two


def negatives_cost(n, k):
    """A cost per target in which negatives matter: 6.5 N for the blocks, 1,000 FLOPs per candidate scored."""
    return 6.5 * n + 1000.0 * (k + 1)


def test_the_cost_model_is_exact_at_the_tables_points_and_linear_in_k_between_them():
    t = planted_table("additive", per_target=negatives_cost)
    c = cost.fit_cost(points(t))
    for n in (1e4, 3e4, 1e5, 3e5):
        for k in (16, 64, 256, 1024):
            assert cost.per_target(c, [n], str(k))[0] == pytest.approx(negatives_cost(n, k), rel=1e-12)
        assert cost.per_target(c, [n], "full")[0] == pytest.approx(negatives_cost(n, 9999), rel=1e-12)
        assert cost.per_target(c, [n], 100.0)[0] == pytest.approx(negatives_cost(n, 100), rel=1e-12)
        assert cost.negatives_share(c, n, "256") == pytest.approx(1000 * 256 / negatives_cost(n, 256), rel=1e-9)
    # a N + b is linear in N: exact between the table's N and beyond them
    for n in (5e3, 5e4, 1e6):
        assert cost.per_target(c, [n], "64")[0] == pytest.approx(negatives_cost(n, 64), rel=1e-12)
    assert c["linear"]["a"] == pytest.approx(6.5, rel=1e-6) and c["linear"]["max_rel_error"] < 1e-6
    assert c["linear"]["b"]["64"] == pytest.approx(1000 * 65, rel=1e-6)
    with pytest.raises(ValueError, match="outside the table's sampled K values"):
        cost.per_target(c, [1e4], 5000.0)


def _true_optimum(budget, ks, n_items=10000):
    """The planted law's compute-optimal K among `ks` and its N_opt, by brute force over a fine N grid (not the
    code under test); the margin to the second-best K in the target."""
    form, p = negatives.FORMS["effective_data"], PLANTED["effective_data"]
    ns = np.geomspace(1e2, 1e9, 20000)
    best = []
    for k in ks:
        kn = n_items - 1 if k == "full" else k
        x = np.stack([ns, budget / negatives_cost(ns, kn), np.full(len(ns), kn)], axis=1)
        y = form.predict(p, x, n_items - 1)
        best.append((float(y.min()), str(k), float(ns[np.argmin(y)])))
    best.sort()
    return best[0][1], best[0][2], best[1][0] / best[0][0] - 1


def test_advise_picks_the_compute_optimal_k_and_n_of_a_planted_law():
    """Three budgets whose true optimum has a clear best K (>= 1% ahead of the next in ln perplexity) and its N_opt
    inside the table's N: advise (K among the table's values) picks that K, with N_opt within 25%, priced by the
    table's own cost per target."""
    ks = (16, 64, 256, 1024, "full")
    t = planted_table("effective_data", ks=ks, per_target=negatives_cost)
    fits = laws.fit_table(t, n_boot=20)
    assert fits["negatives"]["ppl"]["selected"] == "effective_data"
    for budget, expected in ((1e11, "64"), (1e12, "256"), (1e13, "256")):
        k_true, n_true, margin = _true_optimum(budget, ks)
        assert k_true == expected and margin > 0.01 and 1e4 < n_true < 3e5  # the planted optimum, as constructed
        a = advise.advise(fits, budget, between=False)
        assert a["negatives"] == k_true and a["candidates"] == ["16", "64", "256", "1024", "full"]
        assert a["n_params"] == pytest.approx(n_true, rel=0.25)
        assert a["tokens"] == pytest.approx(budget / negatives_cost(a["n_params"], int(k_true)), rel=1e-9)
        assert a["negatives_share"] == pytest.approx(
            1000 * int(k_true) / negatives_cost(a["n_params"], int(k_true)), rel=0.05
        )
    joint = advise.advise(fits, 1e11)  # with K between the sampled values too: a K near the table's best
    assert 64 <= joint["negatives_number"] <= 1024 and len(joint["candidates"]) > len(ks)
    o = fits["optimum"]
    assert len(o["flops"]) == laws.BUDGETS and o["flops"][-1] == pytest.approx(10 * t["flops"].max())
    assert all(lo <= n <= hi for n, (lo, hi) in zip(o["n_params"], o["n_params_ci95"]))


def test_a_table_mixing_samplers_gets_no_joint_law_in_k_but_a_message_naming_them():
    t = planted_table("additive", ks=(16, 256, "full"))
    t["loss.sampler"] = np.where(t["negatives"] == "16", "uniform", "popularity")
    fits = laws.fit_table(
        t[t["negatives"] != "full"]
        .assign(**{"loss.sampler": "uniform"})
        .pipe(lambda s: pd.concat([s, t[t["negatives"] == "full"]])),
        n_boot=0,
    )
    assert "negatives" in fits  # one sampled family (the full softmax's own sampler value does not count)
    fits = laws.fit_table(t, n_boot=0)
    assert "negatives" not in fits
    assert any(
        "mix negative families" in m and "loss.sampler = uniform" in m and "loss.sampler = popularity" in m
        for m in fits["messages"]
    )
