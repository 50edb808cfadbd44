"""Where the statistical models are fitted: in this process, or across a Ray cluster.

They are fitted per series, independently: at 0.1 s per series and window on one core, the stage
that grows fastest past one machine (the backtest's baselines, and the series a statistical model
serves). In this process they are spread over the machine's cores, a share of the series per
worker process: two cores take 0.6 of the time of one (bench/README.md). On Ray,
statsforecast's own Fugue backend spreads the series over the cluster's workers and fits the same
models (tests/training/test_statistical_engines.py); nothing here distributes.
Ray hands the forecasts back as 32-bit floats: equal to the local ones to about 1e-7.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from demandops.errors import DemandopsError


class StatisticalEngine(Protocol):
    def forecast(self, engine, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        """statsforecast's forecast frame (unique_id, ds, one column per model) of `history`."""


# A worker costs seconds to start and import statsforecast: the fits of fewer series than this
# (at 0.05 to 0.2 s a series and window) would not pay for a second one.
MIN_SERIES_PER_WORKER = 40


@dataclass(frozen=True)
class InProcess:
    processes: int = 1  # worker processes of this machine, each fitting a share of the series
    min_series_per_worker: int = MIN_SERIES_PER_WORKER

    def workers_for(self, series: int) -> int:
        """How many worker processes fit this many series (1: this process alone)."""
        return max(1, min(self.processes, series // max(1, self.min_series_per_worker)))

    def forecast(self, engine, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        ids = np.sort(history["unique_id"].unique())
        workers = self.workers_for(len(ids))
        if workers == 1:
            return engine.forecast(df=history, h=horizon)
        # statsforecast's own n_jobs forks this process: at 25,000 series a copy of 10 GB per worker
        # by RSS, and pages really copied as the workers' garbage collector touches the parent's
        # objects. Forkserver workers start clean and get only their share of the series.
        split = np.array_split(ids, workers)
        shares = [history[history["unique_id"].isin(share)] for share in split]
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(len(shares), mp_context=context) as pool:
            parts = list(pool.map(_forecast_share, [engine] * len(shares), shares, [horizon] * len(shares)))
        return pd.concat(parts, ignore_index=True)


def _forecast_share(engine, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """One worker's series, fitted in that worker alone."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsforecast warns per series it falls back on
        return engine.forecast(df=history, h=horizon)


@dataclass(frozen=True)
class OnRay:
    address: str | None = None  # a running cluster ("ray://host:10001", "auto"); None starts one here

    def forecast(self, engine, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        import ray  # imported here: only the cluster setting needs it

        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except ConnectionError as exc:
                raise DemandopsError(
                    f"cannot reach the Ray cluster at {self.address!r} (cluster.ray_address): {exc}; "
                    f"start it (ray start --head) or leave the address empty for a local Ray"
                ) from exc
        fitted = engine.forecast(df=ray.data.from_pandas(history), h=horizon).to_pandas()
        columns = [c for c in fitted.columns if c not in ("unique_id", "ds")]
        return pd.DataFrame(
            {
                "unique_id": fitted["unique_id"].astype(str).to_numpy(),
                "ds": pd.to_datetime(fitted["ds"]).astype("datetime64[ns]").to_numpy(),
                **{c: fitted[c].astype("float64").to_numpy() for c in columns},
            }
        ).sort_values(["unique_id", "ds"], ignore_index=True)


IN_PROCESS = InProcess()


def statistical_engine(name: str, address: str | None = None, processes: int = 0) -> StatisticalEngine:
    """The engine the `cluster` settings name; `processes` 0: one per core of this machine."""
    if name == "ray":
        return OnRay(address or None)
    return InProcess(processes or os.cpu_count() or 1)
