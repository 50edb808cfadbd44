"""The one figure per stage that `demandops run` prints as the stage ends, read from the metadata the
stage's asset recorded (the same numbers the Dagster UI shows on the asset)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _gate(m: Mapping[str, Any]) -> str:
    return f"{m['days']} period(s) gated: {m['accepted_days']} accepted, {len(m['quarantined_days'])} quarantined"


def _features(m: Mapping[str, Any]) -> str:
    return f"{m['rows']:,} rows over {m['periods_written']} periods ({m['first_period']} to {m['last_period']})"


def _online(m: Mapping[str, Any]) -> str:
    store = f"the {m['online_store']} online store"
    return f"{m['rows_materialized']:,} rows into {store}, fresh to {m['online_freshness']}"


def _training_set(m: Mapping[str, Any]) -> str:
    return f"{m['rows']:,} rows: {m['series']} series x {m['origins']} origins"


def _trained(m: Mapping[str, Any]) -> str:
    return (
        f"v{m['model_version']}, {m['epochs_run']} epochs on {m['device']}, "
        f"best {m['best_epoch']} at validation pinball {m['val_pinball']:.4f}"
    )


def _evaluation(m: Mapping[str, Any]) -> str:
    baselines = [
        f"{name} {m[key]:.3f}"
        for name, key in (("seasonal naive", "seasonal_naive_wape"), ("gradient boosting", "gradient_boosting_wape"))
        if key in m
    ]
    against = f" (vs {', '.join(baselines)})" if baselines else ""
    refusal = f": {m['refusal']}" if m.get("refusal") else ""
    coverage = f"p10-p90 coverage {m['coverage_p10_p90']:.2f}"
    return f"backtest WAPE {m['wape']:.3f}{against}, {coverage}; {m['state']}{refusal}"


def _bento(m: Mapping[str, Any]) -> str:
    return f"{m['bento_tag']} ({m['state']})"


def _accuracy(m: Mapping[str, Any]) -> str:
    return f"{m['scored_forecasts']:,} served forecasts scored"


def _drift(m: Mapping[str, Any]) -> str:
    return f"drift {m['band']} (champion {m['champion']})"


HEADLINES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "raw_sales": _gate,
    "sales_features": _features,
    "online_features": _online,
    "training_set": _training_set,
    "trained_model": _trained,
    "model_evaluation": _evaluation,
    "bento": _bento,
    "forecast_accuracy": _accuracy,
    "feature_drift": _drift,
}


def headline(asset: str, metadata: Mapping[str, Any]) -> str:
    """The stage's figure from its materialization's metadata (Dagster MetadataValues or plain values);
    empty for an asset without one."""
    summarize = HEADLINES.get(asset)
    return summarize({key: getattr(value, "value", value) for key, value in metadata.items()}) if summarize else ""


def check_headline(evaluation: Any) -> str:
    """'check_training_set_nulls passed', from an AssetCheckEvaluation."""
    return f"{evaluation.check_name} {'passed' if evaluation.passed else 'FAILED'}"
