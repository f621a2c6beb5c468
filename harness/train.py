"""One run: a resolved config -> a run directory (DESIGN.md section 5).

`<out>/<run_id>/` holds config.yaml, metrics.jsonl (one row per evaluation point), result.json (the final row,
written atomically last), checkpoint.pt and train.log. The budget is T = train.tokens supervised targets:
training stops after exactly T (the last batch is trimmed), however many epochs that is. A restarted run resumes
from its checkpoint and ends with the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import functools
import json
import math
import platform
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml
from tqdm import tqdm

from harness import __version__, accounting, checkpoint, config, evaluate, transfer
from harness.batches import TrainExamples, eval_inputs
from harness.data.prepare import Dataset, prepare
from harness.data.walks import training_sequences
from harness.errors import UserError
from harness.features import build_extractor
from harness.io import write_json, write_text
from harness.losses import NegativeSampler, training_loss
from harness.progress import PROGRESS_EVERY_S, PROGRESS_FILE
from harness.tracking import Tracker
from harness.model import SRT, build_model

FINISHED = ("done", "diverged")


def lr_factor(progress: float, cfg: dict) -> float:
    """Learning-rate multiplier at `progress` = tokens / T in [0, 1]."""
    warm = cfg["train.warmup"]
    kind = cfg["train.schedule"]
    if kind == "onecycle":  # from peak/25 up to peak, then cosine down to peak/1e4
        if progress < warm:
            return 1 / 25 + (1 - 1 / 25) * progress / warm
        lo = 1e-4
    else:
        if progress < warm:
            return progress / warm
        if kind == "constant":
            return 1.0
        lo = cfg["train.min_lr_ratio"]
    t = (progress - warm) / max(1 - warm, 1e-12)
    return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def _optimizer(model: SRT, cfg: dict) -> torch.optim.AdamW:
    tables = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2 and id(p) not in tables]
    rest = [p for p in params if p.dim() < 2 or id(p) in tables]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg["train.weight_decay"]},
                              {"params": rest, "weight_decay": 0.0}], lr=cfg["train.lr"], betas=(0.9, 0.98))


def _device(cfg: dict) -> torch.device:
    want = cfg["train.device"]
    if want == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device = cuda: no CUDA device available")
    device = torch.device("cuda" if want == "cuda" or (want == "auto" and torch.cuda.is_available()) else "cpu")
    if cfg["train.precision"] == "bf16" and device.type != "cuda":
        raise UserError("train.precision = bf16 needs a CUDA device (train.device)")
    return device


class Run:
    """Everything one training run needs, built from a resolved config."""

    def __init__(self, cfg: dict, out: str | Path):
        self.cfg, self.id = cfg, config.run_id(cfg)
        self.dir = Path(out) / self.id
        self.device = _device(cfg)
        if cfg["train.threads"]:
            torch.set_num_threads(cfg["train.threads"])
        self.data: Dataset = prepare(cfg)[0]
        torch.manual_seed(cfg["train.seed"])
        self.model = build_model(cfg, build_extractor(cfg, self.data)).to(self.device)
        self.examples = TrainExamples(*training_sequences(self.data, cfg), self.data.n_items, cfg["model.context"],
                                      cfg["loss.supervision"],
                                      {k.split(".")[1]: cfg[k] for k in cfg if k.startswith("augment.")})
        if not len(self.examples):
            raise UserError(f"{cfg['data.name']}: no training targets (every user has fewer than 4 interactions)")
        popular = cfg["loss.sampler"] == "popularity"
        self.sampler = NegativeSampler(self.data.n_items, self.examples.item_counts if popular else None,
                                       torch.Generator().manual_seed(cfg["train.seed"] + 1))
        self.progressive, self.ewc, self.transferred = None, None, []
        if cfg["transfer.init_from"]:
            pre_cfg, state = transfer.pretrained(cfg["transfer.init_from"])
            self.transferred = transfer.load_weights(self.model, state, cfg["transfer.init_from"])
            if cfg["transfer.method"] == "progressive":
                self.progressive = transfer.Progressive(self.model, cfg["transfer.unfreeze_until"])
            elif cfg["transfer.method"] == "ewc":
                fisher = transfer.fisher(pre_cfg, state, self.transferred, cfg["transfer.fisher_sequences"])
                self.ewc = transfer.EWC(self.model, {n: state[n].to(self.device) for n in self.transferred},
                                        {n: f.to(self.device) for n, f in fisher.items()}, cfg["transfer.ewc_lambda"])
        self.optimizer = _optimizer(self.model, cfg)
        self.params = accounting.count_params(self.model)
        self.flops_per_target = accounting.flops_per_target(cfg, self.data.n_items,
                                                            self.model.extractor.train_flops_per_item)
        users = None
        if cfg["eval.max_users"] and cfg["eval.max_users"] < self.data.n_users:
            users = np.sort(np.random.default_rng(0).choice(self.data.n_users, cfg["eval.max_users"], replace=False))
        self.eval_sets = {s: eval_inputs(self.data, s, cfg["model.context"], users) for s in ("valid", "test")}
        self.target_kl = self.examples.target_kl(self.eval_sets["valid"][1].numpy(), self.data.n_items)

    def static_columns(self) -> dict:
        c = self.cfg
        return {"run_id": self.id, **self.params, "negatives": c["loss.negatives"], "d_model": c["model.d_model"],
                "n_layers": c["model.n_layers"], "n_heads": c["model.n_heads"], "d_ff": c["model.d_ff"],
                "n_items": self.data.n_items, "n_users": self.data.n_users, "target_kl": self.target_kl}

    def step(self, inputs: torch.Tensor, targets: torch.Tensor, lr: float) -> tuple[float, int]:
        """One optimizer step on a batch (inputs, targets: (B, context) ids, 0 = none) at learning rate `lr`.
        Returns (loss, number of targets); a non-finite loss is returned without updating the model."""
        cfg, model = self.cfg, self.model
        n = int((targets != 0).sum())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self.loss(inputs, targets)
        if not torch.isfinite(loss):
            return loss.item(), n
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg["train.grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["train.grad_clip"])
        self.optimizer.step()
        return loss.item(), n

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch (inputs, targets: (B, context) ids, 0 = none), with the EWC penalty."""
        cfg, model = self.cfg, self.model
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        mask = targets != 0
        use_catalog, _ = accounting.embedding_rows(len(inputs), cfg["model.context"], int(mask.sum()),
                                                   cfg["loss.negatives"], cfg["loss.shared_negatives"],
                                                   self.data.n_items)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg["train.precision"] == "bf16"):
            items = model.extractor.all_items() if use_catalog else None
            h = model.encode(inputs, items)
            loss = training_loss(model, h[mask], targets[mask], items, cfg, self.sampler)
        return loss + self.ewc.penalty() if self.ewc is not None else loss

    def evaluate(self, split: str) -> dict[str, float]:
        inputs, targets, history = self.eval_sets[split]
        m = evaluate.evaluate(self.model, inputs, targets, history if self.cfg["eval.exclude_seen"] else None,
                              self.cfg["eval.batch_users"], self.cfg["eval.chunk_items"])
        return {f"{split}_{k}": v for k, v in m.items()}


class _State:
    """Training progress that a checkpoint must restore for an exact resume."""

    def __init__(self) -> None:
        self.tokens, self.epoch, self.position, self.steps = 0, 0, 0, 0
        self.train_s, self.wall_s, self.loss_sum, self.loss_n = 0.0, 0.0, 0.0, 0
        self.rows: list[dict] = []

    def to_dict(self) -> dict:
        return dict(vars(self))


def _save_checkpoint(run: Run, state: _State) -> None:
    blob = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "sampler_rng": run.sampler.generator.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "state": checkpoint.plain(state.to_dict())}
    checkpoint.save(run.dir / "checkpoint.pt", blob)
    write_text(run.dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in state.rows))


def _load_checkpoint(run: Run) -> _State:
    state = _State()
    path = run.dir / "checkpoint.pt"
    if not path.exists():
        return state
    blob = checkpoint.load(path, run.device)
    run.model.load_state_dict(blob["model"])
    run.optimizer.load_state_dict(blob["optimizer"])
    run.sampler.generator.set_state(blob["sampler_rng"])
    torch.set_rng_state(blob["torch_rng"])
    if blob["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    vars(state).update(blob["state"])
    return state


def _log(run: Run, message: str) -> None:
    with open(run.dir / "train.log", "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


def trim_to_budget(targets: torch.Tensor, room: int) -> torch.Tensor:
    """Keep only the first `room` targets (row-major) so the run stops at exactly T."""
    mask = targets != 0
    over = mask.flatten().cumsum(0).view_as(mask) > room
    return targets.masked_fill(over, 0)


@functools.lru_cache(maxsize=1)
def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _environment() -> dict:
    return {"host": platform.node(), "torch": torch.__version__, "numpy": np.__version__, "srt_scale": __version__,
            "git_sha": _git_sha(), "threads": torch.get_num_threads()}


def train(cfg: dict, out: str | Path = "runs", should_stop: Callable[[], bool] | None = None,
          progress: bool = True) -> dict | None:
    """Train (or resume, or just read) the run for `cfg` under `out`. Returns the final row (result.json),
    or None when `should_stop()` returned True (a checkpoint was saved; calling again resumes)."""
    out = Path(out)
    result_path = out / config.run_id(cfg) / "result.json"
    if result_path.exists():
        result = json.loads(result_path.read_text())
        if result["status"] in FINISHED:
            return result
    run = Run(cfg, out)
    run.dir.mkdir(parents=True, exist_ok=True)
    write_text(run.dir / "config.yaml", yaml.safe_dump(config.unflatten(cfg), sort_keys=False))
    state, tracker = _State(), None
    try:  # from here on, a run that raises records why (status failed); one whose process dies records nothing
        state = _load_checkpoint(run)
        _log(run, f"{'resume at ' + str(state.tokens) if state.tokens else 'start'}: {run.static_columns()} "
                  f"dataset {run.data.root.name} C/target {run.flops_per_target:.4g}")
        tracker = Tracker(cfg, out, run.id, lambda message: _log(run, message))
        return _loop(run, state, should_stop, progress, tracker)
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        _log(run, f"failed: {error}")
        write_json(result_path, {**run.static_columns(), "status": "failed", "final": True, "error": error,
                                 "tokens": state.tokens})
        if tracker is not None:
            tracker.finish("failed", error)
        raise


def _record(run: Run, state: _State, peak: float, final: bool, diverged: str | None = None) -> str | None:
    """Append one evaluation row (validation metrics; test metrics too when final) to state.rows. Returns why
    the run diverged (`diverged` as given, or non-finite metrics), else None. A diverged row is final, with
    perplexity inf, the ranking metrics NaN (a non-finite model has no ranking) and where it happened."""
    tps = state.tokens / max(state.train_s, 1e-9)
    row = {**run.static_columns(), "final": final, "tokens": state.tokens,
           "flops": state.tokens * run.flops_per_target, "epochs": state.tokens / run.examples.targets_per_epoch,
           "wall_s": state.wall_s, "train_s": state.train_s, "targets_per_s": tps,
           "mfu": run.flops_per_target * tps / peak, "train_loss": state.loss_sum / max(state.loss_n, 1)}
    state.loss_sum, state.loss_n = 0.0, 0
    if diverged is None:
        metrics = run.evaluate("valid")
        if final:
            metrics.update(run.evaluate("test"))
        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
        if bad:
            diverged = f"non-finite {', '.join(bad)}"
        else:
            row.update(metrics)
    if diverged is not None:
        row.update({f"{split}_{m}": math.inf if m == "ppl" else math.nan
                    for split in ("valid", "test") for m in evaluate.METRICS})
        row.update(final=True, diverged_step=state.steps, diverged_tokens=state.tokens, diverged_reason=diverged)
    state.rows.append(row)
    _log(run, f"eval at {state.tokens} targets: " + ", ".join(
        f"{k}={v:.4g}" for k, v in row.items() if k.startswith(("valid_", "test_", "train_loss", "mfu"))))
    return diverged


def _loop(run: Run, state: _State, should_stop: Callable[[], bool] | None, progress: bool,
          tracker: Tracker) -> dict | None:
    cfg, model = run.cfg, run.model
    T, B = cfg["train.tokens"], cfg["train.batch_size"]
    points = [p for p in cfg["eval.points"] if p * T > state.tokens]
    bf16 = cfg["train.precision"] == "bf16"
    peak = accounting.matmul_peak(run.device.type, torch.bfloat16 if bf16 else torch.float32)
    bar = tqdm(total=T, initial=state.tokens, unit="tgt", unit_scale=True, disable=not progress,
               desc=run.id, dynamic_ncols=True)
    model.train()
    start = last_ckpt = last_progress = time.perf_counter()
    wall0, diverged = state.wall_s, None

    def clock() -> None:
        state.wall_s = wall0 + time.perf_counter() - start

    def checkpoint() -> None:
        nonlocal last_ckpt
        clock()
        _save_checkpoint(run, state)
        last_ckpt = time.perf_counter()

    while state.tokens < T and not diverged:
        order = run.examples.epoch_order(cfg["train.seed"], state.epoch)
        while state.position < len(order) and state.tokens < T:
            t0 = time.perf_counter()
            inputs, targets = run.examples.batch(order[state.position: state.position + B])
            targets = trim_to_budget(targets, T - state.tokens)
            if run.progressive is not None:
                run.progressive.apply(state.tokens / T)
            loss, n = run.step(inputs, targets, cfg["train.lr"] * lr_factor(state.tokens / T, cfg))
            if not math.isfinite(loss):
                diverged = f"training loss {loss} at step {state.steps + 1}"
                break
            state.steps += 1
            state.tokens += n
            state.position += B
            state.loss_sum += loss * n
            state.loss_n += n
            state.train_s += time.perf_counter() - t0
            bar.update(n)
            while points and state.tokens >= points[0] * T:
                points.pop(0)
                clock()
                diverged = _record(run, state, peak, final=state.tokens >= T)  # evaluate() restores train mode
                tracker.row(state.rows[-1])
                if diverged:
                    break
                checkpoint()
            if diverged:
                break
            if should_stop is not None and should_stop():
                checkpoint()
                _log(run, f"stopped at {state.tokens} targets; checkpoint saved")
                tracker.stopped()
                bar.close()
                return None
            if time.perf_counter() - last_ckpt > cfg["train.checkpoint_every_s"]:
                checkpoint()
            if time.perf_counter() - last_progress > PROGRESS_EVERY_S:
                write_json(run.dir / PROGRESS_FILE, {"tokens": state.tokens, "T": T, "steps": state.steps})
                last_progress = time.perf_counter()
        if state.position >= len(order):
            state.epoch, state.position = state.epoch + 1, 0
    bar.close()
    if diverged:
        clock()
        _log(run, f"diverged at step {state.steps}, {state.tokens} targets: {diverged}")
        if not state.rows or "diverged_reason" not in state.rows[-1]:
            _record(run, state, peak, final=True, diverged=diverged)
            tracker.row(state.rows[-1])
    status = "diverged" if diverged else "done"
    for row in state.rows:
        row["status"] = status
    checkpoint()
    result = {**state.rows[-1], **cfg, **_environment(),
              **{f"oracle_{k}": v for k, v in run.data.manifest.get("oracle", {}).items()}}
    write_json(run.dir / "result.json", result)
    tracker.finish(status)
    _log(run, f"{status}: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items()
                                        if k.startswith("test_") and isinstance(v, float)))
    return result
