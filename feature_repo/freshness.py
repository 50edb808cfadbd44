"""What the online store holds, judged per series: complete and current, or not.

Feast materializes one feature view after another, and an online store can lose everything (a
Redis restarted without persistence). So a series may be held with its history of one period
and its prices of another, or with one view and not the other. A series counts as held only when
every per-period view has a row of the same period and its store and SKU attributes are there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from feast import FeatureStore
from feast.errors import FeatureViewNotFoundException

from feature_repo.definitions import SERIES_VIEWS, STATIC_VIEWS
from feature_repo.sources import PERIODS_DIRNAME, period_file

Pair = tuple[str, str]
CHECK_CHUNK = 1000  # entity rows per online read while checking a whole catalogue


def consistent_stamps(response: Mapping[str, list], stamp_columns: Sequence[str]) -> np.ndarray:
    """Per entity row of a Feast response (include_event_timestamps): the period its views share, in epoch
    seconds, or 0 where a view has no row or the views hold different periods."""
    stamps = np.stack([np.asarray(response[column], dtype="int64") for column in stamp_columns])
    agree = (stamps == stamps[0]).all(axis=0) & (stamps[0] > 0)
    return np.where(agree, stamps[0], 0)


def stamp_column(feature: str) -> str:
    """The response column Feast fills with a feature's event time (0 when it has no row)."""
    return f"{feature}__ts"


@dataclass(frozen=True)
class OnlineLag:
    """How the online store stands against the newest period of the offline features."""

    period: str | None
    series: int
    behind: list[Pair] = field(default_factory=list)

    @property
    def current(self) -> bool:
        return not self.behind

    def describe(self) -> str:
        if self.current:
            return f"the online store holds all {self.series} series of {self.period} complete"
        examples = ", ".join(f"{s}/{k}" for s, k in self.behind[:5])
        return (
            f"the online store lacks complete {self.period} features for {len(self.behind)} of {self.series} "
            f"series (e.g. {examples})"
        )


def online_lag(store: FeatureStore, source_dir: Path) -> OnlineLag:
    """Whether every series of the newest feature period is online, complete and of that period.

    Series whose latest row is older (discontinued, or not sold lately) are not checked: the newest
    period is what every materialization writes, so a store that holds it whole is not behind.
    """
    periods = sorted(p.stem for p in (source_dir / PERIODS_DIRNAME).glob("*.parquet"))
    if not periods:
        return OnlineLag(period=None, series=0)
    newest = periods[-1]
    pairs = list(
        pq.read_table(period_file(source_dir, newest), columns=["store_id", "sku_id"])
        .to_pandas()
        .itertuples(index=False, name=None)
    )
    expected = int(pd.Timestamp(newest, tz="UTC").timestamp())
    try:
        store.get_feature_view(SERIES_VIEWS[0])
    except FeatureViewNotFoundException:  # features were written but never applied: nothing is online
        return OnlineLag(period=newest, series=len(pairs), behind=pairs)
    behind: list[Pair] = []
    for start in range(0, len(pairs), CHECK_CHUNK):
        chunk = pairs[start : start + CHECK_CHUNK]
        held = _held_stamps(store, chunk)
        behind += [pair for pair, stamp in zip(chunk, held, strict=True) if stamp != expected]
    return OnlineLag(period=newest, series=len(pairs), behind=behind)


def _held_stamps(store: FeatureStore, pairs: list[Pair]) -> np.ndarray:
    """One feature of every view per pair: the series views' shared period, 0 when incomplete."""
    series = {view: store.get_feature_view(view).features[0].name for view in SERIES_VIEWS}
    static = {view: names[0] for view, names in STATIC_VIEWS.values()}
    response = store.get_online_features(
        features=[f"{view}:{name}" for view, name in {**series, **static}.items()],
        entity_rows=[{"store_id": s, "sku_id": k} for s, k in pairs],
    ).to_dict(include_event_timestamps=True)
    stamps = consistent_stamps(response, [stamp_column(name) for name in series.values()])
    attributes_held = np.all([[value is not None for value in response[name]] for name in static.values()], axis=0)
    return np.where(attributes_held, stamps, 0)
