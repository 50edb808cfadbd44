"""Which origins of each series a model learns from: every recent one, and a sample of the rest.

A catalogue of 25,000 daily series over two years has 16 million origins, each a training row of
some hundred columns: more than one machine should hold, and far more than a global network
needs (neighbouring origins of one series are nearly the same example). So the training set keeps
every origin of its last `tail` periods (the backtest, the validation window and the gaps between
them) and at most a fixed number of older origins per series, drawn with weights that halve every
`half_life` periods back; and each epoch draws its own windows per series from those, the same way.

Both draws are weighted sampling without replacement by exponential races (Efraimidis and
Spirakis): each row draws u uniform in (0, 1) and gets the key -log(u) / weight; the smallest keys
of a series win. The training set's draw takes u from a hash of the row's key, so a row is kept or
not whatever chunk of the catalogue it is built with; the epochs' draw takes u from the training's
seeded generator, so a resumed training draws what the uninterrupted one would have.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from demandops.contract import SERIES_KEYS
from demandops.frequency import period_ordinals

PERIODS_PER_YEAR = {"D": 365, "W": 52, "M": 12}


def recency_weights(age: np.ndarray, half_life: float) -> np.ndarray:
    """1 for the latest period, halving every `half_life` periods back."""
    return np.exp2(-np.asarray(age, dtype="float64") / half_life)


def origin_pool(
    entities: pd.DataFrame, *, frequency: str, tail_start: int, per_series: int | None, half_life: float
) -> pd.DataFrame:
    """The rows of `entities` to build training rows for: every origin from period ordinal
    `tail_start` on, and at most `per_series` earlier origins of each series (all with None)."""
    if per_series is None:
        return entities
    ordinal = period_ordinals(entities["event_timestamp"], frequency)
    recent = ordinal >= tail_start
    older = np.flatnonzero(~recent)
    uniform = _hashed_uniform(entities.iloc[older])
    key = -np.log(uniform) / recency_weights(tail_start - ordinal[older], half_life)
    series = entities.iloc[older].groupby(list(SERIES_KEYS), sort=False).ngroup().to_numpy()
    kept = older[_first_per_group(series, key, per_series)]
    keep = recent.copy()
    keep[kept] = True
    return entities[keep].reset_index(drop=True)


def epoch_windows(
    series: torch.Tensor, age: torch.Tensor, *, per_series: int, half_life: float, generator: torch.Generator
) -> torch.Tensor:
    """Row indices of one epoch: at most `per_series` rows of each series, recent ones likelier."""
    uniform = torch.rand(len(series), generator=generator, dtype=torch.float64).clamp_min(1e-300)
    key = -torch.log(uniform) / torch.exp2(-age.double() / half_life)
    picked = _first_per_group(series.numpy(), key.numpy(), per_series)
    return torch.from_numpy(np.sort(picked))


def _first_per_group(group: np.ndarray, key: np.ndarray, most: int) -> np.ndarray:
    """Positions of the `most` smallest keys within each group."""
    order = np.lexsort((key, group))
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return order[rank < most]


def _hashed_uniform(rows: pd.DataFrame) -> np.ndarray:
    """A number in (0, 1) per row from its series and origin: the same row always draws the same."""
    hashed = pd.util.hash_pandas_object(rows[[*SERIES_KEYS, "event_timestamp"]], index=False).to_numpy()
    return ((hashed >> np.uint64(11)).astype("float64") + 0.5) / float(1 << 53)
