"""A run's checkpoint: the model, the optimizer, every rank's random state, and the training State (targets,
epoch, position, evaluation rows); written by rank 0, read by every rank (harness/checkpoint_file.py: the file)."""

from __future__ import annotations

import json

import torch

from harness.checkpoint_file import load, plain, save
from harness.errors import UserError
from harness.io import write_text


class State:
    """Training progress that a checkpoint must restore for an exact resume (plain values only)."""

    def __init__(self) -> None:
        self.tokens, self.epoch, self.position, self.steps = 0, 0, 0, 0
        self.train_s, self.wall_s, self.loss_sum, self.loss_n = 0.0, 0.0, 0.0, 0
        self.world = 1
        self.rows: list[dict] = []


def _rng(run) -> dict:
    """This rank's random state: dropout (torch, CUDA) and the negative sampler."""
    return {"torch": torch.get_rng_state(), "sampler": run.sampler.generator.get_state(),
            "cuda": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None}


def write(run, state: State) -> None:
    """Checkpoint `run` (collective: every rank gives its random state; rank 0 writes the file) and its
    evaluation rows so far (metrics.jsonl)."""
    rngs = run.group.gather(_rng(run))
    if not run.group.main:
        return
    blob = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(), "rng": rngs,
            "state": plain({**vars(state), "world": run.group.world})}
    save(run.dir / "checkpoint.pt", blob)
    write_text(run.dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in state.rows))


def read(run) -> State:
    """Restore `run` from its checkpoint (each rank its own random state); a fresh State if there is none."""
    state = State()
    path = run.dir / "checkpoint.pt"
    if not path.exists():
        return state
    blob = load(path, run.device)
    if len(blob["rng"]) != run.group.world:
        raise UserError(f"{path}: written by a run of {len(blob['rng'])} process(es); resume it with the same "
                        f"number (this one has {run.group.world})")
    run.model.load_state_dict(blob["model"])
    run.optimizer.load_state_dict(blob["optimizer"])
    rng = blob["rng"][run.group.rank]
    torch.set_rng_state(rng["torch"])
    run.sampler.generator.set_state(rng["sampler"])
    if rng["cuda"] is not None:
        torch.cuda.set_rng_state(rng["cuda"], run.device)
    vars(state).update(blob["state"])
    return state
