"""Every config key, its default, its check and its meaning, in one place.

A config is a nested YAML mapping; internally it is flattened to dotted keys (`model.d_model`), the same keys
that `--set key=value` and grid axes name. Unknown keys and bad values raise UserError naming the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.core import registry
from harness.core.errors import UserError


@dataclass(frozen=True)
class Key:
    name: str
    default: Any
    doc: str
    check: Callable[[Any], bool]
    expect: str
    hashed: bool = True  # False: execution detail that cannot change results (not part of run_id)


def _choice(*options: Any) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in options), "one of " + ", ".join(map(str, options))


def _int(lo: int = 0) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo), f"an integer >= {lo}"


def _num(lo: float = 0.0, hi: float = float("inf")) -> tuple[Callable[[Any], bool], str]:
    return (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi
    ), f"a number in [{lo}, {hi}]"


def _opt(pair: tuple[Callable[[Any], bool], str]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v is None or pair[0](v)), pair[1] + " or null"


_str = ((lambda v: isinstance(v, str) and v != ""), "a non-empty string")
_bool = ((lambda v: isinstance(v, bool)), "true or false")
_columns = (
    (
        lambda v: (
            isinstance(v, dict)
            and set(v) <= {"user", "item", "timestamp", "title", "brand", "category"}
            and all(isinstance(x, str) for x in v.values())
        )
    ),
    "a mapping from user/item/timestamp/title/brand/category to column names",
)
_points = (
    (
        lambda v: (
            isinstance(v, list)
            and len(v) > 0
            and all(isinstance(x, (int, float)) and 0 < x <= 1 for x in v)
            and sorted(v) == v
            and v[-1] == 1
        )
    ),
    "an increasing list of fractions of T in (0, 1], ending at 1",
)
_negatives = (
    (lambda v: v == "full" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)),
    "a positive integer or 'full'",
)


def _k(name: str, default: Any, pair: tuple[Callable[[Any], bool], str], doc: str, hashed: bool = True) -> Key:
    return Key(name, default, doc, pair[0], pair[1], hashed)


SCHEMA: list[Key] = [
    # data: which interactions and items, and how they are prepared (docs/design.md, "Datasets")
    _k("data.name", "synthetic", _choice(*registry.SOURCES.names()), "dataset source (harness/data/sources/)"),
    _k(
        "data.path",
        None,
        _opt(_str),
        "recbole/movielens: directory; amazon2018: ratings CSV or reviews JSON; table: interactions CSV/Parquet",
    ),
    _k("data.items_path", None, _opt(_str), "amazon2018: metadata JSON lines; table: items CSV/Parquet"),
    _k("data.columns", None, _opt(_columns), "table: column names for user, item, timestamp, title, brand, category"),
    _k("data.min_user_interactions", 5, _int(3), "drop users with fewer interactions (after item filtering)"),
    _k("data.item_kcore", 0, _int(0), "iteratively drop items with fewer interactions (0 = off)"),
    _k(
        "data.duplicates",
        "drop",
        _choice("drop", "keep"),
        "exact (user, item, timestamp) repeats: drop (a listing artefact, e.g. a review scraped twice; kept, a "
        "target can equal its own last input) or keep; counted either way",
    ),
    _k("data.scale", None, _opt(_int(1)), "nested subset: sample users (seeded) until this many interactions"),
    _k("data.subset_seed", 0, _int(0), "seed of the user order that nested subsets take prefixes of"),
    _k("data.synthetic.n_users", 2000, _int(2), "synthetic: users"),
    _k("data.synthetic.n_items", 1000, _int(10), "synthetic: catalog size"),
    _k("data.synthetic.mean_length", 30, _int(5), "synthetic: mean interactions per user (minimum 5)"),
    _k("data.synthetic.max_length", 100, _int(5), "synthetic: longest user history"),
    _k("data.synthetic.latent_dim", 16, _int(2), "synthetic: dimension of latent item and taste vectors"),
    _k("data.synthetic.drift", 0.3, _num(0, 1), "synthetic: how far taste moves toward each consumed item"),
    _k("data.synthetic.sharpness", 0.6, _num(0), "synthetic: inverse temperature of the next-item softmax"),
    _k("data.synthetic.popularity", 1.0, _num(0), "synthetic: Zipf exponent of the item popularity bias"),
    _k("data.synthetic.seed", 0, _int(0), "synthetic: world seed"),
    _k(
        "data.synthetic.world",
        "clusters",
        _choice(*registry.WORLDS.names()),
        "synthetic: which generator: clusters "
        "(category/brand/attribute latents; the transfer study's pretraining) or spectral (the quickstart's, "
        "negatives' and adaptive study's: latents a linear function of the title's words with factor variances "
        "k^-spectrum, and a capacity oracle: harness/data/spectral.py)",
    ),
    _k(
        "data.synthetic.spectrum",
        1.0,
        _num(0),
        "synthetic, spectral world: exponent nu of the factor variances "
        "lambda_k = k^-nu (their tail sum_{k>d} lambda_k^2 ~ d^-(2 nu - 1); the best rank-d model's gap in nats is "
        "measured by the capacity oracle, not proportional to it)",
    ),
    # features: how an item becomes a d_model vector
    _k(
        "features.kind",
        "st",
        _choice(*registry.EXTRACTORS.names()),
        "st: frozen MiniLM text embedding + trainable adapter; tokens: SRT token tables + pooling + adapter; "
        "id: per-item embedding table",
    ),
    _k("features.adapter", "linear", _choice("linear", "mlp"), "st/tokens: adapter from text features to d_model"),
    _k("features.token_dim", 64, _int(1), "tokens: width of the per-field token tables"),
    _k("features.title_tokens", 24, _int(1), "tokens: title tokens kept"),
    _k("features.brand_tokens", 8, _int(1), "tokens: brand tokens kept"),
    # model: the causal transformer
    _k("model.d_model", 64, _int(1), "hidden width"),
    _k("model.n_layers", 2, _int(1), "transformer blocks"),
    _k("model.n_heads", 2, _int(1), "attention heads (must divide d_model)"),
    _k("model.d_ff", 256, _int(1), "feed-forward width"),
    _k("model.context", 50, _int(1), "items of history the model sees"),
    _k("model.dropout", 0.2, _num(0, 0.9), "dropout on embeddings, attention output and FFN"),
    _k("model.norm", "pre", _choice("pre", "post"), "LayerNorm before (pre) or after (post) each sublayer"),
    _k(
        "model.positions",
        "absolute",
        _choice("absolute", "relative"),
        "absolute: learned position added to the input; relative: learned per-head bias by distance to the "
        "prediction point",
    ),
    _k(
        "model.zero_padding",
        True,
        _bool,
        "padding slots enter the first block as zero vectors (false: the "
        "extractor's output for id 0 plus the position embedding, the uncorrected SASRec input)",
    ),
    _k("model.mask_padding", True, _bool, "padding is never attended as a key (false: causal mask only)"),
    _k("model.tau", 1.0, _num(1e-3), "score temperature: score = <h, item> / tau"),
    # loss
    _k("loss.kind", "softmax", _choice(*registry.LOSSES.names()), "softmax (sampled or full), bce, gbce"),
    _k("loss.negatives", "full", _negatives, "K: negatives per target; 'full' = softmax over the catalog"),
    _k(
        "loss.sampler",
        "uniform",
        _choice("uniform", "popularity"),
        "negative distribution; popularity uses logQ correction in the sampled softmax (bce / gbce have none)",
    ),
    _k(
        "loss.shared_negatives",
        True,
        _bool,
        "one set of K negatives per batch (true) or per target (false; SASRec's bce draws one per target)",
    ),
    _k("loss.gbce_t", 0.75, _num(0, 1), "gbce: calibration parameter t"),
    _k(
        "loss.supervision",
        "all",
        _choice("all", "last"),
        "all: every non-pad position is a target; last: one target per example (every prefix is an example)",
    ),
    # augmentation: training pairs sampled as in GenPAS (harness/data/augment.py); needs loss.supervision: last
    _k(
        "augment.strategy",
        "none",
        _choice("none", "lt", "mt", "sw", "genpas"),
        "none: the windows of loss.supervision; lt / mt / sw: Last-Target, Multi-Target, Slide-Window pairs; "
        "genpas: pairs from augment.alpha, beta, gamma",
    ),
    _k("augment.alpha", 1.0, _num(-float("inf")), "genpas: user weight (|s_u| - 1)^alpha (.inf allowed)"),
    _k("augment.beta", 0.0, _num(-float("inf")), "genpas: target position weight (k - 1)^beta (.inf, -.inf allowed)"),
    _k(
        "augment.gamma",
        -float("inf"),
        _num(-float("inf")),
        "genpas: input start weight j^gamma (-.inf: the whole prefix)",
    ),
    # synthetic training sequences: node2vec walks on the real training split's co-occurrence graph (data/walks.py)
    _k(
        "walks.mode",
        "none",
        _choice("none", "only", "add"),
        "none: train on real sequences; only: on walks alone; add: on real sequences and walks",
    ),
    _k("walks.users", None, _opt(_int(1)), "walks to generate (null: as many as real users)"),
    _k("walks.p", 1.0, _num(1e-6), "node2vec return parameter p (weight 1/p for stepping back)"),
    _k("walks.q", 1.0, _num(1e-6), "node2vec in-out parameter q (weight 1/q for moving away from the last item)"),
    _k("walks.window", 1, _int(1), "items at most this many positions apart in a history share an edge"),
    _k("walks.seed", 0, _int(0), "seed of the walks"),
    # transfer: pretrain -> fine-tune (harness/run/transfer.py)
    _k(
        "transfer.init_from",
        None,
        _opt(_str),
        "a pretraining run directory, or a run config YAML (trained first "
        "under <cache>/pretrained/ if needed), whose catalog-independent weights start this run (any catalog)",
    ),
    _k(
        "transfer.method",
        "full",
        _choice("full", "progressive", "ewc"),
        "full: train everything; progressive: unfreeze from the top block down; ewc: elastic weight consolidation",
    ),
    _k("transfer.unfreeze_until", 0.5, _num(0, 1), "progressive: fraction of T by which every group is unfrozen"),
    _k("transfer.ewc_lambda", 100.0, _num(0), "ewc: penalty weight lambda"),
    _k(
        "transfer.fisher_sequences", 256, _int(1), "ewc: pretraining examples (one window each) for the diagonal Fisher"
    ),
    # training
    _k("train.tokens", 200_000, _int(1), "T: supervised targets to train on"),
    _k("train.batch_size", 128, _int(1), "sequences per step"),
    _k("train.lr", 1e-3, _num(0), "peak learning rate (AdamW)"),
    _k("train.weight_decay", 0.01, _num(0), "AdamW weight decay (not on norms, biases, tables)"),
    _k("train.warmup", 0.05, _num(0, 1), "warmup as a fraction of T"),
    _k("train.schedule", "cosine", _choice(*registry.SCHEDULES.names()), "learning-rate schedule over T"),
    _k("train.min_lr_ratio", 0.01, _num(0, 1), "cosine, wsd: final lr / peak lr"),
    _k(
        "train.warmup_tokens",
        None,
        _opt(_int(0)),
        "wsd: warmup over this many targets (required: a fixed number, "
        "so every branch is the standalone run of its length)",
    ),
    _k("train.decay", 0.2, _num(1e-6, 1), "wsd: the cooldown, as the last fraction of each run or branch length"),
    _k("train.decay_shape", "1-sqrt", _choice("1-sqrt", "linear"), "wsd: cooldown shape"),
    _k(
        "train.branches",
        None,
        _opt(_points),
        "wsd: cooldown branches at these fractions of T (ending at 1): the "
        "trunk trains at the peak lr and at each T_i forks a cooldown whose end is a row (annealed) for T_i",
    ),
    _k("train.grad_clip", 1.0, _num(0), "clip the global gradient norm to this (0 = off)"),
    _k("train.precision", "fp32", _choice("fp32", "bf16"), "bf16 autocast (CUDA only)"),
    _k("train.seed", 0, _int(0), "seed for init, dropout, order and negatives"),
    _k("train.device", "auto", _choice("auto", "cpu", "cuda"), "where to train", hashed=False),
    _k("train.threads", 0, _int(0), "torch CPU threads (0 = torch's default)", hashed=False),
    _k("train.checkpoint_every_s", 300, _num(1), "also checkpoint after this many seconds of training", hashed=False),
    _k(
        "sweep.max_retries",
        3,
        _int(1),
        "a run whose job ends without an outcome (killed: OOM, SIGKILL, node "
        "failure) this many times is marked failed with the reason; --retry-failed resubmits it",
        hashed=False,
    ),
    # tracking: MLflow (harness/run/tracking.py; pip install .[mlflow]); never part of the run id
    _k(
        "track.mlflow",
        False,
        _bool,
        "log the run to MLflow: config as params, every evaluation row as metrics at "
        "step = tokens, the outcome as tags",
        hashed=False,
    ),
    _k(
        "track.uri",
        None,
        _opt(_str),
        "MLflow tracking URI (null: sqlite:///<sweep dir or train --out>/mlflow.db)",
        hashed=False,
    ),
    _k(
        "track.experiment",
        None,
        _opt(_str),
        "MLflow experiment (null: the sweep directory's name, or srt-scale)",
        hashed=False,
    ),
    # evaluation
    _k("eval.points", [0.25, 0.5, 1.0], _points, "fractions of T at which validation metrics are recorded"),
    _k(
        "eval.exclude_seen",
        False,
        _bool,
        "mask the user's history items in the ranking, a seen target included (it ranks last: a miss)",
    ),
    _k("eval.max_users", None, _opt(_int(1)), "evaluate a seeded sample of this many users (null = all)"),
    _k("eval.batch_users", 256, _int(1), "users scored per chunk", hashed=False),
    _k("eval.chunk_items", 4096, _int(1), "items scored per chunk (bounds memory)", hashed=False),
]
KEYS: dict[str, Key] = {k.name: k for k in SCHEMA}

_pos = ((lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0), "a positive number")
_mapping = ((lambda v: isinstance(v, dict)), "a mapping of sbatch flags to values")
_lines = ((lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)), "a list of shell lines")

# A cluster profile (`--profile slurm/*.yaml`): where and with what resources a sweep's jobs run. Never part of a
# run's identity: the same run on another cluster is the same run.
PROFILE: list[Key] = [
    _k("partition", None, _opt(_str), "sbatch --partition (null: the cluster's default)"),
    _k("account", None, _opt(_str), "sbatch --account (null: the user's default)"),
    _k("qos", None, _opt(_str), "sbatch --qos (null: the account's default)"),
    _k(
        "time_min",
        60,
        _pos,
        "sbatch --time in minutes; submitit sends USR2 shortly before it and the run checkpoints and requeues",
    ),
    _k("mem_gb", 4, _pos, "sbatch --mem per node, GB"),
    _k("cpus_per_task", 1, _int(1), "CPUs per task, and each task's torch threads (local: the threads of each job)"),
    _k("gpus_per_node", 0, _int(0), "sbatch --gpus-per-node (with `train.device: cuda` in the grid)"),
    _k(
        "tasks_per_node",
        1,
        _int(1),
        "processes per node; > 1 makes each run one data-parallel job (gloo on CPU, NCCL on CUDA)",
    ),
    _k("nodes", 1, _int(1), "nodes per run (tasks_per_node x nodes processes)"),
    _k("array_parallelism", 16, _int(1), "Slurm: at most this many array tasks at once"),
    _k("max_jobs", None, _opt(_int(1)), "local: jobs at once (null: CPUs / (cpus_per_task x tasks_per_node))"),
    _k(
        "runs_per_job",
        None,
        _opt(_int(1)),
        "runs trained one after another in one job (null: 1 on Slurm; local: "
        "one job per parallel slot, balanced by the plan's estimates)",
    ),
    _k(
        "sbatch",
        {},
        _mapping,
        'extra sbatch flags, e.g. {constraint: a100, exclude: "node[01-02]"}; `true` gives a bare flag',
    ),
    _k("setup", [], _lines, 'shell lines each job runs first, e.g. ["module load cuda", "source .venv/bin/activate"]'),
]
PROFILE_KEYS: dict[str, Key] = {k.name: k for k in PROFILE}


FRACTIONS = ("eval.points", "train.branches")  # lists of fractions of T


def _canonical(key: Key, value: Any) -> Any:
    """One form per number, so one run has one id: an integer given for a float key (`model.tau: 1`, or in a
    list of fractions of T) becomes that float."""
    as_float = lambda v: float(v) if isinstance(v, int) and not isinstance(v, bool) else v  # noqa: E731
    if isinstance(key.default, float):
        return as_float(value)
    if key.name in FRACTIONS and isinstance(value, list):
        return [as_float(v) for v in value]
    return value


def flatten(tree: dict, prefix: str = "", source: str = "config") -> dict[str, Any]:
    """Nested mapping -> {dotted key: value}; mapping-valued keys (data.columns) stay whole."""
    flat: dict[str, Any] = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and key not in KEYS:
            flat.update(flatten(value, key + ".", source))
        else:
            flat[key] = value
    return flat


def unflatten(flat: dict[str, Any]) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def parse_set(item: str) -> tuple[str, Any]:
    """'model.d_model=128' -> ('model.d_model', 128); the value is parsed as YAML."""
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise UserError(f"--set {item!r}: value is not valid YAML") from None


def key_lines(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    """Dotted key -> 1-based line where it is written, from a composed YAML node tree."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = f"{prefix}{k.value}"
            lines[key] = k.start_mark.line + 1
            lines.update(key_lines(v, key + "."))
    return lines


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise UserError(f"{path}: top level must be a mapping of config sections")
    return tree


def resolve(overrides: dict[str, Any], source: str = "config", where: dict[str, str] | None = None) -> dict[str, Any]:
    """Defaults + overrides (dotted keys) -> a validated flat config; cross-key rules checked here.
    `where` maps a key to the place it was set (file:line or --set) for error messages."""
    where = where or {}
    cfg = {k.name: k.default for k in SCHEMA}
    for key, value in overrides.items():
        if key not in KEYS:
            raise UserError(f"{where.get(key, source)}: unknown key {key!r}")
        cfg[key] = value
    for k in SCHEMA:
        if not k.check(cfg[k.name]):
            raise UserError(f"{where.get(k.name, source)}: {k.name} = {cfg[k.name]!r}: expected {k.expect}")
    for k in SCHEMA:
        cfg[k.name] = _canonical(k, cfg[k.name])
    at = lambda key: where.get(key, source)  # noqa: E731
    if cfg["model.d_model"] % cfg["model.n_heads"]:
        raise UserError(
            f"{at('model.n_heads')}: model.n_heads = {cfg['model.n_heads']} does not divide "
            f"model.d_model = {cfg['model.d_model']}"
        )
    for key in registry.SOURCES.get(cfg["data.name"]).needs:
        if not cfg[key]:
            raise UserError(f"{at(key)}: {key} is required for data.name = {cfg['data.name']}")
    if cfg["loss.kind"] == "bce" and cfg["loss.negatives"] != 1:
        raise UserError(
            f"{at('loss.negatives')}: loss.kind = bce takes loss.negatives = 1 (got {cfg['loss.negatives']!r})"
        )
    if cfg["loss.kind"] == "gbce" and cfg["loss.negatives"] == "full":
        raise UserError(f"{at('loss.negatives')}: loss.kind = gbce needs an integer loss.negatives")
    if cfg["data.synthetic.max_length"] < cfg["data.synthetic.mean_length"]:
        raise UserError(
            f"{at('data.synthetic.max_length')}: data.synthetic.max_length must be >= data.synthetic.mean_length"
        )
    if cfg["train.schedule"] == "wsd" and cfg["train.warmup_tokens"] is None:
        raise UserError(
            f"{at('train.schedule')}: train.schedule = wsd needs train.warmup_tokens (a fixed number of "
            "targets, so a branch equals the standalone run of its length)"
        )
    if cfg["train.branches"] and cfg["train.schedule"] != "wsd":
        raise UserError(f"{at('train.branches')}: train.branches needs train.schedule = wsd")
    if cfg["augment.strategy"] != "none" and cfg["loss.supervision"] != "last":
        raise UserError(
            f"{at('augment.strategy')}: augment.strategy = {cfg['augment.strategy']} trains one target "
            "per pair: set loss.supervision: last"
        )
    return cfg


def load(path: str | Path | None, sets: list[str] = ()) -> dict[str, Any]:
    """Read a YAML config, apply `--set` overrides, validate; returns the resolved flat config."""
    overrides = flatten(load_yaml(path)) if path else {}
    where = {}
    if path:
        lines = key_lines(yaml.compose(Path(path).read_text()) or yaml.MappingNode("", []))
        where = {k: f"{path}:{lines[k]}" for k in overrides if k in lines}
    for item in sets:
        key, value = parse_set(item)
        overrides[key] = value
        where[key] = f"--set {item}"
    return resolve(overrides, source=str(path) if path else "--set", where=where)


def science(cfg: dict[str, Any]) -> dict[str, Any]:
    """The keys that can change a run's results (execution-only keys excluded), hashed by the run id
    (harness/run/identity.py)."""
    return {k: v for k, v in sorted(cfg.items()) if KEYS[k].hashed}


def reference(keys: list[Key] = SCHEMA) -> str:
    """Markdown table of every key of `keys` (run config or PROFILE; docs/config.md, checked by a test)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    rows += [f"| `{k.name}` | `{json.dumps(k.default)}` | {k.doc} |" for k in keys]
    return "\n".join(rows)
