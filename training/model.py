"""A global multi-horizon quantile network: one model for every (store, sku) series."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DemandForecaster(nn.Module):
    """Predicts p10/p50/p90 for each of `horizon` periods, in units of the series scale.

    Quantiles never cross: the median is predicted directly and the outer quantiles as
    non-negative distances from it.
    """

    def __init__(
        self,
        *,
        n_stores: int,
        n_skus: int,
        n_numeric: int,
        horizon: int,
        calendar_width: int,
        hidden: int = 128,
        embedding_dim: int = 8,
    ):
        super().__init__()
        self.horizon = horizon
        self.store_embedding = nn.Embedding(n_stores, embedding_dim)
        self.sku_embedding = nn.Embedding(n_skus, embedding_dim)
        width = 2 * embedding_dim + n_numeric + horizon * calendar_width
        self.body = nn.Sequential(
            nn.Linear(width, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
        )
        self.head = nn.Linear(hidden, horizon * 3)

    def forward(
        self, store: torch.Tensor, sku: torch.Tensor, numeric: torch.Tensor, calendar: torch.Tensor
    ) -> torch.Tensor:
        x = torch.cat(
            [
                self.store_embedding(store),
                self.sku_embedding(sku),
                numeric,
                calendar.flatten(1),
            ],
            dim=1,
        )
        raw = self.head(self.body(x)).view(-1, self.horizon, 3)
        median = raw[..., 1]
        lower = median - F.softplus(raw[..., 0])
        upper = median + F.softplus(raw[..., 2])
        return torch.stack([lower, median, upper], dim=-1)


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean quantile (pinball) loss; pred is (n, H, Q), target (n, H)."""
    error = target.unsqueeze(-1) - pred
    return torch.maximum(quantiles * error, (quantiles - 1) * error).mean()
