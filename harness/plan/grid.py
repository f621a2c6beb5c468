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
    replicates:                    # more seeds for chosen cells, so a run's noise is measured (analysis/noise.py)
      seeds: [2, 3]                #   train.seed of the copies (not among `seeds`)
      n_params: [3.0e+4]           #   the n_params values copied (default: the axis' smallest and largest)
    scale:                         # hyperparameters as functions of N: base * (N / n_ref) ** power
      train.lr: {base: 0.002, n_ref: 1.0e+5, power: -0.5}

An IsoFLOP design names compute budgets instead of N and T axes: per budget C, N values spread over `decades`
around a centre N_c(C) = n_params * (C / flops) ** exponent (or an explicit `n_params` list), and T solved from
the project's own C formula (harness/model/accounting.py) so each run lands on its budget:

    isoflop:
      flops: [1.0e+11, 3.0e+11, 1.0e+12]
      n_params: {count: 5, decades: 1.0, centre: {n_params: 1.0e+5, flops: 1.0e+11, exponent: 0.5}}
    axes: {negatives: [64, full]}  # crossed with every (budget, N) point
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.core import config
from harness.core.errors import UserError
from harness.data.prepare import dataset_summary
from harness.model import accounting, schedules
from harness.model.features import train_flops_per_item
from harness.plan import shapes
from harness.run import identity

ALIASES = {"tokens": "train.tokens", "negatives": "loss.negatives"}
TOP_KEYS = {"base", "set", "axes", "zip", "seeds", "replicates", "shape", "scale", "isoflop"}
SHAPE_KEYS = ("model.d_model", "model.n_layers", "model.n_heads", "model.d_ff")


@dataclass
class Point:
    """One run of a grid: its resolved config, the axis values that made it, and the solved shape (if any)."""

    cfg: dict
    values: dict
    shape: shapes.Shape | None = None
    n_params_target: float | None = None
    budget: float | None = None  # the IsoFLOP budget C this run was solved for
    run_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.run_id = identity.run_id(self.cfg)


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


def _common(path: Path):
    """The parts of a grid every point shares: its tree, a key -> 'file:line' locator, the base config, the `set`
    overrides and the shape policy (validated)."""
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
    return tree, at, base, fixed, shapes.check_policy(tree.get("shape") or {}, at("shape"))


def shape_for(path: str | Path, target: float) -> shapes.Shape:
    """The shape of the grid at `path` (its base, `set` and shape policy) closest to N = `target`, however far."""
    path = Path(path)
    _, _, base, fixed, policy = _common(path)
    return shapes.solve(
        target,
        config.resolve({**base, **fixed}, source=str(path)),
        {**policy, "tolerance": float("inf")},
        source=str(path),
    )


def config_for(
    path: str | Path, target: float, tokens: int, overrides: dict | None = None
) -> tuple[shapes.Shape, dict]:
    """The grid's shape closest to N = `target` (shape_for) and its resolved config trained for `tokens` targets
    (the grid's base and `set`, then `overrides`; what `advise --grid` prices)."""
    path = Path(path)
    _, _, base, fixed, _ = _common(path)
    shape = shape_for(path, target)
    cfg = {
        **base,
        **fixed,
        **(overrides or {}),
        "model.d_model": shape.d_model,
        "model.n_layers": shape.n_layers,
        "model.n_heads": shape.n_heads,
        "model.d_ff": shape.d_ff,
        "train.tokens": int(tokens),
    }
    return shape, config.resolve(cfg, source=str(path))


def load(path: str | Path) -> list[Point]:
    """Every point of the grid at `path`, resolved and validated, in a stable order (duplicates removed)."""
    path = Path(path)
    tree, at, base, fixed, policy = _common(path)
    axes = {name: _axis_values(name, v, at(f"axes.{name}")) for name, v in (tree.get("axes") or {}).items()}
    zipped = {name: _axis_values(name, v, at(f"zip.{name}")) for name, v in (tree.get("zip") or {}).items()}
    if len({len(v) for v in zipped.values()}) > 1:
        raise UserError(f"{at('zip')}: zipped axes must have equal lengths")
    seeds = _axis_values("seeds", tree.get("seeds", [None]), at("seeds"))
    scale = _scale(tree.get("scale") or {}, at("scale"))
    designed = _isoflop(tree["isoflop"], at("isoflop")) if "isoflop" in tree else [{}]
    if "isoflop" in tree and ({"n_params", "tokens", "train.tokens"} & {*axes, *zipped}):
        raise UserError(f"{at('isoflop')}: an isoflop design sets n_params and tokens; do not give them as axes")
    sized = "n_params" in axes or "n_params" in zipped or "isoflop" in tree
    if sized and any(k in {**fixed, **axes, **zipped} for k in SHAPE_KEYS):
        raise UserError(f"{path}: the n_params axis sets {', '.join(SHAPE_KEYS)}; do not set them too")

    zip_rows = [dict(zip(zipped, row)) for row in zip(*zipped.values())] or [{}]
    copies = _replicates(tree.get("replicates"), axes.get("n_params"), seeds, at("replicates"))
    points, seen = [], set()
    for design, combo, zrow, seed in itertools.product(designed, itertools.product(*axes.values()), zip_rows, seeds):
        values = {**design, **dict(zip(axes, combo)), **zrow, **({"seeds": seed} if seed is not None else {})}
        extra = copies.get(values.get("n_params"), []) if seed == seeds[0] else []
        for v in [values, *({**values, "seeds": s} for s in extra)]:
            point = _point(v, base, fixed, policy, scale, path)
            if point.run_id not in seen:
                seen.add(point.run_id)
                points.append(point)
    return points


PRECEDENCE = ("set", "axes", "zip", "scale")  # after the base config; a later place overrides an earlier one


def shadowed(path: str | Path) -> list[str]:
    """One line per config key a grid gives in more than one place, naming the values no point uses: the order
    is base < set < axes < zip < scale (PRECEDENCE), so e.g. a `scale` law replaces the learning rates `set` and
    `zip` give."""
    tree = config.load_yaml(Path(path))
    places: dict[str, list[str]] = {}
    for place in PRECEDENCE:
        for name in config.flatten(tree.get(place) or {}) if place == "set" else tree.get(place) or {}:
            places.setdefault(ALIASES.get(name, name), []).append(place)
    return [
        f"{path}: {', '.join(f'{p}.{key}' for p in given[:-1])} never used: {given[-1]}.{key} sets it for every "
        f"point (precedence: base < {' < '.join(PRECEDENCE)})"
        for key, given in places.items()
        if len(given) > 1
    ]


def _replicates(tree: Any, sizes: list | None, seeds: list, where: str) -> dict[float, list]:
    """replicates: {seeds: [...], n_params: [...]} -> {N: the copies' seeds}: each run at one of those N (default:
    the n_params axis' smallest and largest) is run again with each seed, all else the same."""
    if tree is None:
        return {}
    if not isinstance(tree, dict) or "seeds" not in tree or set(tree) - {"seeds", "n_params"}:
        raise UserError(f"{where}: replicates needs 'seeds' (a list) and may name 'n_params' (values of the axis)")
    if not sizes:
        raise UserError(f"{where}: replicates copies cells of the n_params axis; the grid has none")
    extra = _axis_values("seeds", tree["seeds"], f"{where}: replicates.seeds")
    taken = [s for s in extra if s in seeds]
    if taken:
        raise UserError(f"{where}: replicates.seeds: {taken[0]!r} is already a seed of every run (`seeds`)")
    chosen = tree.get("n_params", [min(sizes), max(sizes)])
    chosen = _axis_values("n_params", chosen, f"{where}: replicates.n_params")
    missing = [n for n in chosen if n not in sizes]
    if missing:
        raise UserError(f"{where}: replicates.n_params: {missing[0]:g} is not a value of the n_params axis")
    return {n: extra for n in chosen}


def _point(values: dict, base: dict, fixed: dict, policy: dict, scale: dict, path: Path) -> Point:
    overrides = {**base, **fixed}
    for name, v in values.items():
        if name == "seeds":
            overrides["train.seed"] = v
        elif name not in ("n_params", "flops"):
            overrides[ALIASES.get(name, name)] = v
    label = f"{path} point {values}"
    shape, target, budget = None, values.get("n_params"), values.get("flops")
    if target is not None:
        shape = shapes.solve(target, config.resolve(overrides, source=label), policy, source=f"{path}")
        overrides.update(
            {
                "model.d_model": shape.d_model,
                "model.n_layers": shape.n_layers,
                "model.n_heads": shape.n_heads,
                "model.d_ff": shape.d_ff,
            }
        )
    for key, law in scale.items():
        if shape is None:
            raise UserError(f"{path}: scale.{key} needs N: give an n_params axis or an isoflop design")
        value = law["base"] * (shape.n_params / law["n_ref"]) ** law["power"]
        overrides[key] = round(value) if isinstance(config.KEYS[key].default, int) else value
    if budget is not None:
        overrides["train.tokens"] = max(1, round(budget / flops_per_target(config.resolve(overrides, source=label))))
    cfg = config.resolve(overrides, source=label)
    one_batch = schedules.max_targets_per_step(cfg)
    if cfg["train.tokens"] < one_batch:
        raise UserError(
            f"{label}: train.tokens = {cfg['train.tokens']} is smaller than one batch ({one_batch} targets)"
        )
    schedules.check_cooldowns(cfg, label)
    return Point(cfg, values, shape, target, budget)


def flops_per_target(cfg: dict) -> float:
    """C per target of a resolved config on its dataset (prepared, or found in the cache, for its catalog size)."""
    return accounting.flops_per_target(cfg, dataset_summary(cfg)["n_items"], train_flops_per_item(cfg))


def _positive(value: Any, where: str) -> float:
    return _number(value, where, integer=False)


def _scale(tree: Any, where: str) -> dict:
    """scale: {key: {base, n_ref, power}} -> validated laws (value = base * (N / n_ref) ** power)."""
    if not isinstance(tree, dict):
        raise UserError(f"{where}: scale must map config keys to {{base, n_ref, power}}")
    laws = {}
    for key, law in tree.items():
        if key not in config.KEYS or key in SHAPE_KEYS:
            raise UserError(f"{where}: scale.{key}: not a config key that can move with N")
        if not isinstance(law, dict) or set(law) != {"base", "n_ref", "power"}:
            raise UserError(f"{where}: scale.{key} must be {{base, n_ref, power}}")
        try:
            power = float(law["power"])
        except (TypeError, ValueError):
            raise UserError(f"{where}: scale.{key}.power = {law['power']!r} is not a number") from None
        laws[key] = {
            "base": _positive(law["base"], f"{where}: scale.{key}.base"),
            "n_ref": _positive(law["n_ref"], f"{where}: scale.{key}.n_ref"),
            "power": power,
        }
    return laws


def _isoflop(tree: Any, where: str) -> list[dict]:
    """isoflop: {flops: [...], n_params: [...] or {count, decades, centre: {n_params, flops, exponent}}} ->
    one {flops, n_params} per (budget, N)."""
    if not isinstance(tree, dict) or set(tree) - {"flops", "n_params"} or "flops" not in tree or "n_params" not in tree:
        raise UserError(f"{where}: isoflop needs exactly 'flops' (a list of budgets) and 'n_params'")
    if not isinstance(tree["flops"], list) or not tree["flops"]:
        raise UserError(f"{where}: isoflop.flops must be a non-empty list of budgets (FLOPs)")
    budgets = [_positive(c, f"{where}: isoflop.flops") for c in tree["flops"]]
    spec = tree["n_params"]
    if isinstance(spec, list):
        sizes = _axis_values("n_params", spec, f"{where}: isoflop.n_params")
        return [{"flops": c, "n_params": n} for c in budgets for n in sizes]
    if not isinstance(spec, dict) or set(spec) != {"count", "decades", "centre"}:
        raise UserError(f"{where}: isoflop.n_params must be a list or {{count, decades, centre}}")
    count = _number(spec["count"], f"{where}: isoflop.n_params.count", integer=True)
    decades = _positive(spec["decades"], f"{where}: isoflop.n_params.decades")
    centre = spec["centre"]
    if not isinstance(centre, dict) or set(centre) != {"n_params", "flops", "exponent"}:
        raise UserError(f"{where}: isoflop.n_params.centre must be {{n_params, flops, exponent}}")
    n0 = _positive(centre["n_params"], f"{where}: isoflop.n_params.centre.n_params")
    c0 = _positive(centre["flops"], f"{where}: isoflop.n_params.centre.flops")
    a = _positive(centre["exponent"], f"{where}: isoflop.n_params.centre.exponent")
    offsets = [0.0] if count == 1 else [decades * (i / (count - 1) - 0.5) for i in range(count)]
    return [{"flops": c, "n_params": n0 * (c / c0) ** a * 10**o} for c in budgets for o in offsets]
