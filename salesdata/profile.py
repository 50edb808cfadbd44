"""The profile of each period the gate judges: its row count and mean units per category, against
the trailing periods.

Fewer rows than usual is judged on all of a period's rows: a partial export loses rows of series
that exist. More rows than usual is judged only on the rows of series seen before, against the
larger of the trailing mean and the previous period: launches, and a catalogue that grew over the
trailing window, are how real catalogues look (M1 and Tourism series start in hundreds of
different months), not bad data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandops.contract import SERIES_KEYS
from demandops.settings import GateSettings

PROFILE_COLUMNS = ["day", "category", "rows", "category_mean", "category_rows"]


def known_rows(frames: dict[str, pd.DataFrame], seen: pd.Index | None) -> dict[str, int]:
    """Per day, in day order, its rows of series seen earlier: in `seen` or an earlier day of `frames`."""
    known: set[tuple] = set() if seen is None else set(seen)
    counts = {}
    for day in sorted(frames):
        keys = list(zip(*(frames[day][k].to_numpy() for k in SERIES_KEYS), strict=True))
        counts[day] = sum(key in known for key in keys)
        known.update(keys)
    return counts


def day_profiles(frames: dict[str, pd.DataFrame], categories: pd.Series, seen: pd.Index | None = None) -> pd.DataFrame:
    """One row per (day, category): the day's row count, its rows of known series, the category's mean units."""
    known = known_rows(frames, seen)
    rows = []
    for day, frame in frames.items():
        # Non-numeric units are the row suite's finding; the profile only needs numbers.
        units = pd.to_numeric(frame["units_sold"], errors="coerce")
        by_category = frame.assign(units_sold=units, category=frame["sku_id"].map(categories)).groupby("category")[
            "units_sold"
        ]
        stats = by_category.agg(["mean", "size"])
        if stats.empty:  # an empty file: one row so that its row count is judged
            stats = pd.DataFrame({"mean": [0.0], "size": [0]}, index=["(none)"])
        rows += [
            {
                "day": day,
                "category": cat,
                "rows": len(frame),
                "known_rows": known[day],
                "category_mean": float(m),
                "category_rows": int(n),
            }
            for cat, m, n in zip(stats.index, stats["mean"], stats["size"], strict=True)
        ]
    return pd.DataFrame(rows, columns=[*PROFILE_COLUMNS, "known_rows"])


def _row_ratio(rows: pd.Series, known: pd.Series, window: int, min_periods: int) -> pd.Series:
    """All rows over the trailing mean when fewer; rows of known series over max(trailing mean, previous) when more."""
    trailing = rows.shift(1).rolling(window, min_periods=min_periods).mean()
    fewer = rows / trailing
    more = known / np.fmax(trailing, rows.shift(1))
    return fewer.where(rows < trailing, more)


def profile_ratios(current: pd.DataFrame, history: pd.DataFrame, gate: GateSettings) -> pd.DataFrame:
    """Each day's rows and category means relative to the trailing mean of earlier days."""
    parts = [history, current] if len(history) else [current]
    both = pd.concat(parts, ignore_index=True).sort_values("day", kind="stable")
    by_day = both.drop_duplicates("day").set_index("day")
    # Days of the ledger's history were judged already: all their rows count as known.
    known = by_day["known_rows"].fillna(by_day["rows"]) if "known_rows" in by_day else by_day["rows"]
    rows_ratio = _row_ratio(by_day["rows"], known, gate.trailing_partitions, gate.min_history_partitions)
    by_cat = both.set_index("day").groupby("category")["category_mean"]
    cat_trailing = by_cat.transform(
        lambda s: s.shift(1).rolling(gate.trailing_partitions, min_periods=gate.min_history_partitions).mean()
    )
    ratio = both["category_mean"].to_numpy(dtype="float64") / cat_trailing.to_numpy(dtype="float64")
    # A category mean over a handful of rows is noise, not evidence of a change of units.
    judged = both["category_rows"].to_numpy(dtype="float64") >= gate.min_category_rows
    both = both.assign(
        rows_ratio=both["day"].map(rows_ratio).to_numpy(dtype="float64"),
        category_mean_ratio=np.where(judged, ratio, np.nan),
    )
    both = both.drop(columns=["known_rows"], errors="ignore")
    return both[both["day"].isin(set(current["day"]))].reset_index(drop=True)


def profile_rows(verdicts: list[dict]) -> pd.DataFrame:
    """Profile rows (day, category, ...) of accepted verdicts, as the trailing bounds use them."""
    rows = [
        {"day": v["day"], "category": c, "rows": v["profile"]["rows"], "category_mean": m, "category_rows": n}
        for v in verdicts
        for c, (m, n) in v["profile"].get("categories", {}).items()
    ]
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)
