"""The `srt-scale` command line. User mistakes print one line and exit 2 (no traceback)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness import config
from harness.errors import UserError


def _config_keys_help() -> str:
    width = max(len(k.name) for k in config.SCHEMA)
    return "config keys (YAML sections or --set dotted keys):\n" + "\n".join(
        f"  {k.name:<{width}}  {json.dumps(k.default):>10}  {k.doc}" for k in config.SCHEMA)


def _source_config(source: str, sets: list[str]) -> dict:
    """SOURCE is a config YAML (its data section is used) or a source name (data.name)."""
    if source.endswith((".yaml", ".yml")):
        return config.load(source, sets)
    return config.load(None, [f"data.name={source}", *sets])


def cmd_data_prepare(args: argparse.Namespace) -> None:
    from harness.data.prepare import prepare

    if args.out:
        os.environ["SRT_SCALE_CACHE"] = str(Path(args.out).resolve())
    dataset, hit = prepare(_source_config(args.source, args.set))
    print(f"{'cache hit' if hit else 'prepared'}: {dataset.root}")
    print(json.dumps(dataset.manifest, indent=2))


def cmd_train(args: argparse.Namespace) -> None:
    from harness.train import train

    cfg = config.load(args.config, args.set)
    out = Path(args.out)
    print(f"run {config.run_id(cfg)} -> {out / config.run_id(cfg)}", flush=True)
    result = train(cfg, out, progress=not args.quiet)
    shown = ["status", "n_params", "tokens", "flops", "epochs", "wall_s", "targets_per_s", "mfu"]
    shown += [k for k in result if k.startswith(("valid_", "test_", "oracle_test_"))]
    width = max(map(len, shown))
    for k in shown:
        v = result[k]
        print(f"  {k:<{width}}  {v:.5g}" if isinstance(v, float) else f"  {k:<{width}}  {v}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srt-scale", description="Scaling-law studies of the Scalable Recommendation "
                                "Transformer: prepare datasets and train runs with full-catalog metrics.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="dataset commands", description="Dataset commands.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    prep = data_sub.add_parser(
        "prepare", help="build (or find cached) a canonical dataset and print its manifest",
        description="Build the canonical dataset (interactions, items, manifest) for a source, or find it in the "
                    "cache (keyed by the source's content and the preparation options), and print its manifest.",
        epilog="sources: synthetic, ml-100k, recbole, amazon2018, movielens, table "
               "(file sources need --set data.path=...)")
    prep.add_argument("source", help="a source name, or a config YAML whose data section is used")
    prep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a data.* key")
    prep.add_argument("--out", help="cache directory (default: $SRT_SCALE_CACHE or ./.srt-cache)")
    prep.set_defaults(func=cmd_data_prepare)

    train = sub.add_parser(
        "train", help="train one run and print its final metrics",
        description="Train one configuration into OUT/<run_id>/ (config.yaml, metrics.jsonl, result.json, "
                    "checkpoint.pt, train.log). A finished run is not trained again; an interrupted one resumes.",
        epilog=_config_keys_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("config", help="run config YAML")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set model.d_model=128 (repeatable)")
    train.add_argument("--out", default="runs", help="directory of run directories (default: ./runs)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        print(f"srt-scale: error: {e}", file=sys.stderr)
        return 2
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
