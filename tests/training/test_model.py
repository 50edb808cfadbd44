from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import DAILY
from training.bundle import META_FILE, BundleMeta, ForecasterBundle, build_model
from training.dataset import split_by_origin
from training.evaluate import evaluate_backtest
from training.model import DemandForecaster, pinball_loss
from training.train import TrainConfig, train_forecaster


def test_quantiles_never_cross_even_untrained() -> None:
    torch.manual_seed(1)
    model = DemandForecaster(n_stores=3, n_skus=4, n_categories=2, n_numeric=5, horizon=6, future_width=7)
    ids = torch.randint(0, 3, (64,)), torch.randint(0, 4, (64,)), torch.randint(0, 3, (64,))
    out = model(*ids, torch.randn(64, 5) * 10, torch.rand(64, 6, 7) * 10)
    assert out.shape == (64, 6, 3)
    assert torch.all(out[..., 0] <= out[..., 1]) and torch.all(out[..., 1] <= out[..., 2])


def test_a_fully_trusted_seasonal_skip_forecasts_the_seasonal_naive_median() -> None:
    torch.manual_seed(2)
    model = DemandForecaster(
        n_stores=3, n_skus=4, n_categories=2, n_numeric=5, horizon=6, future_width=7, seasonal_skip=True
    )
    ids = torch.randint(0, 3, (16,)), torch.randint(0, 4, (16,)), torch.randint(0, 3, (16,))
    naive = torch.rand(16, 6) * 3
    inputs = (*ids, torch.randn(16, 5), torch.rand(16, 6, 7), naive)
    untrusting = model(*inputs)
    with torch.no_grad():
        model.decoder[-1].weight[3].zero_()
        model.decoder[-1].bias[3] = 50.0  # sigmoid(50) == 1: the median is the seasonal-naive value
    trusting = model(*inputs)
    torch.testing.assert_close(trusting[..., 1], naive)
    assert not torch.allclose(untrusting[..., 1], naive)
    assert torch.all(trusting[..., 0] <= trusting[..., 1]) and torch.all(trusting[..., 1] <= trusting[..., 2])


def test_pinball_loss_is_zero_only_for_a_perfect_forecast() -> None:
    target = torch.tensor([[1.0, 2.0]])
    q = torch.tensor([0.1, 0.5, 0.9])
    perfect = target.unsqueeze(-1).repeat(1, 1, 3)
    assert pinball_loss(perfect, target, q).item() == 0.0
    assert pinball_loss(perfect + 1, target, q).item() > 0.0


@pytest.fixture(scope="module")
def trained(small_training_set: pd.DataFrame):
    fit, holdout = split_by_origin(small_training_set, horizon=7, holdout_origins=21)
    config = TrainConfig(horizon=7, epochs=25, validation_origins=14, seed=3, seasonal_period=7, seasonal_skip=True)
    result = train_forecaster(fit, config, feature_service="demand_forecast_v1", dataset_version="test", spec=DAILY)
    return result, fit, holdout


def test_training_learns_and_beats_seasonal_naive(trained, small_data) -> None:
    result, fit, holdout = trained
    assert result.history[result.best_epoch - 1]["val_pinball"] < result.history[0]["val_pinball"]
    evaluation = evaluate_backtest(
        result.bundle, fit, holdout, period=7, oracle=small_data.oracle, recalibration_window=14
    )
    metrics = evaluation.metrics
    # Lead-time service as served, the tables refitted at each origin: beside the bundle's, per L and level.
    assert set(evaluation.lead_time["recalibrated"]) == set(evaluation.lead_time["lead_time"]) == {"1", "3", "7"}
    assert 0.5 < metrics["lead_time_recalibrated_service_L7_p95"] <= 1.0
    assert metrics["wape"] < metrics["seasonal_naive_wape"]
    assert metrics["quantiles_ordered"] == 1.0 and metrics["has_nan"] == 0.0
    assert 0.4 < metrics["coverage_p10_p90"] < 0.98
    # No forecaster beats the oracle by much: it knows the true demand distribution.
    assert metrics["wape_ratio_to_oracle"] > 0.9


def test_training_is_deterministic_for_a_seed(small_training_set: pd.DataFrame) -> None:
    fit, _ = split_by_origin(small_training_set, horizon=7, holdout_origins=14)
    config = TrainConfig(horizon=7, epochs=2, validation_origins=14, seed=5)
    a = train_forecaster(fit, config, feature_service="s", dataset_version="v", spec=DAILY).history
    b = train_forecaster(fit, config, feature_service="s", dataset_version="v", spec=DAILY).history
    assert a == b


def test_bundle_round_trip_predicts_identically(trained, tmp_path: Path) -> None:
    result, _fit, holdout = trained
    loaded = ForecasterBundle.load(result.bundle.save(tmp_path / "bundle"))
    np.testing.assert_array_equal(loaded.predict(holdout), result.bundle.predict(holdout))
    assert loaded.unknown_ids(["S000", "S999"], ["P0000"]) == ["store S999"]


def test_the_model_reads_the_stock_left_on_the_shelf(trained) -> None:
    result, _fit, holdout = trained
    assert result.bundle.meta.spec.stock
    emptied = holdout.assign(stock_left=0.0, sold_out_share_28=1.0)
    assert not np.allclose(result.bundle.predict(emptied), result.bundle.predict(holdout))


def test_a_bundle_from_before_the_stock_features_and_the_seasonal_skip_predicts_without_them(
    trained, tmp_path: Path
) -> None:
    result, _fit, holdout = trained
    older = {k: v for k, v in asdict(result.bundle.meta).items() if k not in ("stock", "seasonal_period")}
    older["n_numeric"] -= 3  # the stock left, whether it is known, the sold-out share
    meta = BundleMeta(**older)
    folder = ForecasterBundle(build_model(meta), meta).save(tmp_path / "older")
    (folder / META_FILE).write_text(json.dumps(older))  # as written before the field existed
    loaded = ForecasterBundle.load(folder)
    assert not loaded.meta.spec.stock and "stock_left" not in loaded.meta.spec.feature_names
    assert not loaded.model.seasonal_skip
    assert loaded.predict(holdout).shape == (len(holdout), 7, 3)


def test_a_planned_promotion_raises_the_forecast(trained) -> None:
    """Known-future covariates: the model learned that a planned discount sells more."""
    result, _fit, holdout = trained
    rows = holdout.copy()
    horizon = result.bundle.meta.horizon
    for h in range(1, horizon + 1):
        rows[f"planned_promo_{h}"] = 0.0
        rows[f"planned_price_{h}"] = rows["price"]
    regular = result.bundle.predict(rows)[..., 1].sum()
    for h in range(1, horizon + 1):
        rows[f"planned_promo_{h}"] = 1.0
        rows[f"planned_price_{h}"] = rows["price"] * 0.75
    promoted = result.bundle.predict(rows)[..., 1].sum()
    assert promoted > 1.2 * regular
