"""Grids, the shape solver and the plan."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.core import config
from harness.core.errors import UserError
from harness.model import accounting
from harness.model.features import IdExtractor, SentenceExtractor, TokenExtractor, train_flops_per_item
from harness.model.srt import build_model
from harness.plan import grid, plan, shapes

BASE = """data:
  synthetic: {n_users: 200, n_items: 120, mean_length: 15, max_length: 40}
features: {kind: id}
model: {context: 20}
train: {batch_size: 32, tokens: 6000}
"""


def _write(tmp_path, text, base=BASE):
    (tmp_path / "base.yaml").write_text(base)
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(["st", "tokens", "id"]),
    st.sampled_from(["linear", "mlp"]),
    st.sampled_from(["pre", "post"]),
    st.integers(1, 4),
    st.integers(1, 3),
    st.sampled_from([1, 2, 4]),
)
def test_n_params_formula_counts_like_a_built_model(kind, adapter, norm, heads, layers, ff_mult):
    d = 8 * heads
    cfg = config.resolve(
        {
            "features.kind": kind,
            "features.adapter": adapter,
            "model.norm": norm,
            "model.d_model": d,
            "model.n_heads": heads,
            "model.n_layers": layers,
            "model.d_ff": ff_mult * d,
            "features.token_dim": 6,
        }
    )
    if kind == "st":
        ext = SentenceExtractor(torch.zeros(3, 384).numpy(), d, adapter)
    elif kind == "tokens":
        ext = TokenExtractor([torch.zeros(3, 2, dtype=torch.long).numpy()] * 2, 5, 6, d, adapter)
    else:
        ext = IdExtractor(3, d)
    model = build_model(cfg, ext)
    assert shapes.n_params(cfg, d, layers, ff_mult * d) == accounting.count_params(model)["n_params"]
    assert train_flops_per_item(cfg) == ext.train_flops_per_item


def test_solver_follows_the_aspect_policy_and_refuses_unreachable_targets():
    cfg = config.resolve({})
    policy = shapes.check_policy({"aspect": 32, "head_dim": 32, "tolerance": 0.05}, "g")
    s = shapes.solve(124_736, cfg, policy)
    assert (s.d_model, s.n_layers, s.n_heads, s.d_ff, s.n_params) == (64, 2, 2, 256, 124_736)
    with pytest.raises(UserError, match="cannot be reached within shape.tolerance = 0.05"):
        shapes.solve(60_000, cfg, policy)
    with pytest.raises(UserError, match="unknown shape key 'aspekt'"):
        shapes.check_policy({"aspekt": 3}, "g")


def test_product_zip_and_seeds(tmp_path):
    path = _write(
        tmp_path,
        """base: base.yaml
axes:
  tokens: [3000, 6.0e+3]
  negatives: [16, full]
zip:
  train.lr: [0.001, 0.002, 0.003]
  model.dropout: [0.1, 0.2, 0.3]
seeds: [0, 1]
""",
    )
    points = grid.load(path)
    assert len(points) == 2 * 2 * 3 * 2 and len({p.run_id for p in points}) == 24
    assert {(p.cfg["train.lr"], p.cfg["model.dropout"]) for p in points} == {(0.001, 0.1), (0.002, 0.2), (0.003, 0.3)}
    assert {p.cfg["train.tokens"] for p in points} == {3000, 6000}
    assert {p.cfg["train.seed"] for p in points} == {0, 1}


def test_a_key_given_in_two_places_is_named_with_the_place_that_wins(tmp_path):
    """Precedence base < set < axes < zip < scale: a `scale` law replaces what `set` and `zip` give for train.lr,
    and the zip's value replaces the axis' for dropout; each key gets one line, the loaded points follow it."""
    path = _write(
        tmp_path,
        """base: base.yaml
set: {train: {lr: 0.005}}
shape: {tolerance: 10}
axes: {n_params: [3.0e+4, 3.0e+5], model.dropout: [0.0, 0.1]}
zip: {train.lr: [0.002, 0.001], model.dropout: [0.2, 0.3]}
scale: {train.lr: {base: 0.002, n_ref: 3.0e+4, power: -0.5}}
""",
        base=BASE.replace("kind: id", "kind: st"),
    )
    lines = grid.shadowed(path)
    assert len(lines) == 2
    lr, dropout = sorted(lines, key=lambda line: "dropout" in line)
    assert "set.train.lr, zip.train.lr never used: scale.train.lr sets it" in lr
    assert (
        "axes.model.dropout never used: zip.model.dropout" in dropout and "base < set < axes < zip < scale" in dropout
    )
    points = grid.load(path)
    assert {p.cfg["model.dropout"] for p in points} == {0.2, 0.3}
    assert all(p.cfg["train.lr"] == pytest.approx(0.002 * (p.shape.n_params / 3.0e4) ** -0.5) for p in points)
    assert grid.shadowed(_write(tmp_path, "base: base.yaml\nset: {train.lr: 0.001}\naxes: {tokens: [6000]}\n")) == []


def test_n_params_axis_sets_the_shape(tmp_path):
    path = _write(tmp_path, "base: base.yaml\naxes:\n  n_params: [1.28e+4, 1.0e+5]\n")  # id: no adapter
    a, b = grid.load(path)
    assert (a.cfg["model.d_model"], a.cfg["model.n_layers"]) == (32, 1)
    assert (b.cfg["model.d_model"], b.cfg["model.n_layers"], b.cfg["model.n_heads"]) == (64, 2, 2)


@pytest.mark.parametrize(
    "text,message",
    [
        ("base: base.yaml\naxes:\n  model.d_modl: [3]\n", r"grid\.yaml:3: unknown axis 'model.d_modl'"),
        ("base: base.yaml\naxes:\n  tokens: []\n", "must be a non-empty list"),
        ("base: base.yaml\naxes:\n  model.n_heads: [3]\n", "model.n_heads = 3 does not divide"),
        ("base: base.yaml\naxes:\n  tokens: [100]\n", "smaller than one batch"),
        ("base: base.yaml\nzip:\n  train.lr: [0.1, 0.2]\n  train.seed: [1]\n", "equal lengths"),
        ("base: base.yaml\naxes:\n  n_params: [1.0e+5]\n  model.d_model: [64]\n", "sets model.d_model"),
        ("base: base.yaml\nbogus: 1\n", r"grid\.yaml:2: unknown grid key 'bogus'"),
        ("axes:\n  tokens: [6000]\n", "needs 'base"),
    ],
)
def test_invalid_grids_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        grid.load(_write(tmp_path, text))


def test_plan_rows_and_totals(tmp_path):
    points = grid.load(_write(tmp_path, "base: base.yaml\naxes:\n  tokens: [3000, 6000]\n  negatives: [16, full]\n"))
    result = plan.plan(points, threads=1)
    rows = result["runs"]
    assert [r["run_id"] for r in rows] == [p.run_id for p in points]
    full = [r for r in rows if r["negatives"] == "full"]
    assert full[1]["flops"] == pytest.approx(2 * full[0]["flops"])
    assert all(r["est_s"] > r["est_setup_s"] > 0 and r["flops_per_s"] > 0 for r in rows)
    assert full[1]["est_s"] > full[0]["est_s"]  # twice the steps of the same shape
    assert result["totals"]["flops"] == pytest.approx(sum(r["flops"] for r in rows))
    text = plan.format_table(result, parallel=2)
    assert all(p.run_id in text for p in points) and "4 runs" in text


ISOFLOP = """base: base.yaml
shape: {aspect: 8, head_dim: 8, ff_mult: 2, tolerance: 0.5}
isoflop:
  flops: [2.0e+8, 6.0e+8]
  n_params: {count: 3, decades: 0.7, centre: {n_params: 1.5e+4, flops: 2.0e+8, exponent: 0.5}}
scale: {train.lr: {base: 0.002, n_ref: 1.5e+4, power: -0.5}}
axes: {negatives: [8, full]}
"""


def test_isoflop_design_lands_every_run_on_its_budget(tmp_path):
    from harness.plan import plan

    points = grid.load(_write(tmp_path, ISOFLOP))
    assert len(points) == 2 * 3 * 2
    result = plan.plan(points, threads=1)
    for p, row in zip(points, result["runs"]):
        assert row["budget"] == p.budget and row["flops"] == pytest.approx(p.budget, rel=0.02)
        assert p.cfg["train.lr"] == pytest.approx(0.002 * (p.shape.n_params / 1.5e4) ** -0.5)
    for d in result["diagnostics"]["per_k"].values():
        assert [b["flops"] for b in d["budgets"]] == [2.0e8, 6.0e8] and all(b["runs"] == 3 for b in d["budgets"])
        assert d["decades"]["C"] == pytest.approx(math.log10(3), rel=0.03)
        small, large = d["budgets"][0]["n_params"]
        assert large / small > 3  # the N values spread around the centre
    assert "budget 2e+08 FLOPs: 3 runs" in plan.format_table(result, 2)


def test_plan_warns_on_a_narrow_grid_and_on_repeated_data(tmp_path):
    from harness.plan import plan

    path = _write(
        tmp_path,
        "base: base.yaml\nshape: {aspect: 8, head_dim: 8, ff_mult: 2, tolerance: 0.5}\n"
        "axes:\n  n_params: [4.5e+3, 1.5e+4]\n  tokens: [3000, 6000]\n",
    )
    result = plan.plan(grid.load(path), threads=1)
    warnings = result["diagnostics"]["warnings"]
    assert any("N spans 0.5" in w for w in warnings) and any("T spans 0.30 decades" in w for w in warnings)
    assert any("repeats its training data" in w for w in warnings)
    assert all(w.count("\n") == 0 for w in warnings)
    assert "warning: K=full: T spans 0.30 decades" in plan.format_table(result, 1)


def test_plan_counts_cooldown_branches_as_fitting_points_and_prices_what_they_spend(tmp_path):
    from harness.plan import plan

    wsd = (
        "base: base.yaml\nset: {train.schedule: wsd, train.warmup_tokens: 100, train.decay: 0.2, train.batch_size: 2, "
        "train.branches: [0.03125, 0.125, 0.5, 1.0]}\naxes:\n  tokens: [32000]\n  negatives: [full]\n"
    )
    result = plan.plan(grid.load(_write(tmp_path, wsd)), threads=1)
    (row,) = result["runs"]
    assert row["lengths"] == [1000, 4000, 16000, 32000]
    assert row["flops_spent"] == pytest.approx(row["flops"] / 32000 * (32000 + 0.2 * (1000 + 4000 + 16000)))
    assert result["totals"]["flops"] == pytest.approx(row["flops_spent"])
    d = result["diagnostics"]["per_k"]["full"]["decades"]
    assert d["T"] == pytest.approx(math.log10(32)) and d["C"] == pytest.approx(math.log10(32))
    assert not any("T spans" in w for w in result["diagnostics"]["warnings"])  # one run, but T spans 1.5 decades


@pytest.mark.parametrize(
    "bad, message",
    [
        ("isoflop: {flops: [1.0e+9]}\n", "isoflop needs exactly 'flops'"),
        ("isoflop: {flops: [1.0e+9], n_params: [1.0e+4]}\naxes: {tokens: [100]}\n", "do not give them as axes"),
        ("scale: {train.lr: {base: 0.002}}\naxes: {n_params: [1.0e+4]}\n", "scale.train.lr must be"),
        ("scale: {train.lr: {base: 0.002, n_ref: 1.0e+4, power: -0.5}}\n", "scale.train.lr needs N"),
    ],
)
def test_design_mistakes_are_one_line_errors(tmp_path, bad, message):
    path = _write(tmp_path, "base: base.yaml\nshape: {aspect: 8, head_dim: 8, ff_mult: 2, tolerance: 0.5}\n" + bad)
    with pytest.raises(UserError, match=message):
        grid.load(path)


def test_shape_for_a_target_n_follows_the_grid_policy(tmp_path):
    path = _write(
        tmp_path,
        "base: base.yaml\nshape: {aspect: 8, head_dim: 8, ff_mult: 2, tolerance: 0.5}\n"
        "axes:\n  n_params: [4.5e+3, 1.5e+4]\n",
    )
    points = grid.load(path)
    for p in points:
        assert grid.shape_for(path, p.n_params_target) == p.shape
    far = grid.shape_for(path, 1.0e9)  # out of any tolerance: the nearest shape all the same
    assert far.n_params == max(grid.shape_for(path, n).n_params for n in (1e8, 1e9, 1e10))
