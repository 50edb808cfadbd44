"""Data-parallel training under torchrun: the process group, and each rank's shard of a batch.

Every rank draws the same batch order from the same seeded generator and trains on an
interleaved slice of each batch; DDP averages the gradients. The loss of a shard is scaled so
that the averaged gradient equals the gradient of the whole batch: N ranks compute what one
process would, up to floating-point rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import distributed as dist


@dataclass(frozen=True)
class Worker:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, batch_index: torch.Tensor) -> torch.Tensor:
        """The rows of a global batch this rank trains on."""
        return batch_index[self.rank :: self.world_size]

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (the values themselves in a single process)."""
        if not self.distributed:
            return values
        total = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total.tolist()


SINGLE_PROCESS = Worker()


def start_worker() -> Worker:
    """Join the process group torchrun set up for this process; a lone process otherwise.

    gloo on the CPU, NCCL when each rank has a GPU. Rank, world size and the rank on this node
    come from torch's own reading of the launcher's protocol, not from our settings.
    """
    if not dist.is_torchelastic_launched():
        return Worker()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Worker(dist.get_rank(), dist.get_world_size(), dist.get_node_local_rank(fallback_rank=0))


def stop_worker(worker: Worker) -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
