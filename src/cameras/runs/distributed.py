"""The ranks of a run: one process, or one of ``torchrun``'s processes joined with :mod:`torch.distributed`.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) :func:`setup` joins the process group from the
environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``): NCCL when the run
is on CUDA (each rank on its own GPU, ``cuda:LOCAL_RANK``), Gloo on the CPU. No launcher or socket code of our own:
torchrun starts the processes and restarts or stops them, torch.distributed carries the few messages (barriers, the
rank-0 decision broadcast).

Example (a single process):
    >>> ctx = setup("cpu")
    >>> ctx.rank, ctx.world_size, ctx.is_main
    (0, 1, True)
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Ranks", "current_rank", "device_problem", "setup"]

TIMEOUT = datetime.timedelta(hours=2)
"""How long a rank waits for the others at a barrier (a rank that dies makes torchrun stop the others first)."""


def current_rank() -> int:
    """This process's global rank from the environment (0 outside torchrun)."""
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0


@dataclass
class Ranks:
    """This process's place in the run.

    Attributes:
        rank: global rank (0 … world_size − 1); rank 0 writes the final outputs.
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
        device: the device this rank computes on (``cuda:LOCAL_RANK`` for a CUDA run under torchrun).
        backend: ``"nccl"``, ``"gloo"`` or ``None`` (one process).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (a no-op for one process)."""
        if self.backend is None:
            return
        import torch.distributed as dist

        if self.backend == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (a picklable object; returned as is for one process)."""
        if self.backend is None:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order, on rank 0; ``[]`` on the other ranks (``[value]`` for
        one process)."""
        if self.backend is None:
            return [value]
        import torch.distributed as dist

        if self.backend == "nccl":
            box: list[Any] = [None] * self.world_size
            dist.all_gather_object(box, value)
            return box if self.is_main else []
        got: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, got, dst=0)
        return got or []

    def close(self) -> None:
        """Leave the process group (a no-op for one process)."""
        if self.backend is None:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        self.backend = None


def setup(device: str) -> Ranks:
    """Join torchrun's process group if there is one; the device of this rank.

    Args:
        device: the ``--device`` given. Under torchrun a CUDA device becomes ``cuda:LOCAL_RANK``.

    Raises:
        RuntimeError: the environment says torchrun but the group cannot be joined.
    """
    dev = torch.device(device)
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Ranks(0, 1, 0, dev)
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=TIMEOUT)
    return Ranks(dist.get_rank(), dist.get_world_size(), local, dev, backend)


def device_problem(name: str) -> str | None:
    """Why the device ``name`` cannot be used on this machine (``None`` when it can)."""
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return f"--device {name}: CUDA is not available on this machine"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    elif device.type == "mps" and not torch.backends.mps.is_available():
        return f"--device {name}: MPS is not available on this machine"
    elif device.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        return f"--device {name}: no Intel XPU is available on this machine"
    return None
