"""The statistical models fitted across a local Ray cluster forecast what they forecast in process."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from demandops.settings import Settings
from salesdata.simulator import SimulatedData
from training.statistical import statistical_forecasts, statistical_paths, window_origins
from training.statistical_engines import IN_PROCESS, InProcess, OnRay, statistical_engine

NAMES = ("AutoETS", "DynamicOptimizedTheta")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[OnRay]:
    """A Ray instance started on this machine, as `cluster.engine=ray` without an address starts one."""
    ray = pytest.importorskip("ray")
    yield OnRay()
    ray.shutdown()


@pytest.mark.slow
def test_ray_fits_the_same_models_as_the_process(small_data: SimulatedData, local_ray: OnRay) -> None:
    sales = small_data.sales
    stamps = pd.to_datetime(sales["date"]).dt.tz_localize("UTC")
    origins = window_origins(np.sort(stamps.unique())[:-7], 7)[-2:]
    rows = sales.assign(event_timestamp=stamps)[stamps.isin(origins)][["store_id", "sku_id", "event_timestamp"]]
    rows = rows.reset_index(drop=True)
    here = statistical_forecasts(sales, rows, frequency="D", horizon=7, period=7, names=NAMES, on=IN_PROCESS)
    there = statistical_forecasts(sales, rows, frequency="D", horizon=7, period=7, names=NAMES, on=local_ray)
    for name in NAMES:
        assert np.isfinite(here[name]).all() and here[name].shape == (len(rows), 7)
        np.testing.assert_allclose(there[name], here[name], rtol=1e-6, atol=1e-5)  # Ray returns 32-bit floats

    series = rows[["store_id", "sku_id"]].drop_duplicates()
    kwargs = dict(frequency="D", periods=14, period=7, names=NAMES)
    pd.testing.assert_frame_equal(
        statistical_paths(sales, series, on=local_ray, **kwargs),
        statistical_paths(sales, series, on=IN_PROCESS, **kwargs),
        rtol=1e-6,
        atol=1e-5,
    )


def test_the_worker_processes_fit_what_one_process_fits(small_data: SimulatedData) -> None:
    sales = small_data.sales
    series = sales[["store_id", "sku_id"]].drop_duplicates().head(12)
    kwargs = dict(frequency="D", periods=14, period=7, names=NAMES)
    pd.testing.assert_frame_equal(
        statistical_paths(sales, series, on=InProcess(processes=2, min_series_per_worker=1), **kwargs),
        statistical_paths(sales, series, on=IN_PROCESS, **kwargs),
    )


def test_a_small_catalogue_is_fitted_without_starting_workers() -> None:
    two = InProcess(processes=2)
    assert two.workers_for(two.min_series_per_worker * 2 - 1) == 1
    assert two.workers_for(two.min_series_per_worker * 2) == 2
    assert two.workers_for(10_000) == 2
    assert InProcess(processes=2, min_series_per_worker=1).workers_for(12) == 2


def test_the_cluster_settings_choose_the_engine() -> None:
    assert statistical_engine(Settings().cluster.engine) == InProcess(processes=os.cpu_count())
    assert statistical_engine("embedded", processes=3) == InProcess(processes=3)
    assert statistical_engine("ray", "ray://head:10001") == OnRay("ray://head:10001")
    assert statistical_engine("ray", "") == OnRay(None)
