"""`srt-scale data prepare`: a source's canonical dataset (harness/data/prepare.py)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from harness.core import config
from harness.data.prepare import describe, prepare


def _source_config(source: str, sets: list[str]) -> dict:
    """SOURCE is a config YAML (its data section is used) or a source name (data.name)."""
    if source.endswith((".yaml", ".yml")):
        return config.load(source, sets)
    return config.load(None, [f"data.name={source}", *sets])


def cmd_data_prepare(args: argparse.Namespace) -> None:
    if args.out:
        os.environ["SRT_SCALE_CACHE"] = str(Path(args.out).resolve())
    dataset, hit = prepare(_source_config(args.source, args.set))
    print(f"{'cache hit' if hit else 'prepared'}: {dataset.root}")
    print(json.dumps(dataset.manifest, indent=2))
    print(describe(dataset.manifest))
