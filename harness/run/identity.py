"""Run ids: the hash of what determines a run's results (docs/design.md, "The run").

The id hashes the resolved config's science keys (`config.science`: execution-only keys left out, numbers in
one form, so 1 and 1.0 are one value of a float key) and, where a run's results depend on something its config
only names, that thing's identity rather than its name:
- `data.path` (a file source): the dataset's cache key, which follows the files' content (an edited file is a
  new dataset and its runs new runs);
- `transfer.init_from`: the pretraining run's identity. A run config YAML is trained under
  <cache>/pretrained/<dataset key>/<its run id>, and that path is the identity, so an edited pretraining config
  or a changed world gives its fine-tunes new ids; a run directory is identified by the id of its config.yaml.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.core import config
from harness.core.errors import UserError
from harness.core.io import cache_dir
from harness.data.prepare import dataset_key


def pretrained_dir(source: str | Path) -> Path:
    """Where the pretraining run of `transfer.init_from` lives: the run directory itself, or for a run config YAML
    <cache>/pretrained/<dataset key>/<run_id> (trained there by the sweep or CLI before the run starts)."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        cfg = config.load(path)
        return cache_dir() / "pretrained" / dataset_key(cfg) / run_id(cfg)
    return path


def _init_identity(source: str) -> str:
    if Path(source).suffix in (".yaml", ".yml"):
        return "/".join(pretrained_dir(source).parts[-2:])
    cfg_path = Path(source) / "config.yaml"
    if not cfg_path.exists():
        raise UserError(f"transfer.init_from = {source}: not a run directory (needs checkpoint.pt and config.yaml)")
    return run_id(config.load(cfg_path))


def run_id(cfg: dict) -> str:
    """12 hex digits: same science and the same files behind it -> same run directory."""
    blob = config.science(cfg)
    depends = {}
    if cfg["data.path"]:
        depends["data"] = dataset_key(cfg)
    if cfg["transfer.init_from"]:
        depends["init_from"] = _init_identity(cfg["transfer.init_from"])
    if depends:  # only runs that depend on files: every other id is what it was before files were identified
        blob = {**blob, "depends": depends}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12]
