"""`srt-scale train`: one run, in this process or data-parallel on this machine (harness/run/)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.core import config
from harness.core.errors import UserError
from harness.run import distributed, identity, train
from harness.sweep import sweep


def cmd_train(args: argparse.Namespace) -> None:
    cfg = config.load(args.config, args.set + ([f"transfer.init_from={args.init_from}"] if args.init_from else []))
    out = Path(args.out)
    if args.nproc < 1:
        raise UserError(f"--nproc {args.nproc}: expected a positive number of processes")
    print(
        f"run {identity.run_id(cfg)} -> {out / identity.run_id(cfg)}"
        f"{f' ({args.nproc} processes)' if args.nproc > 1 else ''}",
        flush=True,
    )
    sweep.pretrain(cfg)
    if args.nproc > 1:
        distributed.launch(args.nproc, train, (cfg, out, None, not args.quiet))
        result = json.loads((out / identity.run_id(cfg) / "result.json").read_text())
    else:
        result = train(cfg, out, progress=not args.quiet)
    shown = ["status", "n_params", "tokens", "flops", "epochs", "wall_s", "targets_per_s", "mfu"]
    shown += [k for k in result if k.startswith(("valid_", "test_", "oracle_test_"))]
    width = max(map(len, shown))
    for k in shown:
        v = result[k]
        print(f"  {k:<{width}}  {v:.5g}" if isinstance(v, float) else f"  {k:<{width}}  {v}")
