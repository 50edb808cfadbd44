"""The served forecaster is chosen per group by the backtest, and the bundle serves exactly that choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.candidates import NETWORK, choose_per_group, combine, served_forecast, statistical_plan


def _quantiles(median: np.ndarray, width: float = 2.0) -> np.ndarray:
    return np.stack([median - width, median, median + width], axis=-1)


def test_combine_blends_the_median_and_keeps_the_networks_band_widths() -> None:
    network = _quantiles(np.array([[10.0, 10.0]]))
    statistical = np.array([[20.0, np.nan]])
    blended = combine(network, statistical, 0.5)
    assert blended[0, 0].tolist() == [13.0, 15.0, 17.0]
    assert blended[0, 1].tolist() == [8.0, 10.0, 12.0], "no statistical value: the network's median stands"
    assert combine(network, np.array([[0.0, 0.0]]), 0.0).min() == 0.0, "never negative"


def test_each_group_gets_its_best_candidate_and_the_network_keeps_ties() -> None:
    actual = np.array([[10.0, 10.0], [10.0, 10.0], [5.0, 5.0], [5.0, 5.0]])
    groups = np.array(["fast", "fast", "intermittent", "intermittent"])
    # The network is off by 4 on the fast series and exact on the intermittent ones.
    network = _quantiles(np.array([[14.0, 14.0], [14.0, 14.0], [5.0, 5.0], [5.0, 5.0]]))
    statistical = {"AutoETS": np.array([[10.0, 10.0], [10.0, 10.0], [9.0, 9.0], [9.0, 9.0]])}
    choice = choose_per_group(groups, actual, network, statistical)
    assert choice == {"fast": "AutoETS", "intermittent": NETWORK}
    served = served_forecast(groups, choice, network, statistical)
    assert np.allclose(served[:2, :, 1], 10.0) and np.allclose(served[2:, :, 1], 5.0)
    same = {"AutoETS": network[..., 1].copy()}
    assert set(choose_per_group(groups, actual, network, same).values()) == {NETWORK}


def test_a_group_leaves_the_overall_choice_only_for_a_clearly_better_candidate() -> None:
    from training.candidates import GROUP_SWITCH_MARGIN

    groups = np.array(["fast", "fast", "new"])
    actual = np.full((3, 1), 100.0)
    network = _quantiles(np.array([[130.0], [130.0], [110.0]]))
    statistical = {"AutoETS": np.array([[100.0], [100.0], [110.1]])}  # best overall, a hair worse on "new"
    assert choose_per_group(groups, actual, network, statistical) == {"fast": "AutoETS", "new": "AutoETS"}
    # On "new" the network is 1% better than AutoETS: noise, below the margin. 20% better: its own choice.
    assert GROUP_SWITCH_MARGIN > 0.01
    statistical["AutoETS"][2] = 130.0
    assert choose_per_group(groups, actual, network, statistical) == {"fast": "AutoETS", "new": NETWORK}


def test_the_plan_lists_only_series_served_otherwise_with_their_weight() -> None:
    series = pd.DataFrame({"store_id": ["S", "S"], "sku_id": ["A", "B"], "group": ["fast", "intermittent"]})
    dates = pd.to_datetime(["2025-01-01", "2025-02-01"])
    paths = pd.DataFrame(
        {"store_id": "S", "sku_id": ["A", "A", "B", "B"], "date": list(dates) * 2, "AutoETS": [1.0, 2.0, 3.0, 4.0]}
    )
    plan = statistical_plan(series, {"fast": "network+AutoETS", "intermittent": NETWORK}, paths)
    assert plan["sku_id"].tolist() == ["A", "A"]
    assert plan["network_weight"].tolist() == [0.5, 0.5] and plan["statistical_p50"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_a_bundle_with_a_plan_serves_the_blend_for_planned_dates_only(weight: float, tmp_path) -> None:
    from demandops.settings import MonthlyCadence
    from tests.training.test_real_shapes import HORIZON, catalogue
    from training.bundle import ForecasterBundle
    from training.dataset import entity_rows
    from training.features import FeatureSpec, compute_features
    from training.train import TrainConfig, train_forecaster

    sales = catalogue()
    spec = FeatureSpec.for_cadence("M", MonthlyCadence(horizon=HORIZON))
    features = compute_features(sales, spec).assign(store_size="unknown", store_region="unknown")
    features = features.assign(sku_category="unknown", sku_launch_date="")
    rows = entity_rows(sales, HORIZON, spec).merge(features, on=["store_id", "sku_id", "event_timestamp"])
    config = TrainConfig(horizon=HORIZON, epochs=1, validation_origins=3, device="cpu")
    bundle = train_forecaster(rows, config, feature_service="t", dataset_version="t", spec=spec).bundle
    latest = features[features["event_timestamp"] == features["event_timestamp"].max()].reset_index(drop=True)
    network = bundle.predict(latest)

    first = latest["event_timestamp"].max().tz_localize(None) + pd.DateOffset(months=1)
    plan = pd.DataFrame(
        {"store_id": "S1", "sku_id": "mid", "date": [first], "network_weight": weight, "statistical_p50": 1000.0}
    )
    bundle.plan = plan
    planned = ForecasterBundle.load(bundle.save(tmp_path / "bundle")).predict(latest)
    mid = latest.index[latest["sku_id"] == "mid"][0]
    expected = weight * network[mid, 0, 1] + (1 - weight) * 1000.0
    assert planned[mid, 0, 1] == pytest.approx(expected, rel=1e-5)
    assert planned[mid, 0, 2] - planned[mid, 0, 1] == pytest.approx(network[mid, 0, 2] - network[mid, 0, 1], rel=1e-4)
    others = np.ones(len(latest), dtype=bool)
    others[mid] = False
    assert np.allclose(planned[others], network[others]) and np.allclose(planned[mid, 1:], network[mid, 1:])


def test_the_guards_see_each_window_served_by_the_choice_made_on_the_other_windows() -> None:
    from training.evaluate import cross_validated_choice

    groups, windows = np.array(["fast"] * 4), np.array([1, 1, 2, 2])
    actual = np.full((4, 1), 10.0)
    network = _quantiles(np.full((4, 1), 14.0))
    # The statistical model is exact in window 1 and far off in window 2: in-sample choosing would
    # look perfect; held out, each window gets the other window's choice.
    statistical = {"AutoETS": np.array([[10.0], [10.0], [20.0], [20.0]])}
    served = cross_validated_choice(groups, windows, actual, network, statistical)
    assert served[:, 0, 1].tolist() == [14.0, 14.0, 20.0, 20.0]


def test_with_one_window_the_choice_is_judged_on_the_half_of_the_series_it_was_not_made_on() -> None:
    from training.evaluate import choice_folds

    series = [f"P{i}" for i in range(20)]
    rows = pd.DataFrame({"store_id": "S1", "sku_id": series * 2, "window": 1})
    folds = choice_folds(rows)
    assert set(folds) == {0, 1}, "two halves, so no row is judged by a choice made on it"
    by_series = pd.Series(folds).groupby(rows["sku_id"]).nunique()
    assert (by_series == 1).all(), "a series' rows stay in one fold"
    # Several windows: the windows are the folds.
    assert choice_folds(rows.assign(window=[1] * 20 + [2] * 20)).tolist() == [1] * 20 + [2] * 20
