"""Several processes through PyTorch's own DDP, launched with ``torchrun`` (one process per GPU).

    torchrun --standalone --nproc_per_node=4 -m esrgan_video train --data ... --out runs/x

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`init` joins the process group (NCCL on
CUDA, gloo on the CPU). Every process draws the same global batch of ``world × batch`` patches from the same
seeded sampler and trains on its own slice (a DistributedSampler-style split), DDP averages the gradients, so
the run equals one process at ``world × batch``. Rank 0 writes the run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def from_env() -> World:
    """The world torchrun described in the environment (one process when it did not)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


_host_group = None
"""A gloo group beside NCCL's for what the host shares (the stop flag, the pools at a checkpoint): an NCCL
all-reduce of a flag would be a GPU tensor whose value the host must wait for, a CUDA sync every step."""


def init(world: World, device: torch.device) -> None:
    """Join the process group for ``world`` (no-op for one process)."""
    global _host_group
    if not world.distributed:
        return
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    if _host_group is None and dist.get_backend() != "gloo":
        _host_group = dist.new_group(backend="gloo")


def any_true(world: World, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (so all ranks stop at the same step). Through host
    memory (gloo), so it never waits for the GPU."""
    if not world.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_host_group)
    return bool(t.item() > 0)


def broadcast_error(world: World, message: str | None) -> str | None:
    """Share a setup error from any rank with all ranks (None when all are fine)."""
    if not world.distributed:
        return message
    out = [None] * world.size
    dist.all_gather_object(out, message)
    return next((m for m in out if m), None)


def gather(world: World, obj):
    """Every rank's ``obj`` (picklable) as a list in rank order on rank 0, None on the others; ``[obj]`` for one
    process. Collective: every rank must call it."""
    if not world.distributed:
        return [obj]
    out = [None] * world.size if world.main else None
    dist.gather_object(obj, out, dst=0, group=_host_group)
    return out


def sync_batchnorm(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """``model`` with every BatchNorm layer made a SyncBatchNorm for a multi-process CUDA world (the same
    parameters and buffers), else as is.

    Each process sees its slice of the global batch; plain BatchNorm would normalise by that slice's statistics,
    so a run on N GPUs at batch B would not equal one GPU at N × B (the vgg128 discriminator has 9 BatchNorm
    layers). PyTorch's SyncBatchNorm runs on GPUs only: a multi-process CPU run (gloo) keeps per-process
    BatchNorm."""
    if model is None or not world.distributed or device.type != "cuda":
        return model
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def shutdown(world: World) -> None:
    global _host_group
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
        _host_group = None


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel for a multi-process world, else as is."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


__all__ = ["World", "any_true", "barrier", "broadcast_error", "from_env", "gather", "init", "shutdown",
           "sync_batchnorm", "wrap"]
