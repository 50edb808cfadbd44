"""Every shape a real catalogue has goes through features, training, the baselines and the backtest.

Series of unequal start, a short one (two seasons), one that stopped, one mostly zero, and
values from 0.1 to a million, with only the required columns: the network, gradient boosting
and the statistical baselines all forecast every one of them, with finite numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from demandops.errors import DataContractError
from demandops.settings import MonthlyCadence
from training.dataset import entity_rows, rows_with_history, split_by_origin
from training.evaluate import evaluate_backtest
from training.features import FeatureSpec, compute_features
from training.gbm import GBMConfig, QuantileGBM
from training.static_features import with_static
from training.train import TrainConfig, train_forecaster
from training.windows import fitted_windows

HORIZON = 12
END = pd.Timestamp("2024-12-01")


def _series(sku: str, values: np.ndarray, last: pd.Timestamp = END) -> pd.DataFrame:
    dates = pd.date_range(end=last, periods=len(values), freq="MS")
    return pd.DataFrame({"date": dates, "store_id": "S1", "sku_id": sku, "units_sold": values})


def catalogue() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    season = 1 + 0.4 * np.sin(np.arange(96) * 2 * np.pi / 12)
    mostly_zero = np.where(rng.random(60) < 0.85, 0.0, rng.poisson(3, 60))
    return pd.concat(
        [
            _series("big", np.round(1e6 * season[:96] * rng.uniform(0.9, 1.1, 96))),
            _series("tiny", np.round(0.1 + 0.9 * rng.random(84), 2)),
            _series("mid", rng.poisson(50 * season[:72]).astype(float)),
            _series("short", rng.poisson(20 * season[:24]).astype(float)),
            _series("stopped", rng.poisson(30 * season[:48]).astype(float), last=END - pd.DateOffset(months=14)),
            _series("sparse", mostly_zero.astype(float)),
        ],
        ignore_index=True,
    )


@pytest.fixture(scope="module")
def prepared():
    sales = catalogue()
    cadence = MonthlyCadence(horizon=HORIZON)
    spec = FeatureSpec.for_cadence("M", cadence)
    rows = entity_rows(sales, HORIZON, spec).merge(
        compute_features(sales, spec), on=["store_id", "sku_id", "event_timestamp"]
    )
    masters = pd.DataFrame({"store_id": ["S1"]}), pd.DataFrame({"sku_id": sales["sku_id"].unique()})
    rows = rows_with_history(with_static(rows, *masters), spec)
    return sales, rows, spec, fitted_windows(rows, cadence)


def test_windows_follow_the_data_when_not_set(prepared) -> None:
    _, rows, _, windows = prepared
    assert windows.backtest_origins < 3 * HORIZON, "the median series cannot hold the default 3 x H"
    assert windows.backtest_origins <= windows.typical_origins // 2
    assert "from the data" in windows.reason
    chosen = fitted_windows(rows, MonthlyCadence(horizon=HORIZON, backtest_periods=5, validation_periods=2))
    assert (chosen.backtest_origins, chosen.validation_origins) == (5, 2)
    assert chosen.reason.startswith("both set by the user")
    # The backtest hides a third of the median series: the served model is refit on every row.
    assert windows.refit and "refit on every row" in windows.reason


def test_every_forecaster_forecasts_every_shape(prepared) -> None:
    sales, rows, spec, windows = prepared
    fit, holdout = split_by_origin(rows, HORIZON, windows.backtest_origins)
    config = TrainConfig(horizon=HORIZON, epochs=2, validation_origins=windows.validation_origins, device="cpu")
    every_series = rows[["store_id", "sku_id"]].drop_duplicates()
    bundle = train_forecaster(
        fit, config, feature_service="test", dataset_version="test", spec=spec, series=every_series
    ).bundle
    assert "short" not in set(fit["sku_id"]), "two seasons leave the short series no fitting row"
    assert set(bundle.meta.skus) == set(sales["sku_id"])
    # The short series never trained: it gets the average embedding of the series that did.
    index = bundle.meta.skus.index("short")
    trained = [i for i, sku in enumerate(bundle.meta.skus) if sku in set(fit["sku_id"])]
    weights = bundle.model.sku_embedding.weight.detach()
    assert torch.allclose(weights[index], weights[trained].mean(dim=0), atol=1e-6)

    latest = compute_features(sales, spec)
    latest = with_static(latest[latest["event_timestamp"] == latest["event_timestamp"].max()], *_masters(sales))
    forecast = bundle.predict(latest)
    assert np.isfinite(forecast).all() and len(forecast) == len(latest)
    assert {"short", "sparse", "tiny", "big"} <= set(latest["sku_id"])

    gbm = QuantileGBM(bundle.meta, GBMConfig(max_iter=20)).fit(fit).predict(holdout)
    assert np.isfinite(gbm).all()
    evaluation = evaluate_backtest(bundle, fit, holdout, period=12, gbm=GBMConfig(max_iter=20), sales=sales,
                                   statistical=("AutoETS", "DynamicOptimizedTheta"))  # fmt: skip
    metrics = evaluation.metrics
    assert metrics["rows_unseen_series"] == 0, "every series is scored, the short one included"
    for key in ("AutoETS_wape", "DynamicOptimizedTheta_wape", "wape_ratio_to_best_statistical", "wape"):
        assert np.isfinite(metrics[key]), key
    assert metrics["statistical_rows"] > 0
    # The lead-time quantiles around the served median are scored on the same rows as the network's.
    for forecaster in ("served", "network"):
        achieved = metrics[f"window_starts_{forecaster}_lead_time_service_L6_p95"]
        assert 0.0 <= achieved <= 1.0, (forecaster, achieved)


def _masters(sales: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame({"store_id": ["S1"]}), pd.DataFrame({"sku_id": sales["sku_id"].unique()})


def test_rows_without_history_are_not_training_rows_and_none_at_all_is_refused(prepared) -> None:
    _, rows, spec, _ = prepared
    gap = rows.copy()
    gap.loc[gap.index[:10], spec.scale_feature] = np.nan
    assert len(rows_with_history(gap, spec)) == len(rows) - 10
    with pytest.raises(DataContractError, match="none of the .* training rows has history features"):
        rows_with_history(gap.assign(**{spec.scale_feature: np.nan}), spec)
