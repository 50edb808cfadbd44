"""The loop's decisions: retrain on sustained live degradation or significant drift; roll back a champion
worse than its predecessor on the same forecasts."""

from __future__ import annotations

from monitoring.decisions import LiveRule, retraining_reason, rollback_reason

RULE = LiveRule(margin=0.2, periods=3)


def test_retraining_needs_every_latest_period_above_the_margin() -> None:
    live = {"2024-01-01": 0.50, "2024-01-02": 0.65, "2024-01-03": 0.70, "2024-01-04": 0.66}
    reason = retraining_reason("3", 0.5, live, {}, RULE)
    assert reason is not None and "version 3" in reason and "2024-01-02..2024-01-04" in reason
    calm = {**live, "2024-01-03": 0.59}  # 0.59 <= 0.5 x 1.2: one period within the margin
    assert retraining_reason("3", 0.5, calm, {}, RULE) is None
    assert retraining_reason("3", 0.5, {"2024-01-03": 0.9, "2024-01-04": 0.9}, {}, RULE) is None, (
        "fewer scored periods than the rule asks for"
    )
    assert retraining_reason("3", None, live, {}, RULE) is None, "no backtest to compare with"


def test_significant_drift_of_the_chosen_features_retrains() -> None:
    reason = retraining_reason("3", 0.5, {}, {"units_sold": 0.41, "std_28": 0.6}, RULE)
    assert reason is not None and "units_sold PSI 0.410" in reason and "std_28" not in reason
    assert retraining_reason("3", 0.5, {}, {"units_sold": 0.41}, RULE, drift_features=()) is None, "turned off"
    assert retraining_reason("3", 0.5, {}, {"units_sold": 0.2, "std_28": 0.6}, RULE) is None, "moderate, or not chosen"


def test_rollback_compares_period_by_period_with_the_previous_champion() -> None:
    champion = {"2024-02-01": 0.6, "2024-02-02": 0.7, "2024-02-03": 0.8}
    previous = {"2024-02-01": 0.4, "2024-02-02": 0.5, "2024-02-03": 0.5}
    reason = rollback_reason("5", "4", champion, previous, RULE)
    assert reason is not None and "version 5" in reason and "0.800 vs 0.500" in reason
    assert rollback_reason("5", "4", champion, {**previous, "2024-02-02": 0.6}, RULE) is None
    assert rollback_reason("5", "4", champion, {"2024-02-03": 0.1}, RULE) is None, "a period without a comparison"
