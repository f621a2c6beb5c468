"""A run's checkpoint: the file and what it holds.

The file is written atomically and read back with `torch.load(weights_only=True)`: it holds only tensors and
plain Python values (dicts, lists, numbers, strings, None), so reading one never runs code (run directories on
shared cluster storage may have been written by anyone, `--init-from`); a file whose pickle names anything else
is refused with one line naming the file. A run's checkpoint holds the model, the optimizer, every rank's random
state and the training State (targets, epoch, position, evaluation rows); it is written by rank 0 and read by
every rank. transfer.py reads the model weights of another run's.
"""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import torch

from harness.core.errors import UserError
from harness.core.io import _jsonable, atomic_path, write_text


def plain(obj: Any) -> Any:
    """A JSON-shaped copy of `obj` with numpy scalars as Python numbers (inf and NaN kept): safe to unpickle."""
    return json.loads(json.dumps(obj, default=_jsonable))


def save(path: str | Path, blob: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint at `path`; UserError (one line, naming the file) if it is not a plain-weights checkpoint."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = next((ln.strip() for ln in str(e).splitlines() if "GLOBAL" in ln), None)
        if unsafe:
            raise UserError(
                f"{path}: refused: the checkpoint's pickle names code to run ({unsafe[:200]}); "
                "nothing from it was executed"
            ) from None
        raise UserError(
            f"{path}: not a readable checkpoint (not a torch.save file of tensors and plain values)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise UserError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: "
            f"{str(e).strip().splitlines()[0][:200] if str(e).strip() else 'empty'})"
        ) from None


class State:
    """Training progress that a checkpoint must restore for an exact resume (plain values only). `spent` counts
    every target trained, cooldown branches included; `branch` is the length T_i of the branch in flight."""

    def __init__(self) -> None:
        self.tokens, self.epoch, self.position, self.steps = 0, 0, 0, 0
        self.train_s, self.wall_s, self.loss_sum, self.loss_n = 0.0, 0.0, 0.0, 0
        self.spent, self.branch, self.branches_done = 0, None, []
        self.world, self.device = 1, None  # the processes and device type that wrote the checkpoint
        self.rows: list[dict] = []


TRUNK_ONLY = ("tokens", "epoch", "position", "steps", "loss_sum", "loss_n")  # what a branch changes and gives back


def _rng(run) -> dict:
    """This rank's random state: dropout (torch, CUDA) and the negative sampler."""
    return {
        "torch": torch.get_rng_state(),
        "sampler": run.sampler.generator.get_state(),
        "cuda": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None,
    }


def _set_rng(run, rng: dict) -> None:
    """Restore a random state saved by `_rng` (CPU ByteTensors: the setters accept nothing else). A CUDA state is
    restored only on a CUDA run: a checkpoint written on a GPU and resumed on a CPU (train.device is not part of the
    run id) continues from its CPU streams, and the loop's log says so."""
    torch.set_rng_state(rng["torch"])
    run.sampler.generator.set_state(rng["sampler"])
    if rng["cuda"] is not None and run.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], run.device)


def snapshot(run, state: State) -> dict:
    """The trunk at a branch point, in memory: weights, optimizer, this rank's random state, its progress."""
    return {
        "model": {k: v.detach().clone() for k, v in run.model.state_dict().items()},
        "optimizer": copy.deepcopy(run.optimizer.state_dict()),
        "rng": _rng(run),
        "state": {k: getattr(state, k) for k in TRUNK_ONLY},
    }


def restore(run, state: State, trunk: dict) -> None:
    """Back to the trunk after a branch; rows, time and `spent` keep what the branch added."""
    run.model.load_state_dict(trunk["model"])
    run.optimizer.load_state_dict(trunk["optimizer"])
    _set_rng(run, trunk["rng"])
    vars(state).update(trunk["state"])
    state.branch = None


def write(run, state: State, trunk: dict | None = None) -> None:
    """Checkpoint `run` (collective: every rank gives its random state; rank 0 writes the file) and its
    evaluation rows so far (metrics.jsonl); during a branch, the trunk's snapshot too."""
    rngs = run.group.gather(_rng(run))
    trunk_rngs = run.group.gather(trunk["rng"]) if trunk is not None else None
    if not run.group.main:
        return
    blob = {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "rng": rngs,
        "state": plain({**vars(state), "world": run.group.world, "device": run.device.type}),
    }
    if trunk is not None:
        blob["trunk"] = {**trunk, "rng": trunk_rngs, "state": plain(trunk["state"])}
    save(run.dir / "checkpoint.pt", blob)
    write_text(run.dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in state.rows))


def read(run) -> tuple[State, dict | None]:
    """Restore `run` from its checkpoint (each rank its own random state): (state, the trunk's snapshot when a
    branch was in flight, else None); a fresh State if there is no checkpoint."""
    state = State()
    path = run.dir / "checkpoint.pt"
    if not path.exists():
        return state, None
    blob = load(path)  # on the CPU: the random states must stay there; load_state_dict moves weights to the device
    if len(blob["rng"]) != run.group.world:
        raise UserError(
            f"{path}: written by a run of {len(blob['rng'])} process(es); resume it with the same "
            f"number (this one has {run.group.world})"
        )
    run.model.load_state_dict(blob["model"])
    run.optimizer.load_state_dict(blob["optimizer"])
    _set_rng(run, blob["rng"][run.group.rank])
    vars(state).update(blob["state"])
    trunk = blob.get("trunk")
    if trunk is not None:
        trunk = {**trunk, "rng": trunk["rng"][run.group.rank]}
    return state, trunk
