"""Everything one training run needs, built from a resolved config: device, dataset, model, examples, negative
sampler, optimizer, evaluation sets, and (transfer.*) the pretrained weights it starts from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harness.core.errors import UserError
from harness.core.schema import RUN_COLUMNS
from harness.data.prepare import Dataset, prepare
from harness.data.walks import training_sequences
from harness.model import accounting, evaluate, schedules
from harness.model.features import build_extractor
from harness.model.losses import NegativeSampler, training_loss
from harness.model.srt import SRT, build_model
from harness.run import identity, transfer
from harness.run.batches import TrainExamples, eval_inputs
from harness.run.distributed import Group, from_environment, rank_seed


def _optimizer(model: SRT, cfg: dict) -> torch.optim.AdamW:
    tables = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2 and id(p) not in tables]
    rest = [p for p in params if p.dim() < 2 or id(p) in tables]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg["train.weight_decay"]}, {"params": rest, "weight_decay": 0.0}],
        lr=cfg["train.lr"],
        betas=(0.9, 0.98),
    )


def _device(cfg: dict, group: Group) -> torch.device:
    want = cfg["train.device"]
    if want == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device = cuda: no CUDA device available")
    cuda = want == "cuda" or (want == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{group.local_rank}" if cuda else "cpu")
    if cfg["train.precision"] == "bf16" and device.type != "cuda":
        raise UserError("train.precision = bf16 needs a CUDA device (train.device)")
    return device


class Run:
    """Everything one training run needs, built from a resolved config (the same on every rank)."""

    def __init__(self, cfg: dict, out: str | Path, group: Group | None = None):
        self.cfg, self.id = cfg, identity.run_id(cfg)
        self.dir = Path(out) / self.id
        schedules.check_cooldowns(cfg, f"run {self.id}")
        self.group = group or from_environment()
        self.device = _device(cfg, self.group)
        if cfg["train.threads"]:
            torch.set_num_threads(cfg["train.threads"])
        self.data: Dataset = prepare(cfg)[0]
        torch.manual_seed(cfg["train.seed"])
        self.model = build_model(cfg, build_extractor(cfg, self.data)).to(self.device)  # the same on every rank
        self.examples = TrainExamples(
            *training_sequences(self.data, cfg),
            self.data.n_items,
            cfg["model.context"],
            cfg["loss.supervision"],
            {k.split(".")[1]: cfg[k] for k in cfg if k.startswith("augment.")},
        )
        if not len(self.examples):
            raise UserError(f"{cfg['data.name']}: no training targets (every user has fewer than 4 interactions)")
        popular = cfg["loss.sampler"] == "popularity"
        self.sampler = NegativeSampler(
            self.data.n_items,
            self.examples.item_counts if popular else None,
            # shared negatives: one set per global batch, the same on every rank; per-target: each rank its own
            torch.Generator().manual_seed(
                cfg["train.seed"] + 1
                if cfg["loss.shared_negatives"]
                else rank_seed(cfg["train.seed"] + 1, self.group.rank)
            ),
        )
        self.progressive, self.ewc, self.transferred = None, None, []
        if cfg["transfer.init_from"]:
            pre_cfg, state = transfer.pretrained(cfg["transfer.init_from"])
            self.transferred = transfer.load_weights(self.model, state, cfg["transfer.init_from"])
            if cfg["transfer.method"] == "progressive":
                self.progressive = transfer.Progressive(self.model, cfg["transfer.unfreeze_until"])
            elif cfg["transfer.method"] == "ewc":
                pre = Run({**pre_cfg, "transfer.init_from": None}, "unused", Group())
                fisher = transfer.fisher(pre, state, self.transferred, cfg["transfer.fisher_sequences"])
                self.ewc = transfer.EWC(
                    self.model,
                    {n: state[n].to(self.device) for n in self.transferred},
                    {n: f.to(self.device) for n, f in fisher.items()},
                    cfg["transfer.ewc_lambda"],
                )
        self.optimizer = _optimizer(self.model, cfg)
        self.params = accounting.count_params(self.model)
        self.flops_per_target = accounting.flops_per_target(
            cfg, self.data.n_items, self.model.extractor.train_flops_per_item
        )
        users = None
        if cfg["eval.max_users"] and cfg["eval.max_users"] < self.data.n_users:
            users = np.sort(np.random.default_rng(0).choice(self.data.n_users, cfg["eval.max_users"], replace=False))
        self.eval_sets = {s: eval_inputs(self.data, s, cfg["model.context"], users) for s in ("valid", "test")}
        self.oracle = self.data.oracle_figures(users)  # the ceiling on the evaluated users (synthetic worlds)
        self.target_kl = self.examples.target_kl(self.eval_sets["valid"][1].numpy(), self.data.n_items)
        if self.group.rank:  # dropout: each other rank its own stream (rank 0 goes on with a one-process run's)
            torch.manual_seed(rank_seed(cfg["train.seed"], self.group.rank))

    def static_columns(self) -> dict:
        """The results columns that are fixed for this run (schema.RUN_COLUMNS)."""
        c = self.cfg
        values = {
            "run_id": self.id,
            **self.params,
            "negatives": c["loss.negatives"],
            "d_model": c["model.d_model"],
            "n_layers": c["model.n_layers"],
            "n_heads": c["model.n_heads"],
            "d_ff": c["model.d_ff"],
            "n_items": self.data.n_items,
            "n_users": self.data.n_users,
            "target_kl": self.target_kl,
        }
        return {k: values[k] for k in RUN_COLUMNS}

    def step(self, inputs: torch.Tensor, targets: torch.Tensor, lr: float) -> tuple[float, int]:
        """One optimizer step on a global batch (inputs, targets: (B, context) ids, 0 = none) at learning rate
        `lr`; each rank computes its share and the gradients are summed. Returns (mean loss over the batch's
        targets, number of targets); a non-finite loss is returned without updating the model."""
        cfg, model, group = self.cfg, self.model, self.group
        n = int((targets != 0).sum())
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        inputs, targets = group.shard(inputs), group.shard(targets)
        n_local = int((targets != 0).sum())
        loss = self.loss(inputs, targets) * (n_local / n) if n_local else torch.zeros((), device=self.device)
        if self.ewc is not None:  # once in the summed gradient: a 1/world share on every rank, whatever its targets
            loss = loss + self.ewc.penalty() / group.world
        if loss.requires_grad:
            loss.backward()
        params = [p for p in model.parameters() if p.requires_grad]
        total = group.sum_gradients(params, loss.detach())
        if not np.isfinite(total):
            return total, n
        if cfg["train.grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["train.grad_clip"])
        self.optimizer.step()
        return total, n

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch (inputs, targets: (B, context) ids, 0 = none), the mean over its targets
        (the EWC penalty is added by `step`)."""
        cfg, model = self.cfg, self.model
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        mask = targets != 0
        use_catalog, _ = accounting.embedding_rows(
            len(inputs),
            cfg["model.context"],
            int(mask.sum()),
            cfg["loss.negatives"],
            cfg["loss.shared_negatives"],
            self.data.n_items,
        )
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg["train.precision"] == "bf16"):
            items = model.extractor.all_items() if use_catalog else None
            h = model.encode(inputs, items)
            loss = training_loss(model, h[mask], targets[mask], items, cfg, self.sampler)
        return loss

    def evaluate(self, split: str) -> dict[str, float]:
        inputs, targets, history = self.eval_sets[split]
        m = evaluate.evaluate(
            self.model,
            inputs,
            targets,
            history if self.cfg["eval.exclude_seen"] else None,
            self.cfg["eval.batch_users"],
            self.cfg["eval.chunk_items"],
        )
        return {f"{split}_{k}": v for k, v in m.items()}
