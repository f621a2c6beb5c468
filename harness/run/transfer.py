"""Pretrain -> fine-tune (transfer.* keys): start a run from another run's checkpoint, on any catalog.

What carries over is everything that does not depend on the catalog: the transformer, the position parameters
and the extractor's adapter. The catalog's own parts never do: the frozen text vectors are not in a checkpoint,
and id tables and tokens tables (indexed by a catalog-specific word-piece vocabulary) start fresh.

Methods (one learning-rate schedule over the whole fine-tune, never restarted per stage):
- full: every parameter trains from the start;
- progressive: parameter groups are unfrozen from the top (final norm + last block) down to the input side
  (positions + extractor), one group at a time, evenly spaced in progress until `transfer.unfreeze_until` x T;
- ewc: elastic weight consolidation, loss + lambda / 2 * sum_i F_i (theta_i - theta*_i)^2 over the transferred
  parameters, F the diagonal empirical Fisher of the pretraining loss over `transfer.fisher_sequences` training
  examples of the pretraining run's own data.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.core import config
from harness.core.errors import UserError
from harness.core.io import read_result
from harness.run import checkpoint, identity

CATALOG_SPECIFIC = ("extractor.table.", "extractor.tables.")


def pretrained(source: str | Path) -> tuple[dict, dict]:
    """(config, model state) of the pretraining run named by `transfer.init_from` (a run directory or a run
    config YAML), read with weights_only; refused unless that run is done (not diverged, failed or part-way)."""
    run_dir = identity.pretrained_dir(source)
    ckpt, cfg_path = run_dir / "checkpoint.pt", run_dir / "config.yaml"
    if not ckpt.exists() or not cfg_path.exists():
        what = (
            "its pretraining run has not been trained (srt-scale train or sweep trains it first)"
            if Path(source).suffix in (".yaml", ".yml")
            else "not a run directory (needs checkpoint.pt and config.yaml)"
        )
        raise UserError(f"transfer.init_from = {source}: {what}")
    result = read_result(run_dir / "result.json")
    if result is None or result["status"] != "done":
        status = "no result.json: it has not finished" if result is None else f"status {result['status']}"
        raise UserError(
            f"transfer.init_from = {source}: the pretraining run in {run_dir} is not done ({status}); only a "
            "finished run's weights start a fine-tune"
        )
    return config.load(cfg_path), checkpoint.load(ckpt)["model"]


def load_weights(model: torch.nn.Module, state: dict, source: str) -> list[str]:
    """Copy the catalog-independent parameters of `state` into `model`; returns their names. A transferable
    parameter that is missing or has another shape is a user error (different architecture)."""
    loaded = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(CATALOG_SPECIFIC):
                continue
            if name not in state or state[name].shape != p.shape:
                have = tuple(state[name].shape) if name in state else "nothing"
                raise UserError(
                    f"transfer.init_from = {source}: {name} is {tuple(p.shape)} here but {have} in the "
                    "checkpoint (model.* and features.kind/adapter must match the pretraining run)"
                )
            p.copy_(state[name])
            loaded.append(name)
    return loaded


def groups(model: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
    """Unfreezing order: [final norm + last block], ..., [first block], [positions + extractor]. The catalog's own
    id / tokens tables are in no group: they start fresh, so they train from the first step."""
    blocks = list(model.blocks)
    fresh = {id(p) for name, p in model.named_parameters() if name.startswith(CATALOG_SPECIFIC)}
    out = [list(model.final_norm.parameters()) + list(blocks[-1].parameters())]
    out += [list(b.parameters()) for b in reversed(blocks[:-1])]
    out.append([p for p in [*model.position.parameters(), *model.extractor.parameters()] if id(p) not in fresh])
    return out


class Progressive:
    """Sets requires_grad by progress: group g trains once progress >= g / (G - 1) x until."""

    def __init__(self, model: torch.nn.Module, until: float):
        self.groups, self.until = groups(model), until

    def apply(self, progress: float) -> int:
        """Freeze / unfreeze for `progress` = tokens / T; returns the number of trainable groups."""
        n = len(self.groups)
        open_ = n if self.until == 0 else min(n, 1 + int(progress / self.until * (n - 1) + 1e-9))
        for g, params in enumerate(self.groups):
            for p in params:
                p.requires_grad_(g < open_)
        return open_


class EWC:
    """The penalty lambda / 2 * sum F (theta - theta*)^2 over the named parameters (anchors theta*, Fisher F)."""

    def __init__(
        self, model: torch.nn.Module, anchors: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor], lam: float
    ):
        params = dict(model.named_parameters())
        self.terms = [(params[n], anchors[n], fisher[n]) for n in fisher]
        self.lam = lam

    def penalty(self) -> torch.Tensor:
        return 0.5 * self.lam * sum((f * (p - a) ** 2).sum() for p, a, f in self.terms)


def fisher(pre, state: dict, names: list[str], sequences: int) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the pretraining loss: the mean over `sequences` pretraining examples (drawn
    with the pretraining seed; each a training window of one user) of the squared gradient of that example's
    loss, for each parameter in `names` (the model in eval mode: no dropout). `pre` is the pretraining run
    built from its config (a harness.run.Run), `state` its trained weights."""
    pre.model.load_state_dict(state)
    pre.model.eval()
    params = dict(pre.model.named_parameters())
    total = {n: torch.zeros_like(params[n]) for n in names}
    order = pre.examples.epoch_order(pre.cfg["train.seed"], 99)[:sequences]  # a fixed, seeded sample
    for i in order:
        inputs, targets = pre.examples.batch(i[None])
        pre.model.zero_grad(set_to_none=True)
        pre.loss(inputs, targets).backward()
        for n in names:
            if params[n].grad is not None:
                total[n] += params[n].grad.detach() ** 2
    return {n: t / len(order) for n, t in total.items()}
