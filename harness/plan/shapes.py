"""Shape solver: a target non-embedding parameter count N -> (d_model, n_layers, n_heads, d_ff).

Aspect policy (grid `shape:` section): d_model = aspect x n_layers rounded to a multiple of head_dim (at least
one head), n_heads = d_model / head_dim, d_ff = ff_mult x d_model. Among n_layers = 1, 2, ... the shape whose N
is closest to the target (in log ratio) wins; a target further than `tolerance` (relative) from every shape is
refused. N is counted exactly as `accounting.count_params` counts a built model (a test checks this).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.core.errors import UserError
from harness.core.registry import EXTRACTORS

POLICY_DEFAULTS = {"aspect": 32, "head_dim": 32, "ff_mult": 4, "tolerance": 0.25, "max_layers": 48}


@dataclass(frozen=True)
class Shape:
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    n_params: int


def _linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


def adapter_params(cfg: dict, d: int) -> int:
    """Trainable adapter parameters of the configured extractor (0 for id: a table)."""
    adapter = EXTRACTORS.get(cfg["features.kind"]).adapter_for(cfg, d)
    return 0 if adapter is None else sum(p.numel() for p in adapter.parameters())


def n_params(cfg: dict, d: int, layers: int, d_ff: int) -> int:
    """N for a shape: per block qkv + output projection + FFN + two LayerNorms; final LayerNorm (pre-LN); adapter."""
    block = _linear(d, 3 * d) + _linear(d, d) + _linear(d, d_ff) + _linear(d_ff, d) + 4 * d
    final = 2 * d if cfg["model.norm"] == "pre" else 0
    return layers * block + final + adapter_params(cfg, d)


def check_policy(policy: dict, source: str) -> dict:
    unknown = set(policy) - set(POLICY_DEFAULTS)
    if unknown:
        raise UserError(f"{source}: unknown shape key {sorted(unknown)[0]!r} (known: {', '.join(POLICY_DEFAULTS)})")
    merged = {**POLICY_DEFAULTS, **policy}
    for key in ("aspect", "head_dim", "ff_mult", "max_layers"):
        if not isinstance(merged[key], (int, float)) or merged[key] <= 0:
            raise UserError(f"{source}: shape.{key} = {merged[key]!r}: expected a positive number")
    if not isinstance(merged["tolerance"], (int, float)) or merged["tolerance"] <= 0:
        raise UserError(f"{source}: shape.tolerance = {merged['tolerance']!r}: expected a positive number")
    return merged


def solve(target: float, cfg: dict, policy: dict, source: str = "grid") -> Shape:
    """The policy's shape closest to `target` non-embedding parameters."""
    hd, best = int(policy["head_dim"]), None
    for layers in range(1, int(policy["max_layers"]) + 1):
        d = max(hd, int(round(policy["aspect"] * layers / hd)) * hd)
        d_ff = int(policy["ff_mult"] * d)
        shape = Shape(d, layers, d // hd, d_ff, n_params(cfg, d, layers, d_ff))
        if best is None or abs(math.log(shape.n_params / target)) < abs(math.log(best.n_params / target)):
            best = shape
    error = best.n_params / target - 1
    if abs(error) > policy["tolerance"]:
        raise UserError(
            f"{source}: n_params = {target:.4g} cannot be reached within shape.tolerance = "
            f"{policy['tolerance']} (closest: d_model={best.d_model}, n_layers={best.n_layers}, "
            f"N={best.n_params:,}, {error:+.1%})"
        )
    return best
