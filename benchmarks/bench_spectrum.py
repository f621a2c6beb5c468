"""Planted vs trained size exponent across the spectral world's spectrum exponent nu: for each nu, the quickstart's
grid (configs/quickstart.yaml) with the full softmax only (5 N x 6 T), swept, collected and fitted by the real
commands; prints the capacity oracle's gap exponent in N (planted) beside the joint law's fitted alpha and beta.

    python benchmarks/bench_spectrum.py                     # nu = 0.8, 1.0, 1.2 (about 3 minutes each on 2 cores)
    python benchmarks/bench_spectrum.py --nu 1.0 --keep /tmp/spectrum
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from common import report

ROOT = Path(__file__).resolve().parent.parent


def study(nu: float, where: Path) -> dict:
    """Sweep the quickstart grid at spectrum nu (K = full) under `where`; return fits.json."""
    grid = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
    grid["base"] = str(ROOT / "configs" / grid["base"])
    grid["set"]["data.synthetic.spectrum"] = nu
    grid["axes"]["negatives"] = ["full"]
    path = where / f"nu{nu}.yaml"
    path.write_text(yaml.safe_dump(grid))
    out = where / f"nu{nu}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "study",
            str(path),
            "--executor",
            "local",
            "--out",
            str(out),
            "--report",
            str(out / "report"),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return json.loads((out / "report" / "fits.json").read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nu", type=float, nargs="+", default=[0.8, 1.0, 1.2])
    p.add_argument("--keep", help="keep the sweeps under this directory (default: a temporary one)")
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(a.keep or tmp)
        where.mkdir(parents=True, exist_ok=True)
        for nu in a.nu:
            fits = study(nu, where)
            joint = fits["metrics"]["ppl"]["full"]["joint"]
            cap = fits["capacity"]
            rows.append(
                {
                    "nu": nu,
                    "planted_alpha": cap["gap_exponent_vs_n"],
                    "planted_alpha_d": cap["gap_exponent_vs_d"],
                    "alpha": joint["params"]["alpha"],
                    "alpha_lo": joint["ci95"]["alpha"][0],
                    "alpha_hi": joint["ci95"]["alpha"][1],
                    "beta": joint["params"]["beta"],
                    "E": joint["params"]["E"],
                    "floor": cap["floor"],
                }
            )
    report(
        "bench_spectrum",
        rows,
        [
            ("nu", "nu", ".1f"),
            ("planted_alpha", "planted a_N", ".3f"),
            ("planted_alpha_d", "planted a_d", ".3f"),
            ("alpha", "alpha", ".3f"),
            ("alpha_lo", "alpha lo", ".3f"),
            ("alpha_hi", "alpha hi", ".3f"),
            ("beta", "beta", ".3f"),
            ("E", "E", ".3f"),
            ("floor", "ln exact", ".3f"),
        ],
    )


if __name__ == "__main__":
    main()
