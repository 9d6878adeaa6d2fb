"""Process group set-up for ``torchrun`` (gloo on CPU, nccl on CUDA) and the few collectives training needs."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class Dist:
    """This process's place: ``rank`` of ``world`` processes, its ``device``; ``main`` writes files."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialised_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def check_one_gpu_each(local_world: int, local_rank: int, gpus: int) -> None:
    """Refuse (``ValueError``) more processes on this host than it has CUDA devices.

    Each process needs a GPU of its own: NCCL cannot run two ranks of one group on the same device.
    ``local_world`` is the number of processes torchrun started on this host, ``gpus`` the CUDA devices.
    """
    if local_world > gpus or local_rank >= gpus:
        have = f"{gpus} CUDA device" + ("" if gpus == 1 else "s")
        raise ValueError(
            f"{max(local_world, local_rank + 1)} processes were started on this host but torch sees "
            f"{have}: each process needs a GPU of its own; start at most {gpus} "
            f"(torchrun --nproc_per_node={gpus}), or use --device cpu"
        )


def local_world_size() -> int:
    """Processes torchrun started on this host (1 when not launched by torchrun)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))


def resolve_device(name: str | None, local_rank: int = 0) -> torch.device:
    """``cuda`` (this process's GPU under torchrun), ``cpu``, or the best available when ``name`` is None."""
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {name!r}; choose one of: cuda, cuda:N, cpu") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name} was asked for but torch sees no CUDA device; use --device cpu")
        count = torch.cuda.device_count()
        local_world = local_world_size() if launched_by_torchrun() else 1
        if device.index is None:
            check_one_gpu_each(local_world, local_rank, count)
            device = torch.device("cuda", local_rank)
        elif device.index >= count:
            raise ValueError(f"--device {name}: there are {count} CUDA devices (cuda:0 to cuda:{count - 1})")
        elif local_world > 1:
            raise ValueError(
                f"--device {name} puts all {local_world} processes on one GPU; "
                "pass --device cuda (each process takes the GPU of its local rank)"
            )
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {name!r}; choose one of: cuda, cuda:N, cpu")
    return device


def setup(device_name: str | None) -> Dist:
    """Join the process group torchrun describes in the environment (or run alone)."""
    if not launched_by_torchrun():
        return Dist(device=resolve_device(device_name))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = resolve_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    here = False
    if world > 1 and not dist.is_initialized():
        if device.type == "cpu":
            _keep_gloo_on_loopback()
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            rank=rank,
            world_size=world,
            device_id=device if device.type == "cuda" else None,
        )
        here = True
    return Dist(rank, world, local_rank, device, here)


LOOPBACK_ADDRESSES = ("127.0.0.1", "localhost", "::1")


def _keep_gloo_on_loopback() -> None:
    """Point gloo at the loopback interface when the whole group is on this host (MASTER_ADDR is loopback).

    Left alone, gloo binds to the address the hostname resolves to; on sandboxed or firewalled hosts that
    address can be unreachable and the first collective waits for the 30-minute timeout instead of failing.
    A user's own ``GLOO_SOCKET_IFNAME`` always wins.
    """
    if "GLOO_SOCKET_IFNAME" in os.environ or os.environ.get("MASTER_ADDR") not in LOOPBACK_ADDRESSES:
        return
    if sys.platform.startswith("linux"):
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    elif sys.platform == "darwin":
        os.environ["GLOO_SOCKET_IFNAME"] = "lo0"


def teardown(d: Dist) -> None:
    if d.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(d: Dist, values: torch.Tensor) -> torch.Tensor:
    """Sum of ``values`` over all processes (``values`` itself when alone)."""
    if d.active:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_reduce_min(d: Dist, values: torch.Tensor) -> torch.Tensor:
    """Elementwise minimum of ``values`` over all processes (``values`` itself when alone)."""
    if d.active:
        dist.all_reduce(values, op=dist.ReduceOp.MIN)
    return values


def all_gather_objects(d: Dist, obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order."""
    if not d.active:
        return [obj]
    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def any_flag(d: Dist, flag: bool) -> bool:
    """True when any process raised ``flag`` (so all stop at the same step)."""
    if not d.active:
        return flag
    t = torch.tensor([int(flag)], device=d.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()
