"""Time to quality: wall time for a config's model to reach a validation metric on its dataset.

Trains the config exactly as `srt-scale train` does (same batches, learning-rate schedule over its T) and
evaluates the validation split every `--every` training targets; stops at the first evaluation reaching the
goal. Reports the training time, the training + evaluation time, and the setup time (dataset and text features,
from cache when warm) separately.

    python benchmarks/bench_time_to_quality.py                           # configs/ml100k.yaml, NDCG@10 >= 0.05
    python benchmarks/bench_time_to_quality.py --set features.kind=id --goal 0.08
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import report

from harness.core import config
from harness.run import Loop, Run

ROOT = Path(__file__).parent.parent


def measure(cfg: dict, metric: str, goal: float, every: int) -> dict:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        run = Run(cfg, out)
        setup = time.perf_counter() - t0
        loop, T = Loop(run), cfg["train.tokens"]  # the run's own loop: same batches, schedule and trimming at T
        state, eval_s, curve, reached = loop.state, 0.0, [], None
        while state.tokens < T and reached is None:
            loop.advance(min(T, state.tokens + every), T)
            s = time.perf_counter()
            value = run.evaluate("valid")[f"valid_{metric}"]
            run.model.train()
            eval_s += time.perf_counter() - s
            curve.append((state.tokens, state.train_s, value))
            reached = value if value >= goal else None
    return {
        "metric": metric,
        "goal": goal,
        "reached": reached,
        "tokens": state.tokens,
        "steps": state.steps,
        "epochs": state.tokens / run.examples.targets_per_epoch,
        "train_s": state.train_s,
        "train_eval_s": state.train_s + eval_s,
        "setup_s": setup,
        "targets_per_s": state.tokens / state.train_s,
        "curve": curve,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "ml100k.yaml"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--metric", default="ndcg@10")
    p.add_argument("--goal", type=float, default=0.05)
    p.add_argument("--every", type=int, default=25000, help="evaluate every this many training targets")
    a = p.parse_args()
    row = measure(config.load(a.config, a.set), a.metric, a.goal, a.every)
    row["config"] = a.config
    row["sets"] = a.set
    for tokens, seconds, value in row["curve"]:
        print(f"  {tokens:>10,} targets  {seconds:7.1f} s  valid {a.metric} {value:.4f}")
    report(
        "bench_time_to_quality",
        [row],
        [
            ("goal", "goal", ".3f"),
            ("reached", "reached", ".4f"),
            ("train_s", "train s", ".1f"),
            ("train_eval_s", "train+eval s", ".1f"),
            ("setup_s", "setup s", ".1f"),
            ("tokens", "targets", ",d"),
            ("epochs", "epochs", ".2f"),
            ("targets_per_s", "targets/s", ",.0f"),
        ],
    )


if __name__ == "__main__":
    main()
