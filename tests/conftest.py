"""Shared fixtures: tiny real data and per-test state folders (no mocks of our own code)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from demandops.datasets import generate
from demandops.settings import Settings
from demandops.simulator import PRESETS, simulate
from training.dataset import entity_rows
from training.features import compute_features


@pytest.fixture(scope="session")
def small_sales() -> pd.DataFrame:
    return simulate(PRESETS["small"]).sales


@pytest.fixture(scope="session")
def small_training_set(small_sales: pd.DataFrame) -> pd.DataFrame:
    """Features joined to labels without Feast (Feast's own join is tested in feature_repo/)."""
    features = compute_features(small_sales)
    return entity_rows(small_sales, horizon=7).merge(features, on=["store_id", "sku_id", "event_timestamp"])


def make_settings(project_dir: Path, **overrides) -> Settings:
    return Settings(project_dir=project_dir, preset="small", **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose project, data and state all live in a fresh temporary folder."""
    return make_settings(tmp_path)


@pytest.fixture
def project_with_data(settings: Settings) -> Settings:
    """A project folder holding the small dataset, not yet tracked by DVC."""
    generate(settings.data, "small")
    return settings
