"""Backtest of a trained forecaster against seasonal naive, gradient boosting and, on simulated
data, the oracle, all scored on the same rolling-origin rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from demandops.frequency import period_ordinals
from training.backtest import actuals, backtest_rows, backtest_table, headline, series_profile
from training.baselines import seasonal_naive
from training.bundle import ForecasterBundle
from training.candidates import choose_per_group, served_forecast
from training.dataset import known_series
from training.gbm import GBMConfig, QuantileGBM
from training.lead_time import backtest_service
from training.metrics import wape
from training.oracle import oracle_forecast
from training.recalibration import recalibrated_service
from training.sales_table import SalesTable
from training.statistical import SEASONAL_NAIVE, statistical_forecasts, window_origins
from training.statistical_engines import IN_PROCESS, StatisticalEngine
from training.training_folder import RowsUpTo

DEFAULT_GBM = GBMConfig()


@dataclass
class Evaluation:
    table: pd.DataFrame  # one line per (forecaster, segment)
    metrics: dict[str, float]  # the model's headline metrics and its ratios to the others
    rows: pd.DataFrame  # backtest row attributes (series, origin, window, category, mover)
    actual: np.ndarray  # (rows, horizon)
    forecasts: dict[str, np.ndarray]
    choice: dict[str, str] = field(default_factory=dict)  # per mover class, the candidate to serve
    # Achieved service of lead-time quantiles at each kept level (training/lead_time.backtest_service).
    lead_time: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    lead_time_levels: list[float] = field(default_factory=list)


# Scoring on the holdout, the statistical models, then the caller's own (plots, the serving plan).
BACKTEST_PHASES = 3


def evaluate_backtest(
    bundle: ForecasterBundle,
    fit: pd.DataFrame | RowsUpTo,
    holdout: pd.DataFrame,
    *,
    period: int,
    gbm: GBMConfig | None = DEFAULT_GBM,
    oracle: pd.DataFrame | None = None,
    champion: ForecasterBundle | None = None,
    sales: pd.DataFrame | SalesTable | None = None,
    statistical: tuple[str, ...] = (),
    statistical_series: int | None = None,
    window_bundles: dict[int, ForecasterBundle] | None = None,
    statistical_on: StatisticalEngine = IN_PROCESS,
    progress: Callable[[int, int, str], object] = lambda done, total, doing: None,
    recalibration_window: int | None = None,
) -> Evaluation:
    """Score the model and its baselines on the holdout origins; baselines learn only from `fit` (a
    frame, or a folder's rows read part by part). `progress` hears each phase as it starts: (phases
    done, BACKTEST_PHASES, what comes now).

    `champion`, the version in Production, is scored on the same rows when it can read them.
    With `sales` (the raw history), the `statistical` models are fitted at the first origin of
    each backtest window (see training/statistical.py); the candidate to serve per mover class is
    chosen on them (training/candidates.py) and scored window by window with the choice made on
    the other windows, beside them; on at most `statistical_series` series (see statistical_sample),
    fitted `statistical_on` this process or a cluster (training/statistical_engines.py). With a
    `recalibration_window`, the lead-time service is also measured with the tables refitted at each
    origin on the backtest rows known by then (training/recalibration.py), as they are served.
    `window_bundles` (window number -> model) forecast the rows of the later windows when the
    model was refit for each (training/windows.py); `bundle` the rest.
    """
    progress(0, BACKTEST_PHASES, "the model and its baselines on the holdout origins")
    evaluation = _score_holdout(bundle, fit, holdout, period=period, gbm=gbm, oracle=oracle, champion=champion,
                                window_bundles=window_bundles or {})  # fmt: skip
    if recalibration_window and bundle.meta.lead_time.get("tables") and len(evaluation.rows):
        origins = period_ordinals(evaluation.rows["event_timestamp"], bundle.meta.frequency)
        forecast, kept = evaluation.forecasts["model"], bundle.meta.lead_time
        metrics, curves = recalibrated_service(forecast, evaluation.actual, origins, kept, recalibration_window)
        evaluation.metrics |= metrics
        evaluation.lead_time["recalibrated"] = curves
    # The holdout's every column is scored and can go (the caller holds no reference to it): 0.8 GB at
    # 25,000 series that the statistical fits, the plots and the serving plan below need not carry.
    del holdout
    if sales is not None and statistical:
        progress(1, BACKTEST_PHASES, f"statistical models ({', '.join(statistical)})")
        with_candidates(
            evaluation, sales, statistical, frequency=bundle.meta.frequency, period=period, most=statistical_series,
            on=statistical_on, lead_time=bundle.meta.lead_time,
        )  # fmt: skip
    return evaluation


def _score_holdout(
    bundle: ForecasterBundle,
    fit: pd.DataFrame | RowsUpTo,
    holdout: pd.DataFrame,
    *,
    period: int,
    gbm: GBMConfig | None,
    oracle: pd.DataFrame | None,
    champion: ForecasterBundle | None,
    window_bundles: dict[int, ForecasterBundle],
) -> Evaluation:
    """The model, seasonal naive, gradient boosting, the oracle and the champion on the holdout rows."""
    horizon = bundle.meta.horizon
    # Series launched after the fitting window have no embedding yet: they are counted, not scored.
    known = known_series(holdout, bundle.meta.stores, bundle.meta.skus)
    unseen_rows = int((~known).sum())
    if unseen_rows:  # a copy of every column: 0.7 GB at 25,000 series, so only when some rows go
        holdout = holdout[known].reset_index(drop=True)
    rows = backtest_rows(holdout, series_profile(fit[["store_id", "sku_id", "y_1", f"lag_{period}"]], period), horizon)
    forecasts = {
        "model": _network_forecast(bundle, window_bundles, holdout, rows),
        "seasonal_naive": seasonal_naive(holdout, horizon, period),
    }
    baseline = QuantileGBM(bundle.meta, gbm).fit(fit) if gbm is not None else None
    if baseline is not None:
        forecasts["gradient_boosting"] = baseline.predict(holdout)
    if oracle is not None:
        forecasts["oracle"] = oracle_forecast(holdout, oracle, horizon)

    actual = actuals(holdout, horizon)
    table = backtest_table(rows, actual, forecasts)
    model = forecasts["model"]
    metrics = {**_model_metrics(table, model), "rows_unseen_series": float(unseen_rows)}
    if baseline is not None:  # what the baseline learnt from: a sample of (row, step) pairs on a large set
        metrics["gradient_boosting_examples"] = float(baseline.examples)
        metrics["gradient_boosting_subsampled"] = float(baseline.subsampled)
    if champion is not None and not champion_mismatch(champion, bundle, holdout):
        metrics.update(compare_with_champion(champion, holdout, rows, actual, model))
    evaluation = Evaluation(table=table, metrics=metrics, rows=rows, actual=actual, forecasts=forecasts)
    if bundle.meta.lead_time and len(rows):
        series = rows.groupby(["store_id", "sku_id"], sort=False).ngroup().to_numpy()
        service, evaluation.lead_time = backtest_service(model, actual, series, bundle.meta.lead_time)
        evaluation.metrics.update(service)
        evaluation.lead_time_levels = list(bundle.meta.lead_time["levels"])
    return evaluation


def _model_metrics(table: pd.DataFrame, model: np.ndarray) -> dict[str, float]:
    return {
        **headline(table, "model"),
        "quantiles_ordered": float(np.all((model[..., 0] <= model[..., 1]) & (model[..., 1] <= model[..., 2]))),
        "has_nan": float(np.isnan(model).any()),
    }


def _network_forecast(
    bundle: ForecasterBundle, window_bundles: dict[int, ForecasterBundle], holdout: pd.DataFrame, rows: pd.DataFrame
) -> np.ndarray:
    """Each backtest row forecast by the model of its window, or by `bundle` where it has none;
    each row predicted once."""
    if not window_bundles or holdout.empty:
        return bundle.predict(holdout)  # the network's float32: a float64 copy would add nothing but memory
    owner = rows["window"].where(rows["window"].isin(list(window_bundles)), 0).to_numpy()  # 0: `bundle`
    models = {0: bundle, **window_bundles}
    parts = {key: owner == key for key in np.unique(owner)}
    predicted = {key: models[key].predict(holdout[mask].reset_index(drop=True)) for key, mask in parts.items()}
    first = next(iter(predicted.values()))
    forecast = np.empty((len(holdout), *first.shape[1:]), dtype=first.dtype)
    for key, mask in parts.items():
        forecast[mask] = predicted[key]
    return forecast


def with_candidates(
    evaluation: Evaluation,
    sales: pd.DataFrame,
    statistical: tuple[str, ...],
    *,
    frequency: str,
    period: int,
    most: int | None = None,
    on: StatisticalEngine = IN_PROCESS,
    lead_time: dict | None = None,
) -> None:
    """Add the statistical models fitted at the window starts, the choice of what to serve and its
    cross-validated score to `evaluation` (its table, metrics and choice); with the bundle's
    `lead_time` calibration, the service its quantiles achieve around the served median."""
    rows, actual, model = evaluation.rows, evaluation.actual, evaluation.forecasts["model"]
    horizon = actual.shape[1]
    stamps = pd.to_datetime(rows["event_timestamp"], utc=True).dt.tz_localize(None).to_numpy()  # not Timestamp objects
    starts = np.isin(stamps, window_origins(stamps, horizon))
    starts &= statistical_sample(rows, most)
    fitted_series = len(rows.loc[starts, ["store_id", "sku_id"]].drop_duplicates())
    evaluation.metrics["statistical_series"] = float(fitted_series)
    evaluation.metrics["statistical_series_sampled"] = float(
        fitted_series < len(rows[["store_id", "sku_id"]].drop_duplicates())
    )
    names = (*statistical, SEASONAL_NAIVE)
    fitted = statistical_forecasts(
        sales, rows[starts], frequency=frequency, horizon=horizon, period=period, names=names, on=on
    )
    groups = rows.loc[starts, "mover"].to_numpy()
    folds = choice_folds(rows[starts])
    evaluation.choice = choose_per_group(groups, actual[starts], model[starts], fitted)
    served = cross_validated_choice(groups, folds, actual[starts], model[starts], fitted)
    compared = {name: forecast[starts] for name, forecast in evaluation.forecasts.items()} | fitted
    window_table = backtest_table(rows[starts].reset_index(drop=True), actual[starts], compared | {"served": served})
    evaluation.metrics.update(versus_statistical(window_table, statistical))
    if lead_time:
        evaluation.metrics.update(
            served_lead_time_service(rows[starts], actual[starts], model[starts], served, lead_time)
        )
    evaluation.metrics["choice_in_sample"] = float(len(set(folds)) == 1)
    starts_table = window_table[window_table["segment_kind"] == "all"].assign(segment="window starts")
    evaluation.table = pd.concat([evaluation.table, starts_table])


def served_lead_time_service(
    rows: pd.DataFrame, actual: np.ndarray, network: np.ndarray, served: np.ndarray, kept: dict
) -> dict[str, float]:
    """Achieved lead-time service on the window-start rows around the served median and around the
    network's, side by side. Where a blend or a statistical model is served, /replenishment applies
    the network's calibration (fitted on the network's own errors) around another median: this is
    where that is measured."""
    series = rows.groupby(["store_id", "sku_id"], sort=False).ngroup().to_numpy()
    out = {}
    for name, forecast in (("served", served), ("network", network)):
        metrics, _ = backtest_service(forecast, actual, series, kept)
        out |= {f"window_starts_{name}_{k}": v for k, v in metrics.items() if k.startswith("lead_time_service")}
    return out


def statistical_sample(rows: pd.DataFrame, most: int | None) -> np.ndarray:
    """Whether each row's series is among the (at most) `most` series the statistical models are
    fitted on: each mover class keeps its share of the catalogue, its series picked by a hash of
    their key, so the same catalogue always gives the same sample."""
    keys = ["store_id", "sku_id"]
    series = rows.drop_duplicates(keys)[[*keys, "mover"]]
    if most is None or len(series) <= most:
        return np.ones(len(rows), dtype=bool)
    series["rank"] = pd.util.hash_pandas_object(series[keys].astype(str), index=False).to_numpy()
    share = most / len(series)
    picked = [group.nsmallest(max(1, round(share * len(group))), "rank") for _, group in series.groupby("mover")]
    return pd.MultiIndex.from_frame(rows[keys]).isin(pd.MultiIndex.from_frame(pd.concat(picked)[keys]))


def choice_folds(rows: pd.DataFrame) -> np.ndarray:
    """The folds the choice is cross-validated on: the backtest windows; with one window (short
    series), two halves of the series, so the choice is still judged on rows it was not made on."""
    if rows["window"].nunique() > 1:
        return rows["window"].to_numpy()
    series = rows["store_id"].astype(str) + "/" + rows["sku_id"].astype(str)
    return (pd.util.hash_pandas_object(series, index=False).to_numpy() % 2).astype(int)


def cross_validated_choice(
    groups: np.ndarray, folds: np.ndarray, actual: np.ndarray, network: np.ndarray, fitted: dict[str, np.ndarray]
) -> np.ndarray:
    """What choosing per group serves, each fold scored with the choice made on the other folds
    (with one fold, on itself), so the guards judge the choice on rows it did not see."""
    served = np.empty_like(network)
    for fold in np.unique(folds):
        held = folds == fold
        chooser = ~held if (~held).any() else held
        picked = choose_per_group(
            groups[chooser], actual[chooser], network[chooser], {k: v[chooser] for k, v in fitted.items()}
        )
        served[held] = served_forecast(groups[held], picked, network[held], {k: v[held] for k, v in fitted.items()})
    return served


def versus_statistical(table: pd.DataFrame, names: tuple[str, ...]) -> dict[str, float]:
    """The served forecaster's (see training/candidates.py) WAPE, MASE and coverage against the best
    statistical model and seasonal naive, on the window-start rows (cross-validated); and the network's."""
    overall = table[table["segment_kind"] == "all"].set_index("forecaster")
    best = min(names, key=lambda name: overall.loc[name, "wape"])
    metrics = {f"{name}_wape": float(overall.loc[name, "wape"]) for name in names}
    metrics |= {f"{name}_mase": float(overall.loc[name, "mase"]) for name in names}
    served = overall.loc["served"]
    return metrics | {
        "statistical_rows": float(served["rows"]),
        "window_starts_network_wape": float(overall.loc["model", "wape"]),
        "window_starts_wape": float(served["wape"]),
        "window_starts_mase": float(served["mase"]),
        "window_starts_coverage_p10_p90": float(served["coverage_p10_p90"]),
        "window_starts_seasonal_naive_wape": float(overall.loc["seasonal_naive", "wape"]),
        "best_statistical_wape": float(overall.loc[best, "wape"]),
        "wape_ratio_to_best_statistical": float(served["wape"] / overall.loc[best, "wape"]),
        "mase_ratio_to_best_statistical": float(served["mase"] / overall.loc[best, "mase"]),
    }


def compare_with_champion(
    champion: ForecasterBundle, holdout: pd.DataFrame, rows: pd.DataFrame, actual: np.ndarray, model: np.ndarray
) -> dict[str, float]:
    """Both versions' WAPE on the latest window, on the series the champion knows (new launches aside)."""
    latest = (rows["window"] == rows["window"].max()).to_numpy()
    compared = latest & known_series(holdout, champion.meta.stores, champion.meta.skus).to_numpy()
    if actual[compared].sum() == 0:
        return {}  # nothing sold by series both versions know: no comparison, and the guard says so
    incumbent = champion.predict(holdout[compared])[..., 1]
    return {
        "champion_latest_window_wape": wape(actual[compared], incumbent),
        "latest_window_wape_vs_champion": wape(actual[compared], model[compared][..., 1]),
        "champion_rows_compared": float(compared.sum()),
    }


def champion_mismatch(champion: ForecasterBundle, challenger: ForecasterBundle, rows: pd.DataFrame) -> str:
    """Why the champion cannot be scored on the challenger's backtest rows ("" when it can)."""
    if (champion.meta.frequency, champion.meta.horizon) != (challenger.meta.frequency, challenger.meta.horizon):
        return (
            f"the champion forecasts {champion.meta.horizon} x {champion.meta.frequency}, "
            f"the challenger {challenger.meta.horizon} x {challenger.meta.frequency}"
        )
    missing = sorted(set(champion.meta.spec.feature_names) - set(rows.columns))
    if missing:
        return f"the champion reads features the training set no longer has: {missing[:5]}"
    return ""


def residual_rows(evaluation: Evaluation, rows: slice = slice(None)) -> pd.DataFrame:
    """One line per (backtest row, step) of the `rows` slice: actual, the model's quantiles and the
    p50 residual."""
    attributes = evaluation.rows.iloc[rows]
    forecast, actual = evaluation.forecasts["model"][rows], evaluation.actual[rows]
    horizon = forecast.shape[1]
    frame = attributes.loc[
        attributes.index.repeat(horizon), ["store_id", "sku_id", "event_timestamp", "window", "mover"]
    ]
    frame = frame.reset_index(drop=True).assign(step=list(range(1, horizon + 1)) * len(attributes))
    frame["actual"] = actual.ravel()
    for i, name in enumerate(("p10", "p50", "p90")):
        frame[name] = forecast[..., i].ravel()
    frame["residual"] = frame["actual"] - frame["p50"]
    return frame


def write_residuals(evaluation: Evaluation, path, chunk_rows: int = 50_000) -> None:
    """residual_rows as one Parquet file, written `chunk_rows` backtest rows at a time (the whole is
    rows x H lines: 15M at 25,000 series)."""
    writer = None
    try:
        for start in range(0, max(len(evaluation.rows), 1), chunk_rows):
            table = pa.Table.from_pandas(
                residual_rows(evaluation, slice(start, start + chunk_rows)), preserve_index=False
            )
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
