"""Pretrain on catalog A, fine-tune on catalog B (another synthetic world with a different item count): weights
carry over, progressive unfreezing freezes what it should, EWC keeps weights nearer their anchors."""

import math

import pytest
import torch

from harness.core import config
from harness.core.errors import UserError
from harness.data.prepare import dataset_key
from harness.run import Run, identity, train, transfer
from harness.sweep import sweep

CATALOG_B = {"data__synthetic__n_items": 150, "data__synthetic__seed": 5}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    from conftest import TINY

    cfg = config.resolve({**TINY, "features.kind": "st"})
    out = tmp_path_factory.mktemp("pre")
    train(cfg, out, progress=False)
    run_dir = out / identity.run_id(cfg)
    return run_dir, torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def distance(model, state, names):
    params = dict(model.named_parameters())
    return sum(float(((params[n].detach() - state[n]) ** 2).sum()) for n in names)


def test_checkpoint_from_catalog_a_loads_and_trains_on_catalog_b(tiny, pretrained, tmp_path):
    run_dir, state = pretrained
    cfg = tiny(features__kind="st", transfer__init_from=str(run_dir), **CATALOG_B)
    run = Run(cfg, tmp_path)
    assert run.data.n_items > 120 and "extractor.adapter.weight" in run.transferred
    assert len(run.transferred) == len(list(run.model.named_parameters()))  # st: nothing is catalog-specific
    assert distance(run.model, state, run.transferred) == 0
    result = train(cfg, tmp_path, progress=False)
    assert result["status"] == "done" and math.isfinite(result["test_ppl"])
    scratch = train(tiny(features__kind="st", **CATALOG_B), tmp_path, progress=False)
    assert result["test_ppl"] != scratch["test_ppl"]


def test_id_tables_start_fresh(tiny, tmp_path_factory):
    from conftest import TINY

    pre = config.resolve({**TINY, "features.kind": "id"})
    out = tmp_path_factory.mktemp("pre_id")
    train(pre, out, progress=False)
    run = Run(tiny(features__kind="id", transfer__init_from=str(out / identity.run_id(pre)), **CATALOG_B), out)
    assert "extractor.table.weight" not in run.transferred and run.transferred
    assert run.model.extractor.table.weight.shape[0] == run.data.n_items + 1 > 121


def test_progressive_unfreezing_from_the_top(tiny, pretrained, tmp_path):
    run_dir, state = pretrained
    cfg = tiny(
        features__kind="st",
        model__n_layers=2,
        transfer__init_from=str(run_dir),
        transfer__method="progressive",
        transfer__unfreeze_until=0.5,
        **CATALOG_B,
    )
    with pytest.raises(UserError, match="blocks.1.qkv.weight is"):  # the pretraining run has one block
        Run(cfg, tmp_path)
    cfg = tiny(
        features__kind="st",
        transfer__init_from=str(run_dir),
        transfer__method="progressive",
        transfer__unfreeze_until=0.5,
        **CATALOG_B,
    )
    run = Run(cfg, tmp_path)
    assert run.progressive.apply(0.0) == 1  # groups: [final norm + block 0], [positions + extractor]
    assert not run.model.extractor.adapter.weight.requires_grad and run.model.blocks[0].qkv.weight.requires_grad
    inputs, targets = run.examples.batch(torch.arange(32))
    run.step(inputs, targets, 1e-3)
    assert torch.equal(run.model.extractor.adapter.weight, state["extractor.adapter.weight"])
    assert not torch.equal(run.model.blocks[0].qkv.weight, state["blocks.0.qkv.weight"])
    assert run.progressive.apply(0.49) == 1 and run.progressive.apply(0.5) == 2
    assert all(p.requires_grad for p in run.model.parameters())
    assert train(cfg, tmp_path, progress=False)["status"] == "done"


def test_ewc_keeps_weights_near_the_pretrained_ones(tiny, pretrained, tmp_path):
    run_dir, state = pretrained
    moved = {}
    for method, lam in (("full", 0.0), ("ewc", 1e4)):
        cfg = tiny(
            features__kind="st",
            transfer__init_from=str(run_dir),
            transfer__method=method,
            transfer__ewc_lambda=lam,
            **CATALOG_B,
        )
        run = Run(cfg, tmp_path)
        if method == "ewc":
            assert float(run.ewc.penalty().detach()) == 0.0
            assert all((f >= 0).all() for _, _, f in run.ewc.terms)
            assert sum(float(f.sum()) for _, _, f in run.ewc.terms) > 0
        order = torch.randperm(len(run.examples), generator=torch.Generator().manual_seed(0))
        for b in range(20):
            run.step(*run.examples.batch(order[b * 32 : (b + 1) * 32]), 1e-3)
        moved[method] = distance(run.model, state, run.transferred)
    assert moved["ewc"] < 0.5 * moved["full"]


def test_init_from_a_config_trains_the_pretraining_run_once(tiny, tmp_path):
    import yaml
    from conftest import TINY

    from harness.core.io import cache_dir

    pre = tmp_path / "pre.yaml"
    pre.write_text(
        yaml.safe_dump(config.unflatten(config.resolve({**TINY, "features.kind": "st", "train.tokens": 2000})))
    )
    cfg = tiny(features__kind="st", transfer__init_from=str(pre), **CATALOG_B)
    with pytest.raises(UserError, match="its pretraining run has not been trained"):
        Run(cfg, tmp_path)  # a run never launches another run: the sweep or CLI layer pretrains first
    from harness.plan import throughput

    assert throughput.measure(cfg, 1)["step_s"] > 0  # a sweep is planned (its runs timed) before it pretrains
    sweep.pretrain(cfg)
    run = Run(cfg, tmp_path)
    pre_dir = cache_dir() / "pretrained" / dataset_key(config.load(pre)) / identity.run_id(config.load(pre))
    assert identity.pretrained_dir(pre) == pre_dir  # a changed world (content, generator version) pretrains anew
    assert (pre_dir / "result.json").exists() and run.transferred
    stamp = (pre_dir / "checkpoint.pt").stat().st_mtime_ns
    sweep.pretrain(cfg)
    assert (pre_dir / "checkpoint.pt").stat().st_mtime_ns == stamp  # trained once


def test_an_edited_pretraining_config_gives_its_fine_tunes_new_ids(tiny, tmp_path):
    import yaml
    from conftest import TINY

    pre = tmp_path / "pre.yaml"
    write = lambda tokens: pre.write_text(  # noqa: E731
        yaml.safe_dump(config.unflatten(config.resolve({**TINY, "features.kind": "st", "train.tokens": tokens})))
    )
    write(2000)
    cfg = tiny(features__kind="st", transfer__init_from=str(pre), **CATALOG_B)
    first = identity.run_id(cfg)
    assert identity.run_id(cfg) == first
    write(3000)  # the same path, another pretraining run: the fine-tune is another run and trains again
    assert identity.run_id(cfg) != first


def test_a_pretraining_run_that_is_not_done_is_refused(tiny, pretrained, tmp_path):
    import json
    import shutil

    run_dir, _ = pretrained
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    cfg = tiny(features__kind="st", transfer__init_from=str(copy), **CATALOG_B)
    result = json.loads((copy / "result.json").read_text())
    (copy / "result.json").write_text(json.dumps({**result, "status": "diverged"}))
    with pytest.raises(UserError, match="is not done \\(status diverged\\)"):
        Run(cfg, tmp_path / "runs")
    (copy / "result.json").unlink()  # stopped part-way: a checkpoint but no result
    with pytest.raises(UserError, match="has not finished"):
        Run(cfg, tmp_path / "runs")


def test_progressive_unfreezing_trains_the_fresh_catalog_tables_from_the_start(tiny, pretrained, tmp_path):
    """id / tokens tables are the new catalog's own and start untrained: no unfreezing group holds them back."""
    run_dir, _ = pretrained
    cfg = tiny(features__kind="id", transfer__init_from=str(run_dir), transfer__method="progressive", **CATALOG_B)
    run = Run(cfg, tmp_path)
    assert run.progressive.apply(0.0) == 1
    tables = [p for name, p in run.model.named_parameters() if name.startswith(transfer.CATALOG_SPECIFIC)]
    assert tables and all(p.requires_grad for p in tables)
    assert not any(p.requires_grad for p in run.model.position.parameters())  # the input side waits its turn
