"""Drift of the latest periods from the Production version's training window: the features the online
store serves (the offline source files it is materialized from) and the sales themselves."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from demandops.frequency import shift_period
from demandops.settings import Settings
from feature_repo.sources import PERIODS_DIRNAME, period_file
from lifecycle.evidence import trained_until_of
from lifecycle.registry import ModelRegistry
from lifecycle.states import ALIASES, State
from monitoring.drift import drift_table, unseen_share, worst_band
from pipelines.lake import Lake
from training.tracking import download_bundle

NOT_FEATURES = {"store_id", "sku_id", "event_timestamp", "created"}


@dataclass(frozen=True)
class Drift:
    champion: str | None
    reference: list[str] = field(default_factory=list)  # periods of the training window compared with
    recent: list[str] = field(default_factory=list)  # periods after it
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["feature", "psi", "band"]))
    unseen_share: float = 0.0
    why_not_measured: str = ""

    @property
    def band(self) -> str:
        return worst_band(self.table)

    def summary(self) -> dict:
        return {
            "champion": self.champion,
            "reference": [self.reference[0], self.reference[-1]] if self.reference else None,
            "recent": [self.recent[0], self.recent[-1]] if self.recent else None,
            "band": self.band,
            "psi": dict(zip(self.table["feature"], self.table["psi"].astype(float), strict=True)),
            "unseen_share": self.unseen_share,
            "why_not_measured": self.why_not_measured,
        }


def measure_drift(settings: Settings, lake: Lake, registry: ModelRegistry, *, horizon: int, frequency: str) -> Drift:
    """PSI per feature (and units sold) of the latest periods after the champion's training data, against
    the last periods of it. Its training data end a horizon after its last origin (the labels); drift is
    measured once `drift_recent_periods` periods have come since, so a new champion is not judged on the
    periods it learned from, nor on one or two periods' noise."""
    champion = registry.by_alias(ALIASES[State.PRODUCTION])
    if champion is None:
        return Drift(None, why_not_measured="no version is in Production: nothing to compare with")
    until = trained_until_of(champion.tags)
    if until is None:
        why = f"version {champion.version} does not record its training window (trained before it was recorded)"
        return Drift(champion.version, why_not_measured=why)
    monitoring = settings.monitoring
    data_end = shift_period(pd.Timestamp(until), horizon, frequency).date().isoformat()
    periods = sorted(p.stem for p in (settings.feast_dir / PERIODS_DIRNAME).glob("*.parquet"))
    reference = [p for p in periods if p <= data_end][-monitoring.drift_reference_periods :]
    recent = [p for p in periods if p > data_end][-monitoring.drift_recent_periods :]
    if len(recent) < monitoring.drift_recent_periods or len(reference) < 2:
        why = (
            f"{len(recent)} of the {monitoring.drift_recent_periods} periods needed after version "
            f"{champion.version}'s training data (which end {data_end}) have come"
            if len(recent) < monitoring.drift_recent_periods
            else f"fewer than 2 periods of version {champion.version}'s training data have features"
        )
        return Drift(champion.version, reference, recent, why_not_measured=why)
    old, new = _features(settings.feast_dir, reference), _features(settings.feast_dir, recent)
    old_sales, new_sales = _sales(lake, reference), _sales(lake, recent)
    columns = [c for c in new.columns if c not in NOT_FEATURES and pd.api.types.is_numeric_dtype(new[c])]
    both = pd.concat([drift_table(old, new, columns), drift_table(old_sales, new_sales, ["units_sold"])])
    table = both.sort_values("psi", ascending=False, ignore_index=True)
    with tempfile.TemporaryDirectory() as scratch:
        meta = download_bundle(settings.mlflow_tracking_uri, champion.run_id, Path(scratch)).meta
    selling = new_sales[new_sales["units_sold"] > 0][["store_id", "sku_id"]].drop_duplicates()
    return Drift(champion.version, reference, recent, table, unseen_share(selling, meta.stores, meta.skus))


def _features(feast_dir: Path, periods: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(period_file(feast_dir, p)) for p in periods], ignore_index=True)


def _sales(lake: Lake, periods: list[str]) -> pd.DataFrame:
    """Units sold of these periods; the frames' rows need not line up with the features', PSI compares
    distributions."""
    sales = lake.raw_sales_between(date.fromisoformat(periods[0]), date.fromisoformat(periods[-1]))
    return sales[["store_id", "sku_id", "units_sold"]].reset_index(drop=True)
