"""Training checkpoints: everything needed to resume a run where it stopped, bit for bit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from demandops.files import write_atomically

CHECKPOINT_FILE = "last.pt"
# Settings that change what training computes; resuming with a different value would mix two runs.
RESUME_MUST_MATCH = (
    "horizon",
    "quantiles",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "hidden",
    "embedding_dim",
)


@dataclass
class TrainingState:
    """The loop's state after an epoch."""

    epoch: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    generator: torch.Tensor
    best_state: dict[str, Any]
    best_loss: float
    best_epoch: int
    stale: int
    history: list[dict[str, float]]
    config: dict[str, Any]
    finished: bool = False


def save_checkpoint(state: TrainingState, directory: Path) -> Path:
    """Write atomically: a crash while saving leaves the previous checkpoint intact."""
    return write_atomically(directory / CHECKPOINT_FILE, lambda partial: torch.save(state.__dict__, partial))


def load_checkpoint(directory: Path, config: dict[str, Any]) -> TrainingState | None:
    """The last checkpoint in `directory`, or None when there is none.

    Refuses a checkpoint written with different training settings, naming them.
    """
    path = directory / CHECKPOINT_FILE
    if not path.exists():
        return None
    state = TrainingState(**torch.load(path, map_location="cpu", weights_only=False))
    differ = [
        f"{key}: checkpoint {state.config.get(key)!r}, now {config.get(key)!r}"
        for key in RESUME_MUST_MATCH
        if _plain(state.config.get(key)) != _plain(config.get(key))
    ]
    if differ:
        raise ValueError(f"cannot resume from {path}: settings differ ({'; '.join(differ)})")
    return state


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal (a config read back from JSON holds lists)."""
    return list(value) if isinstance(value, tuple) else value
