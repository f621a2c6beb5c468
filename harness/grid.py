"""Grid YAML -> the resolved run configs of a sweep.

    base: quickstart.yaml          # a run config, relative to this file
    set: {train.lr: 0.002}         # overrides for every point (dotted keys)
    shape: {aspect: 32, head_dim: 32, ff_mult: 4, tolerance: 0.25}   # how n_params targets become shapes
    axes:                          # crossed (product)
      n_params: [3.0e+4, 1.0e+5]   # target N; the shape solver sets d_model, n_layers, n_heads, d_ff
      tokens: [1.0e+5, 3.0e+5]     # T (train.tokens)
      negatives: [64, full]        # K (loss.negatives)
      features.kind: [st, id]      # any dotted config key
    zip:                           # zipped together (equal lengths), crossed with the axes
      train.lr: [0.002, 0.001]
      train.batch_size: [16, 32]
    seeds: [0, 1]                  # train.seed
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness import config, shapes
from harness.errors import UserError

ALIASES = {"tokens": "train.tokens", "negatives": "loss.negatives"}
TOP_KEYS = {"base", "set", "axes", "zip", "seeds", "shape"}
SHAPE_KEYS = ("model.d_model", "model.n_layers", "model.n_heads", "model.d_ff")


@dataclass
class Point:
    """One run of a grid: its resolved config, the axis values that made it, and the solved shape (if any)."""

    cfg: dict
    values: dict
    shape: shapes.Shape | None = None
    n_params_target: float | None = None
    run_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.run_id = config.run_id(self.cfg)


def _number(value: Any, where: str, integer: bool) -> float | int:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{where}: {value!r} is not a number") from None
    if integer:
        if x != int(x) or x < 1:
            raise UserError(f"{where}: {value!r} is not a positive integer")
        return int(x)
    if x <= 0:
        raise UserError(f"{where}: {value!r} is not positive")
    return x


def _axis_values(name: str, values: Any, where: str) -> list:
    if not isinstance(values, list) or not values:
        raise UserError(f"{where}: axis {name!r} must be a non-empty list")
    if name not in ("n_params", "seeds") and ALIASES.get(name, name) not in config.KEYS:
        raise UserError(f"{where}: unknown axis {name!r} (n_params, tokens, negatives, or a config key)")
    if name == "n_params":
        return [_number(v, f"{where}: n_params", integer=False) for v in values]
    if name in ("tokens", "train.tokens"):
        return [_number(v, f"{where}: {name}", integer=True) for v in values]
    return values


def load(path: str | Path) -> list[Point]:
    """Every point of the grid at `path`, resolved and validated, in a stable order (duplicates removed)."""
    path = Path(path)
    tree = config.load_yaml(path)
    lines = config.key_lines(yaml.compose(path.read_text()) or yaml.MappingNode("", []))
    at = lambda key: f"{path}:{lines[key]}" if key in lines else str(path)  # noqa: E731
    for key in tree:
        if key not in TOP_KEYS:
            raise UserError(f"{at(key)}: unknown grid key {key!r} (known: {', '.join(sorted(TOP_KEYS))})")
    if "base" not in tree:
        raise UserError(f"{path}: a grid needs 'base: <run config YAML>'")
    base_path = path.parent / str(tree["base"])
    base = config.flatten(config.load_yaml(base_path))
    fixed = config.flatten(tree.get("set") or {})
    for key in [*base, *fixed]:
        if key not in config.KEYS:
            raise UserError(f"{base_path if key in base else at('set')}: unknown key {key!r}")
    policy = shapes.check_policy(tree.get("shape") or {}, at("shape"))
    axes = {name: _axis_values(name, v, at(f"axes.{name}")) for name, v in (tree.get("axes") or {}).items()}
    zipped = {name: _axis_values(name, v, at(f"zip.{name}")) for name, v in (tree.get("zip") or {}).items()}
    if len({len(v) for v in zipped.values()}) > 1:
        raise UserError(f"{at('zip')}: zipped axes must have equal lengths")
    seeds = _axis_values("seeds", tree.get("seeds", [None]), at("seeds"))
    sized = "n_params" in axes or "n_params" in zipped
    if sized and any(k in {**fixed, **axes, **zipped} for k in SHAPE_KEYS):
        raise UserError(f"{path}: the n_params axis sets {', '.join(SHAPE_KEYS)}; do not set them too")

    zip_rows = [dict(zip(zipped, row)) for row in zip(*zipped.values())] or [{}]
    points, seen = [], set()
    for combo in itertools.product(*axes.values()):
        for zrow in zip_rows:
            for seed in seeds:
                values = {**dict(zip(axes, combo)), **zrow, **({"seeds": seed} if seed is not None else {})}
                point = _point(values, base, fixed, policy, path)
                if point.run_id not in seen:
                    seen.add(point.run_id)
                    points.append(point)
    return points


def _point(values: dict, base: dict, fixed: dict, policy: dict, path: Path) -> Point:
    overrides = {**base, **fixed}
    for name, v in values.items():
        if name == "seeds":
            overrides["train.seed"] = v
        elif name != "n_params":
            overrides[ALIASES.get(name, name)] = v
    label = f"{path} point {values}"
    shape, target = None, values.get("n_params")
    if target is not None:
        shape = shapes.solve(target, config.resolve(overrides, source=label), policy, source=f"{path}")
        overrides.update({"model.d_model": shape.d_model, "model.n_layers": shape.n_layers,
                          "model.n_heads": shape.n_heads, "model.d_ff": shape.d_ff})
    cfg = config.resolve(overrides, source=label)
    one_batch = cfg["train.batch_size"] * (cfg["model.context"] if cfg["loss.supervision"] == "all" else 1)
    if cfg["train.tokens"] < one_batch:
        raise UserError(f"{label}: train.tokens = {cfg['train.tokens']} is smaller than one batch "
                        f"({one_batch} targets)")
    return Point(cfg, values, shape, target)
