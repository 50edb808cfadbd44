"""Plausible numbers and dates: garbage is refused, real data never is.

Units are judged per series, relative to the largest *other* value the series has (its accepted
history and the other rows that arrive with it): a value a thousand times above everything else
the series ever sold is a unit error or a corrupt export, while any real promotion spike passes.
One unit is the smallest reference, so that a series that sold nothing before may start selling;
a series' very first value has no reference and is not judged.
A period is judged against the other periods of the data: one that lies years away from all of
them (a row dated 1900 in a file of 2024) is a typo, not history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd

from demandops.contract import SERIES_KEYS

SMALLEST_REFERENCE = 1.0
DAYS_PER_YEAR = 365.25


def units_vs_reference(frame: pd.DataFrame, history_max: pd.Series | None = None) -> pd.Series:
    """Each row's units over the largest other value of its series (history and other rows), at least 1.

    `history_max` holds the largest accepted units per series, indexed by (store_id, sku_id).
    NaN where the row's units are not a number, or a column is missing (the suite's other findings),
    and for the only value a series has so far.
    """
    if not {"units_sold", *SERIES_KEYS} <= set(frame.columns):
        return pd.Series(np.nan, index=frame.index)
    units = pd.to_numeric(frame["units_sold"], errors="coerce").astype("float64")
    keys = [frame[k].to_numpy() for k in SERIES_KEYS]
    grouped = units.groupby(keys)
    rank = grouped.rank(method="first", ascending=False)
    # The largest value but the row's own: the second largest for the row holding the maximum.
    second = units.where(rank == 2).groupby(keys).transform("max")
    others = grouped.transform("max").where(rank != 1, second).to_numpy()
    if history_max is not None and len(history_max):
        known = history_max.reindex(pd.MultiIndex.from_arrays(keys, names=list(SERIES_KEYS))).to_numpy()
        others = np.fmax(others, known)
    # A series' first value has nothing to be judged against (a launch): not judged, NaN.
    reference = np.maximum(others, SMALLEST_REFERENCE)  # NaN (nothing to judge against) stays NaN
    return pd.Series(units.to_numpy() / reference, index=frame.index)


def series_max(frame: pd.DataFrame, earlier: pd.Series | None = None) -> pd.Series:
    """The largest finite units per series of `frame`, merged with an earlier such table."""
    units = pd.to_numeric(frame["units_sold"], errors="coerce").astype("float64")
    finite = frame.assign(units_sold=units)[np.isfinite(units)]
    latest = finite.groupby(list(SERIES_KEYS))["units_sold"].max()
    if earlier is None or not len(earlier):
        return latest
    return pd.concat([earlier, latest]).groupby(level=list(SERIES_KEYS)).max()


def isolated_periods(periods: Iterable[date], max_gap_years: float) -> list[date]:
    """Periods further than `max_gap_years` from the nearest other period (none when there is one period)."""
    days = sorted(set(periods))
    if len(days) < 2:
        return []
    stamps = pd.to_datetime(pd.Series(days))
    gaps = stamps.diff().dt.days.to_numpy(dtype="float64")
    before, after = gaps, np.append(gaps[1:], np.nan)
    nearest = np.fmin(np.nan_to_num(before, nan=np.inf), np.nan_to_num(after, nan=np.inf))
    limit = max_gap_years * DAYS_PER_YEAR
    return [d for d, gap in zip(days, nearest, strict=True) if gap > limit]


def dates_text(days: Iterable[date], limit: int = 5) -> str:
    """'2023-01-02, 2023-01-09 (and 3 more)': dates as a person writes them, not Python reprs."""
    days = list(days)
    text = ", ".join(pd.Timestamp(d).date().isoformat() for d in days[:limit])
    return text + (f" (and {len(days) - limit} more)" if len(days) > limit else "")
