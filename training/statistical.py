"""What a planner would use without us: statsforecast's AutoETS and Theta, fitted per series.

They are fitted at the first origin of each backtest window (every H origins, counted back from
the latest, as the backtest's windows are), on each series' whole history up to that origin, and
forecast the next H periods. Refitting them at every origin would cost H times as much for the
same comparison. A series too short for a model gets statsforecast's fallback (naive).
"""

from __future__ import annotations

import warnings
from typing import get_args

import numpy as np
import pandas as pd

from demandops.contract import SERIES_KEYS
from demandops.frequency import label_offset
from demandops.settings import StatisticalModel
from training.calendar import complete_calendar
from training.sales_table import SalesTable
from training.statistical_engines import IN_PROCESS, StatisticalEngine

STATISTICAL_MODELS = ("AutoETS", "DynamicOptimizedTheta")
SEASONAL_NAIVE = "SeasonalNaive"  # a candidate to serve as well (training/candidates.py), never a baseline to beat


def _models(names: tuple[str, ...], period: int) -> list:
    from statsforecast import models  # imported here: only the backtest needs it, and it is slow to import

    known = {*get_args(StatisticalModel), SEASONAL_NAIVE}  # the models the settings accept
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"unknown statistical model(s) {unknown}; expected some of {sorted(known)}")
    return [getattr(models, name)(season_length=period) for name in names]


def window_origins(origins: np.ndarray, horizon: int) -> np.ndarray:
    """The first origin of each window of H origins, counted back from the latest."""
    origins = np.sort(np.unique(origins))
    return origins[::-1][horizon - 1 :: horizon][::-1] if len(origins) >= horizon else origins[:1]


def _history(sales: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """Each series' periods with zeros filled in, as statsforecast reads them (unique_id, ds, y)."""
    history = complete_calendar(sales, frequency)[[*SERIES_KEYS, "date", "units_sold"]]
    return pd.DataFrame(
        {
            "unique_id": history["store_id"].astype(str) + "\x1f" + history["sku_id"].astype(str),
            "ds": pd.to_datetime(history["date"]),
            "y": history["units_sold"].astype("float64"),
            "store_id": history["store_id"],
            "sku_id": history["sku_id"],
        }
    )


def _of_series(sales: pd.DataFrame | SalesTable, series: pd.DataFrame) -> pd.DataFrame:
    """The sales of the series named in `series`, before any calendar is filled in: a sample of a
    large catalogue costs what the sample does."""
    if isinstance(sales, SalesTable):
        return sales.of_series(series)
    keys = list(SERIES_KEYS)
    return sales[pd.MultiIndex.from_frame(sales[keys]).isin(pd.MultiIndex.from_frame(series[keys].drop_duplicates()))]


def _fit_and_forecast(
    history: pd.DataFrame, *, frequency: str, horizon: int, period: int, names: tuple[str, ...],
    on: StatisticalEngine = IN_PROCESS,
):  # fmt: skip
    from statsforecast import StatsForecast
    from statsforecast.models import Naive

    engine = StatsForecast(models=_models(names, period), freq=label_offset(frequency), fallback_model=Naive())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsforecast warns per series it falls back on
        forecast = on.forecast(engine, history[["unique_id", "ds", "y"]], horizon)
    forecast[list(names)] = forecast[list(names)].clip(lower=0.0)
    return forecast


def statistical_forecasts(
    sales: pd.DataFrame,
    rows: pd.DataFrame,
    *,
    frequency: str,
    horizon: int,
    period: int,
    names: tuple[str, ...] = STATISTICAL_MODELS,
    on: StatisticalEngine = IN_PROCESS,
) -> dict[str, np.ndarray]:
    """Point forecasts (len(rows), horizon) of each model for `rows` (store_id, sku_id, event_timestamp).

    Every row's origin must be one of `window_origins`; the models see `sales` up to that origin only.
    They are fitted `on` this process or a cluster (training/statistical_engines.py).
    """
    history = _history(_of_series(sales, rows), frequency)
    wanted = rows.reset_index(drop=True)
    wanted = wanted.assign(
        unique_id=wanted["store_id"].astype(str) + "\x1f" + wanted["sku_id"].astype(str),
        origin=pd.to_datetime(wanted["event_timestamp"]).dt.tz_localize(None),
    )
    out = {name: np.full((len(rows), horizon), np.nan) for name in names}
    for origin, group in wanted.groupby("origin"):
        seen = history[(history["ds"] <= origin) & history["unique_id"].isin(group["unique_id"])]
        forecast = _fit_and_forecast(seen, frequency=frequency, horizon=horizon, period=period, names=names, on=on)
        forecast["step"] = forecast.groupby("unique_id").cumcount()
        for name in names:
            table = forecast.pivot(index="unique_id", columns="step", values=name)
            out[name][group.index.to_numpy()] = table.reindex(group["unique_id"]).to_numpy("float64")
    return out


def statistical_paths(
    sales: pd.DataFrame, series: pd.DataFrame, *, frequency: str, periods: int, period: int, names: tuple[str, ...],
    on: StatisticalEngine = IN_PROCESS,
) -> pd.DataFrame:  # fmt: skip
    """store_id, sku_id, date and one column per model: each series' next `periods` after its last period."""
    history = _history(_of_series(sales, series), frequency)
    ids = history.drop_duplicates("unique_id").set_index("unique_id")[["store_id", "sku_id"]]
    forecast = _fit_and_forecast(history, frequency=frequency, horizon=periods, period=period, names=names, on=on)
    forecast = forecast.join(ids, on="unique_id").rename(columns={"ds": "date"})
    return forecast[["store_id", "sku_id", "date", *names]].reset_index(drop=True)
