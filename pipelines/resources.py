"""Dagster resources: the one settings object, and the stores derived from it."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
from feast import FeatureStore

from demandops.frequency import Frequency, longest_span
from demandops.settings import Cadence, Settings
from feature_repo.store import open_store
from lifecycle.registry import ModelRegistry
from pipelines.lake import Lake
from salesdata.datasets import resolve_frequency
from training.features import FeatureSpec


class DemandopsResource:
    """The run's settings object seen from Dagster, and the stores derived from it.

    A plain object handed to assets as `Demandops` (dg.ResourceParam), not Dagster config: every
    field set in code reaches every asset as it was set, and a secret in the settings (a database
    password) never becomes resource config shown in the UI. A run launched from the UI builds it
    from the environment when its code location loads.
    """

    def __init__(self, settings: Settings):
        self._settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> DemandopsResource:
        return cls(settings)

    def settings(self) -> Settings:
        return self._settings

    def data_frequency(self) -> Frequency:
        return resolve_frequency(self.settings())

    def cadence(self) -> Cadence:
        """Horizon, season, holdout and history windows for the data's frequency."""
        return self.settings().cadence(self.data_frequency())

    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec.for_cadence(self.data_frequency(), self.cadence())

    def feature_ttl(self) -> timedelta:
        return longest_span(self.cadence().feature_ttl_periods, self.data_frequency())

    def feature_store(self) -> FeatureStore:
        return open_store(self.settings())

    def lake(self) -> Lake:
        return Lake(self.settings().lake_dir)

    def registry(self) -> ModelRegistry:
        return ModelRegistry.from_settings(self.settings())


# How assets, checks and sensors ask for it: a bare Python object as a Dagster resource.
Demandops = dg.ResourceParam[DemandopsResource]
