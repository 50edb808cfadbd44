"""Interval calibration on the validation window (conformalized quantile regression).

A network trained with pinball loss tends to give bands that are too narrow on periods it has
not seen. After training, each outer quantile of each horizon step is shifted by the amount
that makes it hold on the validation window: the 0.9-quantile of (p10 - actual) for the lower
band and of (actual - p90) for the upper one. Shifts are in scaled units, like the network's
outputs, so a slow and a fast mover widen in proportion to their level.
"""

from __future__ import annotations

import torch


def fit_interval_shift(
    pred: torch.Tensor, target: torch.Tensor, quantiles: tuple[float, ...]
) -> dict[str, list[float]]:
    """Per-step shifts of the lowest and highest quantile; pred (n, H, Q) and target (n, H) are scaled."""
    low, high = quantiles[0], quantiles[-1]
    lower = torch.quantile((pred[..., 0] - target).double(), 1 - low, dim=0)
    upper = torch.quantile((target - pred[..., -1]).double(), high, dim=0)
    return {"lower": lower.tolist(), "upper": upper.tolist()}


def apply_interval_shift(pred: torch.Tensor, shift: dict[str, list[float]]) -> torch.Tensor:
    """Widen (or narrow) the outer quantiles by the shifts; they never cross the median."""
    if not shift:
        return pred
    lower_shift = torch.tensor(shift["lower"], dtype=pred.dtype, device=pred.device)
    upper_shift = torch.tensor(shift["upper"], dtype=pred.dtype, device=pred.device)
    median = pred[..., 1]
    lower = torch.minimum(pred[..., 0] - lower_shift, median)
    upper = torch.maximum(pred[..., 2] + upper_shift, median)
    return torch.stack([lower, median, upper], dim=-1)
