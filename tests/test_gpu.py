"""The CUDA path, run where a GPU is present and skipped elsewhere (CI has none): a run stopped mid-trunk and
mid-branch resumes to the rows of an uninterrupted run, a bf16 autocast step trains, and full-catalog evaluation
on the GPU agrees with the CPU's. The device-independent pieces (random states set from CPU tensors whatever the
checkpoint was mapped to, per-rank streams, the gloo/NCCL group) are tested on the CPU in test_train.py and
test_distributed.py."""

import json

import pytest
import torch

from harness.model import evaluate
from harness.run import Run, identity, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# CUDA's embedding and SDPA backward are not deterministic: rows agree to float noise, not bit for bit
CUDA_REL = 1e-4
WSD = {"train__schedule": "wsd", "train__warmup_tokens": 600, "train__decay": 0.5, "train__min_lr_ratio": 0.0}


def _rows(out, cfg):
    return [json.loads(line) for line in (out / identity.run_id(cfg) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("stop_at", [5, 12], ids=["mid-trunk", "mid-branch"])
def test_a_stopped_cuda_run_resumes_to_the_uninterrupted_rows(tiny, tmp_path, stop_at):
    cfg = tiny(
        train__device="cuda", train__tokens=20000, train__branches=[0.25, 0.5, 1.0], eval__points=[0.5, 1.0], **WSD
    )
    train(cfg, tmp_path / "whole", progress=False)
    calls = {"n": 0}

    def stop_once():
        calls["n"] += 1
        return calls["n"] == stop_at

    assert train(cfg, tmp_path / "split", should_stop=stop_once, progress=False) is None
    train(cfg, tmp_path / "split", progress=False)
    whole, split = _rows(tmp_path / "whole", cfg), _rows(tmp_path / "split", cfg)
    assert [(r["tokens"], r["annealed"]) for r in split] == [(r["tokens"], r["annealed"]) for r in whole]
    for a, b in zip(whole, split):
        for key in [k for k in a if k.startswith(("valid_", "test_"))]:
            assert b[key] == pytest.approx(a[key], rel=CUDA_REL, abs=1e-6), (a["tokens"], key)


def test_a_bf16_step_trains(tiny, tmp_path):
    run = Run(tiny(train__device="cuda", train__precision="bf16"), tmp_path)
    order = torch.randperm(len(run.examples), generator=torch.Generator().manual_seed(0))
    losses = [run.step(*run.examples.batch(order[b * 32 : (b + 1) * 32]), 3e-3)[0] for b in range(30)]
    assert all(torch.isfinite(torch.tensor(losses))) and sum(losses[-5:]) < sum(losses[:5])


def test_evaluation_on_the_gpu_matches_the_cpu(tiny, tmp_path):
    run = Run(tiny(train__device="cuda"), tmp_path)
    inputs, targets, history = run.eval_sets["test"]
    on_gpu = evaluate.evaluate(run.model, inputs, targets, history)
    on_cpu = evaluate.evaluate(run.model.cpu(), inputs, targets, history)
    for key, value in on_cpu.items():
        assert on_gpu[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
