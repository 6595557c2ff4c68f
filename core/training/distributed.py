"""Data-parallel training under ``torchrun``.

``torchrun --nproc_per_node=N -m synthscape train ...`` starts N copies of the same command with
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set. ``ProcessGroup.start`` reads them and joins a
``torch.distributed`` process group (gloo on CPU, NCCL on CUDA); without them it is a group of
one and every method is a no-op, so the training loop has one code path.

Gradients are averaged the way ``DistributedDataParallel`` averages them (one all-reduce of the
flattened gradients, divided by the world size) but explicitly, before each optimizer step,
because a GAN step does not fit DDP's contract of one forward and one backward per wrapped
module: the critic runs three times per step with two optimizers, and the lazy R1 penalty takes
a double backward (``torch.autograd.grad(create_graph=True)``), which DDP does not support.
Weights start equal (rank 0's are broadcast), gradients are equal after the average, so the
replicas stay bitwise equal and any rank's weights are the model.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from synthscape.core.sampling.shards import torchrun_environment

log = logging.getLogger("synthscape")


class ProcessGroup:
    """This process's place among the training processes; a group of one outside torchrun."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, owned: bool = False):
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.owned = owned  # this object initialised torch.distributed, so it tears it down

    @classmethod
    def start(cls, device: torch.device, timeout_minutes: float = 30.0) -> tuple[ProcessGroup, torch.device]:
        """Join the torchrun group, if any; returns it and the device this rank trains on."""
        env = torchrun_environment()
        if env is None or env["WORLD_SIZE"] == 1:
            return cls(), device
        group = cls(env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], owned=not dist.is_initialized())
        if device.type == "cuda":
            device = torch.device("cuda", group.local_rank)
            torch.cuda.set_device(device)
        if group.owned:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(minutes=timeout_minutes))
        log.info("rank %d of %d training on %s (%s)", group.rank, group.world, device, dist.get_backend())
        return group, device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and grids."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process: only then do the collective methods communicate at all."""
        return self.world > 1

    def broadcast_modules(self, modules: Iterable[nn.Module]) -> None:
        """Make every rank's parameters and buffers rank 0's (DDP does the same at wrap time)."""
        if self.distributed:
            for module in modules:
                for tensor in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(tensor.data, src=0)

    def average_gradients(self, parameters: Sequence[torch.Tensor]) -> None:
        """Replace each gradient by its mean over the ranks: one all-reduce over them all, flattened."""
        if not self.distributed:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def average_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """The mean of each metric over the ranks, in the same order everywhere (NaN stays NaN)."""
        if not self.distributed or not metrics:
            return metrics
        names = sorted(metrics)
        values = torch.tensor([metrics[name] for name in names], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            values = values.cuda()
        dist.all_reduce(values)
        return dict(zip(names, (values / self.world).tolist()))

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` in rank order (picklable objects; for RNG states at checkpoints)."""
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        """Wait until every rank gets here (no-op in a group of one), e.g. so that no rank goes on
        before rank 0 has written a checkpoint."""
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Leave torch.distributed if this object joined it; a group initialised by someone else
        (``owned`` False) is theirs to tear down."""
        if self.owned and dist.is_initialized():
            dist.destroy_process_group()
