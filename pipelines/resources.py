"""Dagster resources: the one settings object, and the stores derived from it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
from feast import FeatureStore

from demandops.datasets import resolve_frequency
from demandops.frequency import Frequency, longest_span
from demandops.settings import Cadence, Settings
from feature_repo.store import open_store
from lifecycle.registry import ModelRegistry
from training.features import FeatureSpec


class DemandopsResource(dg.ConfigurableResource):
    """Where state and data live, per profile; the settings object seen from Dagster."""

    profile: str = "local"
    project_dir: str
    state_dir: str
    data_dir: str
    frequency: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DemandopsResource:
        return cls(
            profile=settings.profile,
            project_dir=str(settings.project_dir),
            state_dir=str(settings.state),
            data_dir=str(settings.data),
            frequency=settings.frequency,
        )

    def settings(self) -> Settings:
        return Settings(
            profile=self.profile,
            project_dir=Path(self.project_dir),
            state_dir=Path(self.state_dir),
            data_dir=Path(self.data_dir),
            frequency=self.frequency,
        )

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

    def registry(self) -> ModelRegistry:
        settings = self.settings()
        return ModelRegistry(
            tracking_uri=settings.mlflow_tracking_uri,
            model_name=settings.model.name,
            lifecycle=settings.lifecycle,
            database_url=settings.mlflow_database_url,
        )
