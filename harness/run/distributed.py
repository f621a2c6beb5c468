"""Data-parallel runs: one process per rank, the global batch split across ranks, gradients summed.

A run is distributed when WORLD_SIZE > 1 in its environment (set by `launch` for `srt-scale train --nproc N`,
or by submitit's TorchDistributedEnvironment for a Slurm/local job with several tasks). Backend: gloo on CPU; on
CUDA each rank first selects its device (`cuda:LOCAL_RANK`) and the group is `cpu:gloo,cuda:nccl`, so the gradient
all-reduce runs on NCCL and the small host-side collectives (the stop / checkpoint flags, random states, rank 0's
decisions) on gloo without a device round trip. Every rank builds the same model (same seed, same data order) and
draws its own dropout (and per-target negatives) from a stream of (seed, rank); rank r trains on its contiguous share
of each global batch and scales its mean loss by its share of the batch's targets, so the summed gradient is the
single-process gradient of the same global batch. Rank 0 evaluates, writes the checkpoint, metrics and result;
decisions that must agree (stop, checkpoint now, diverged) are reduced or broadcast from rank 0.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from harness.core.errors import UserError


@dataclass(frozen=True)
class Group:
    """This process's place in the run: rank in [0, world)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of a global batch (rows)."""
        return x if self.world == 1 else torch.tensor_split(x, self.world)[self.rank]

    def any(self, *flags: bool) -> list[bool]:
        """Each flag, true on any rank."""
        if self.world == 1:
            return list(flags)
        t = torch.tensor([float(f) for f in flags])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def from_main(self, obj):
        """Rank 0's `obj` on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list | None:
        """Every rank's `obj` on rank 0 (None elsewhere)."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world if self.main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def sum_gradients(self, params: list[torch.nn.Parameter], loss: torch.Tensor) -> float:
        """Sum every rank's gradients of `params` and `loss` in one all-reduce; a parameter keeps grad None only
        where no rank has one. Returns the summed loss."""
        if self.world == 1:
            return float(loss)
        device = loss.device
        flags = torch.tensor([float(p.grad is not None) for p in params] + [float(loss)], device=device)
        flat = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params] + [flags]
        )
        dist.all_reduce(flat)
        grads, flags = flat[: -len(flags)], flat[-len(flags) :]
        offset = 0
        for p, has in zip(params, flags[:-1].tolist()):
            p.grad = grads[offset : offset + p.numel()].view_as(p) if has > 0 else None
            offset += p.numel()
        return float(flags[-1])

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def from_environment() -> Group:
    """The group described by RANK / WORLD_SIZE / LOCAL_RANK (one process when unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Group()
    return Group(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))


def init(group: Group, device: torch.device) -> bool:
    """Join the process group (env:// rendezvous) if this run is distributed and not yet joined; True if joined."""
    if group.world == 1 or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and object collectives use the current device: this rank's own
    dist.init_process_group(
        backend(device), rank=group.rank, world_size=group.world, timeout=timedelta(hours=2)
    )  # rank 0 evaluates while the others wait
    return True


def backend(device: torch.device) -> str:
    """gloo on CPU; on CUDA NCCL for device tensors and gloo for host tensors (Group.any's flags)."""
    return "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank `rank`'s own random stream: rank 0 keeps `seed` (a one-process run's stream), every other
    rank a stream drawn from (seed, rank)."""
    return seed if rank == 0 else int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(local_rank: int, nproc: int, port: int, target, args: tuple) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(local_rank),
            "LOCAL_RANK": str(local_rank),
            "WORLD_SIZE": str(nproc),
        }
    )
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    try:
        target(*args)
    except UserError as e:
        print(f"srt-scale: error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)


def launch(nproc: int, target, args: tuple) -> None:
    """Run `target(*args)` in `nproc` local processes (ranks 0..nproc-1) joined over loopback, like
    `torchrun --nproc-per-node`. A rank that exits non-zero ends them all; its exit code is raised (SystemExit),
    its one-line error already printed."""
    import torch.multiprocessing as mp

    try:
        mp.start_processes(_worker, args=(nproc, free_port(), target, args), nprocs=nproc, start_method="spawn")
    except mp.ProcessExitedException as e:
        raise SystemExit(e.exit_code or 1) from None
