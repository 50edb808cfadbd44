"""Where the statistical models are fitted: in this process, or across a Ray cluster.

They are fitted per series, independently: at 0.1 s per series and window on one core, the stage
that grows fastest past one machine (the backtest's baselines, and the series a statistical model
serves). In this process they are spread over the machine's cores by statsforecast's own worker
pool (`n_jobs`): two cores halve the time of 200 daily series (bench/README.md). On Ray,
statsforecast's own Fugue backend spreads the series over the cluster's workers and fits the same
models (tests/training/test_statistical_engines.py); nothing here distributes.
Ray hands the forecasts back as 32-bit floats: equal to the local ones to about 1e-7.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from demandops.errors import DemandopsError


class StatisticalEngine(Protocol):
    processes: int  # statsforecast's n_jobs: the worker processes of this machine it fits on

    def forecast(self, engine, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        """statsforecast's forecast frame (unique_id, ds, one column per model) of `history`."""


@dataclass(frozen=True)
class InProcess:
    processes: int = 1

    def forecast(self, engine, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        return engine.forecast(df=history, h=horizon)


@dataclass(frozen=True)
class OnRay:
    address: str | None = None  # a running cluster ("ray://host:10001", "auto"); None starts one here
    processes: int = 1  # Ray's workers fit the series; this process only hands them over

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
