"""Real training runs on the tiny synthetic world: the run directory contract, the T budget, resume, divergence."""

import json
import math
import subprocess
import sys

import pytest
import torch

from harness.core import config
from harness.core.errors import UserError
from harness.model import schedules
from harness.model.schedules import lr_factor
from harness.run import Run, identity, train

DESIGN_COLUMNS = [
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
    "valid_ndcg@5",
    "valid_ndcg@10",
    "valid_hr@10",
    "valid_mrr",
    "valid_ppl",
    "test_ndcg@5",
    "test_ndcg@10",
    "test_hr@10",
    "test_mrr",
    "test_ppl",
    "features.kind",
    "data.name",
]


def test_run_directory_contract(tiny, tmp_path):
    cfg = tiny(features__kind="id", eval__points=[0.25, 0.5, 1.0])
    result = train(cfg, tmp_path, progress=False)
    run_dir = tmp_path / identity.run_id(cfg)
    for name in ("config.yaml", "metrics.jsonl", "result.json", "checkpoint.pt", "train.log"):
        assert (run_dir / name).exists()
    assert config.load(run_dir / "config.yaml") == cfg
    assert all(c in result for c in DESIGN_COLUMNS)
    assert result["status"] == "done" and result["final"] is True and result["tokens"] == cfg["train.tokens"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    one_batch = cfg["train.batch_size"] * cfg["model.context"]
    # an evaluation runs after the step that reaches its fraction of T and records the targets actually seen
    assert all(p <= r["tokens"] < p + one_batch for p, r in zip([1500, 3000], rows))
    assert rows[-1]["tokens"] == 6000
    assert [r["final"] for r in rows] == [False, False, True]
    assert all(r["flops"] == pytest.approx(r["tokens"] * result["flops"] / result["tokens"]) for r in rows)
    assert json.loads((run_dir / "result.json").read_text()) == result
    # the same config is never trained twice
    stamp = (run_dir / "checkpoint.pt").stat().st_mtime_ns
    assert train(cfg, tmp_path, progress=False) == result
    assert (run_dir / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_perplexity_falls_with_T_and_ndcg_stays_below_the_oracle(tiny, tmp_path):
    cfg = tiny(features__kind="st", train__tokens=24000, train__lr=0.003, eval__points=[0.125, 0.5, 1.0])
    result = train(cfg, tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / result["run_id"] / "metrics.jsonl").read_text().splitlines()]
    ppl = [r["valid_ppl"] for r in rows]
    assert ppl[0] > ppl[1] > ppl[2]
    assert result["test_ppl"] > result["oracle_test_ppl"]
    # the oracle NDCG is an expectation per user; the model's is realized on 200 test items (standard error
    # about sqrt(0.25 / 200) = 0.035), so "below the oracle" holds up to sampling noise
    assert result["test_ndcg@5"] < result["oracle_test_ndcg@5"] + 3 * math.sqrt(0.25 / result["n_users"])
    assert result["test_ndcg@5"] > 0.2  # a random ranking of 120 items scores about 0.025


@pytest.mark.parametrize(
    "over",
    [
        {"features__kind": "id"},
        {"features__kind": "tokens", "loss__negatives": 16, "loss__shared_negatives": False},
        {"features__kind": "id", "loss__kind": "gbce", "loss__negatives": 8, "loss__sampler": "popularity"},
    ],
)
def test_resume_gives_the_same_result_as_an_uninterrupted_run(tiny, tmp_path, over):
    cfg = tiny(train__tokens=5000, model__dropout=0.3, eval__points=[0.5, 1.0], **over)
    whole = train(cfg, tmp_path / "whole", progress=False)
    calls = {"n": 0}

    def stop_once_after_four_steps():
        calls["n"] += 1
        return calls["n"] == 4

    assert train(cfg, tmp_path / "split", should_stop=stop_once_after_four_steps, progress=False) is None
    assert not (tmp_path / "split" / identity.run_id(cfg) / "result.json").exists()
    resumed = train(cfg, tmp_path / "split", progress=False)
    for key in [k for k in whole if k.startswith(("valid_", "test_", "train_loss"))] + ["tokens", "epochs"]:
        assert resumed[key] == pytest.approx(whole[key], rel=1e-6, abs=1e-9), key


def test_divergence_is_reported(tiny, tmp_path):
    cfg = tiny(features__kind="id", train__lr=1e30, train__warmup=0.0, train__grad_clip=0.0)
    result = train(cfg, tmp_path, progress=False)
    assert result["status"] == "diverged" and result["final"] is True
    assert result["tokens"] < cfg["train.tokens"] and math.isnan(result["valid_ndcg@5"])
    assert json.loads((tmp_path / result["run_id"] / "result.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize("clip", [1e-3, 0.0])
def test_gradient_clipping_really_clips(tiny, tmp_path, clip):
    cfg = tiny(features__kind="id", train__grad_clip=clip, train__warmup=0.0)
    assert train(cfg, tmp_path, should_stop=lambda: True, progress=False) is None
    state = torch.load(tmp_path / identity.run_id(cfg) / "checkpoint.pt", weights_only=True)["optimizer"]["state"]
    grad_norm = math.sqrt(sum(float((s["exp_avg"] / 0.1).pow(2).sum()) for s in state.values()))  # after 1 step
    assert (grad_norm <= clip * 1.0001) if clip else (grad_norm > 1e-2)


def test_all_position_and_last_position_supervision(tiny):
    for supervision in ("all", "last"):
        run = Run(tiny(features__kind="id", loss__supervision=supervision), "unused")
        inputs, targets = run.examples.batch(torch.arange(len(run.examples)))
        per_row = (targets != 0).sum(1)
        assert int(per_row.sum()) == run.examples.targets_per_epoch
        if supervision == "last":
            assert (per_row == 1).all() and (targets[:, -1] != 0).all()
        # every target is the item that follows its input position in the same user's sequence
        shifted = torch.cat([inputs[:, 1:], targets[:, -1:]], dim=1)
        assert ((targets == 0) | (targets == shifted)).all()


def test_schedules_warm_up_and_decay_near_zero():
    cfg = config.resolve({"train.warmup": 0.1, "train.min_lr_ratio": 0.01})
    assert lr_factor(0.0, cfg) == 0.0 and lr_factor(0.1, cfg) == pytest.approx(1.0)
    assert lr_factor(1.0, cfg) == pytest.approx(0.01)
    assert all(lr_factor(p / 10, cfg) >= lr_factor((p + 1) / 10, cfg) for p in range(1, 10))
    one = config.resolve({"train.warmup": 0.3, "train.schedule": "onecycle"})
    assert lr_factor(0.0, one) == pytest.approx(0.04) and lr_factor(1.0, one) == pytest.approx(1e-4)


def test_bf16_needs_cuda(tiny, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(UserError, match="bf16 needs a CUDA device"):
        train(tiny(train__precision="bf16"), tmp_path, progress=False)


def test_cli_train_prints_the_run_and_its_metrics(tmp_path, shared_cache):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "data:\n  synthetic: {n_users: 100, n_items: 60, mean_length: 10, max_length: 20}\n"
        "features: {kind: id}\nmodel: {d_model: 16, n_layers: 1, n_heads: 1, d_ff: 32, context: 10}\n"
        "train: {tokens: 2000, batch_size: 16}\neval: {points: [1.0]}\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "train",
            str(cfg),
            "--out",
            str(tmp_path / "runs"),
            "--quiet",
            "--set",
            "train.seed=3",
        ],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "SRT_SCALE_CACHE": str(shared_cache)},
    )
    assert proc.returncode == 0, proc.stderr
    run_id = identity.run_id(config.load(cfg, ["train.seed=3"]))
    assert f"run {run_id}" in proc.stdout and "test_ndcg@10" in proc.stdout
    assert json.loads((tmp_path / "runs" / run_id / "result.json").read_text())["train.seed"] == 3


WSD = {
    "train__schedule": "wsd",
    "train__warmup_tokens": 600,
    "train__decay": 0.5,
    "train__decay_shape": "1-sqrt",
    "model__dropout": 0.3,
    "features__kind": "id",
    "loss__negatives": 16,
    "loss__shared_negatives": False,
}


def _rows(out, cfg):
    return [json.loads(line) for line in (out / identity.run_id(cfg) / "metrics.jsonl").read_text().splitlines()]


def test_a_cooldown_branch_is_the_standalone_wsd_run_of_its_length(tiny, tmp_path):
    cfg = tiny(train__tokens=20000, train__branches=[0.25, 0.5, 1.0], eval__points=[0.5, 1.0], **WSD)
    result = train(cfg, tmp_path / "branched", progress=False)
    rows = _rows(tmp_path / "branched", cfg)
    annealed = [r for r in rows if r["annealed"]]
    assert [r["tokens"] for r in annealed] == [5000, 10000, 20000] and annealed[-1]["final"]
    assert not any(r["annealed"] for r in rows if r not in annealed)
    for row in annealed[:2]:
        alone = train(tiny(train__tokens=row["tokens"], eval__points=[1.0], **WSD), tmp_path / "alone", progress=False)
        # dropout and per-target negatives draw from the same random streams in the same order: equal
        for key in [k for k in alone if k.startswith(("valid_", "test_"))]:
            assert row[key] == pytest.approx(alone[key], rel=1e-6, abs=1e-9), (row["tokens"], key)
        assert row["flops"] == pytest.approx(alone["flops"])
    fpt = result["flops"] / result["tokens"]
    # C of a standalone run of each length; the compute actually spent: the trunk plus each branch's cooldown
    assert annealed[0]["flops_spent"] == pytest.approx(fpt * (5000 + 0), rel=0.05)
    assert result["flops_spent"] == pytest.approx(fpt * (20000 + 0.5 * 5000 + 0.5 * 10000), rel=0.05)
    # the planner's count of the same (it prices a branched run by what it spends; the loop overshoots a fork by
    # less than one batch)
    assert schedules.targets_spent(cfg) == 20000 + 0.5 * 5000 + 0.5 * 10000
    assert schedules.lengths(cfg) == [5000, 10000, 20000]


# (stop at call, what the checkpoint holds): ~300 targets a step; forks at 2,500 (branch 5,000) and 5,000 (branch
# 10,000); the trunk's evaluation point 0.35 T = 7,000 lies between the second fork and that branch's end
PHASES = {
    "warm-up": (1, lambda s: s["branch"] is None and s["tokens"] < 600),
    "trunk": (5, lambda s: s["branch"] is None and 600 < s["tokens"] < 2500),
    "first branch": (12, lambda s: s["branch"] == 5000),
    "trunk between branches": (22, lambda s: s["branch"] is None and 2500 < s["tokens"] < 5000),
    "second branch, past a trunk point": (40, lambda s: s["branch"] == 10000 and s["tokens"] > 7000),
    "after the last branch": (60, lambda s: s["branch"] is None and s["tokens"] > 10000),
}


@pytest.mark.parametrize("phase", PHASES)
def test_stopped_in_any_phase_resumes_to_the_same_rows(tiny, tmp_path, phase):
    cfg = tiny(train__tokens=20000, train__branches=[0.25, 0.5, 1.0], eval__points=[0.35, 0.5, 1.0], **WSD)
    train(cfg, tmp_path / "whole", progress=False)
    stop_at, holds = PHASES[phase]
    calls = {"n": 0}

    def stop_once():
        calls["n"] += 1
        return calls["n"] == stop_at

    assert train(cfg, tmp_path / "split", should_stop=stop_once, progress=False) is None
    blob = torch.load(tmp_path / "split" / identity.run_id(cfg) / "checkpoint.pt", weights_only=True)
    assert holds(blob["state"]), blob["state"]
    assert ("trunk" in blob) == (blob["state"]["branch"] is not None)  # a branch in flight keeps its trunk
    train(cfg, tmp_path / "split", progress=False)
    whole, split = _rows(tmp_path / "whole", cfg), _rows(tmp_path / "split", cfg)
    assert [(r["tokens"], r["annealed"]) for r in split] == [(r["tokens"], r["annealed"]) for r in whole]
    assert 7000 <= [r["tokens"] for r in whole][2] < 7500  # the trunk's 0.35 T row, after two branch rows
    for a, b in zip(whole, split):
        for key in [k for k in a if k.startswith(("valid_", "test_", "train_loss"))]:
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), (a["tokens"], key)


def test_wsd_schedule_warms_up_holds_and_cools_down():
    cfg = config.resolve(
        {
            "train.schedule": "wsd",
            "train.warmup_tokens": 100,
            "train.tokens": 1000,
            "train.decay": 0.2,
            "train.min_lr_ratio": 0.0,
            "train.decay_shape": "linear",
        }
    )
    assert lr_factor(0.05, cfg) == pytest.approx(0.5) and lr_factor(0.5, cfg) == 1.0
    assert lr_factor(0.9, cfg) == pytest.approx(0.5) and lr_factor(1.0, cfg) == pytest.approx(0.0)
    sqrt = {**cfg, "train.decay_shape": "1-sqrt"}
    assert lr_factor(0.85, sqrt) == pytest.approx(0.5)
    with pytest.raises(UserError, match="needs train.warmup_tokens"):
        config.resolve({"train.schedule": "wsd"})
    with pytest.raises(UserError, match="train.branches needs train.schedule = wsd"):
        config.resolve({"train.branches": [0.5, 1.0]})


def test_random_states_are_restored_whatever_device_the_weights_are_mapped_to(tiny, tmp_path):
    """A CUDA run's checkpoint is read onto its GPU; the random states must still be set from CPU tensors (the
    setters refuse others). Stand-in: a run whose device reads as `meta`, so that a load mapped to the run's
    device would give meta tensors."""
    from harness.run import checkpoint

    cfg = tiny(train__tokens=3000, model__dropout=0.3)
    calls = {"n": 0}

    def stop_after_two_steps():
        calls["n"] += 1
        return calls["n"] == 2

    assert train(cfg, tmp_path, should_stop=stop_after_two_steps, progress=False) is None
    saved = torch.load(tmp_path / identity.run_id(cfg) / "checkpoint.pt", weights_only=True)["rng"][0]
    run = Run(cfg, tmp_path)
    run.device = torch.device("meta")
    torch.manual_seed(12345)
    state, _ = checkpoint.read(run)
    assert state.tokens > 0 and state.device == "cpu"
    assert torch.equal(torch.get_rng_state(), saved["torch"])
    assert torch.equal(run.sampler.generator.get_state(), saved["sampler"])


def test_a_cooldown_shorter_than_a_few_steps_is_refused(tiny, tmp_path):
    """A batch that crosses a fork could also cross the branch's end: no cooldown step, and an annealed row that
    is not annealed. Such branches are refused before anything trains."""
    cfg = tiny(train__tokens=20000, train__branches=[0.05, 1.0], **WSD)  # cooldown 500 targets < 4 steps
    with pytest.raises(UserError, match="cooldown of the branch at T_i = 1000 is 500 targets"):
        Run(cfg, tmp_path)
    assert not (tmp_path / identity.run_id(cfg)).exists()
