"""Learning-rate schedules (`train.schedule`): the multiplier of `train.lr` at `progress` = tokens / T in [0, 1].
Registered in harness/core/registry.py."""

from __future__ import annotations

import math

from harness.core.errors import UserError
from harness.core.registry import SCHEDULES

MIN_COOLDOWN_STEPS = 3  # a cooldown branch spans at least this many optimizer steps


def _cosine_from(progress: float, warm: float, lo: float) -> float:
    t = (progress - warm) / max(1 - warm, 1e-12)
    return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def cosine(progress: float, cfg: dict) -> float:
    """Linear warmup over `train.warmup`, then cosine down to `train.min_lr_ratio`."""
    warm = cfg["train.warmup"]
    return progress / warm if progress < warm else _cosine_from(progress, warm, cfg["train.min_lr_ratio"])


def onecycle(progress: float, cfg: dict) -> float:
    """From peak/25 up to peak over `train.warmup`, then cosine down to peak/1e4."""
    warm = cfg["train.warmup"]
    return 1 / 25 + (1 - 1 / 25) * progress / warm if progress < warm else _cosine_from(progress, warm, 1e-4)


def constant(progress: float, cfg: dict) -> float:
    """Linear warmup over `train.warmup`, then the peak."""
    warm = cfg["train.warmup"]
    return progress / warm if progress < warm else 1.0


def wsd(progress: float, cfg: dict) -> float:
    """Warmup-stable-decay (Hägele et al. 2024): linear warmup over `train.warmup_tokens` targets (a fixed number,
    so a cooldown branch at T_i is exactly the standalone run of length T_i), the peak, then over the last
    `train.decay` fraction of T a decay to `train.min_lr_ratio`, linear or 1-sqrt (`train.decay_shape`)."""
    t = progress * cfg["train.tokens"]
    warm = min(1.0, t / cfg["train.warmup_tokens"]) if cfg["train.warmup_tokens"] else 1.0
    x = min(1.0, max(0.0, (progress - (1 - cfg["train.decay"])) / cfg["train.decay"]))
    g = 1 - x if cfg["train.decay_shape"] == "linear" else 1 - math.sqrt(x)
    lo = cfg["train.min_lr_ratio"]
    return min(warm, lo + (1 - lo) * g)


def lengths(cfg: dict) -> list[int]:
    """The run lengths (targets) a run records as trained-to-completion rows: its cooldown branch ends and T
    (wsd with `train.branches`), else just T."""
    T = cfg["train.tokens"]
    return sorted({round(f * T) for f in cfg["train.branches"] or []} | {T})


def targets_spent(cfg: dict) -> int:
    """Targets a run actually trains: the trunk's T (its own cooldown ends it) plus each branch's cooldown, from
    its fork at round((1 - decay) T_i) to T_i."""
    *branches, T = lengths(cfg)
    return T + sum(e - fork(cfg, e) for e in branches)


def fork(cfg: dict, length: int) -> int:
    """Where the cooldown branch that ends at `length` targets leaves the trunk: round((1 - decay) length)."""
    return round((1 - cfg["train.decay"]) * length)


def max_targets_per_step(cfg: dict) -> int:
    """The most targets one optimizer step can train: every slot of the batch's windows (supervision all) or one
    per example (last)."""
    return cfg["train.batch_size"] * (cfg["model.context"] if cfg["loss.supervision"] == "all" else 1)


def cooldown_too_short(cfg: dict, length: int) -> bool:
    """Whether the cooldown branch ending at `length` targets (from its fork to `length`) spans fewer than
    MIN_COOLDOWN_STEPS steps of the most targets a step can take: the trunk's batch that passes the fork could
    cross it, leaving the branch no cooldown step and an `annealed` row that is not annealed."""
    return length - fork(cfg, length) < MIN_COOLDOWN_STEPS * max_targets_per_step(cfg)


def check_cooldowns(cfg: dict, where: str) -> None:
    """UserError unless no cooldown branch is too short (cooldown_too_short). A cooldown is decay x T_i, so only
    the shortest branch can be."""
    *branches, _ = lengths(cfg)
    if branches and cooldown_too_short(cfg, shortest := min(branches)):
        need = MIN_COOLDOWN_STEPS * max_targets_per_step(cfg)
        raise UserError(
            f"{where}: train.branches: the cooldown of the branch at T_i = {shortest} is "
            f"{shortest - fork(cfg, shortest)} targets (train.decay x T_i), under {MIN_COOLDOWN_STEPS} steps of up "
            f"to {max_targets_per_step(cfg)} targets (train.batch_size x model.context); raise the smallest branch "
            f"to >= {math.ceil(need / cfg['train.decay'])} targets or the decay"
        )


def lr_factor(progress: float, cfg: dict) -> float:
    """The configured schedule's multiplier at `progress`."""
    return SCHEDULES.get(cfg["train.schedule"])(progress, cfg)
