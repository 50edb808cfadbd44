"""Where training runs: CUDA when present (bf16 autocast), else MPS, else CPU, with the same code."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Accelerator:
    device: torch.device

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA; full precision elsewhere, where the quality bars were measured
        (bench/train.py measures CPU bf16 too: faster on this machine, but not validated)."""
        if self.is_cuda:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def pick_accelerator(preferred: str = "auto", local_rank: int = 0) -> Accelerator:
    """The requested device, or the best available one for "auto" (a torchrun rank's own GPU)."""
    if preferred != "auto":
        return Accelerator(torch.device(preferred))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return Accelerator(torch.device("cuda", local_rank))
    if torch.backends.mps.is_available():
        return Accelerator(torch.device("mps"))
    return Accelerator(torch.device("cpu"))
