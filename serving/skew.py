"""Train/serve skew check: what the service answers equals what the offline path computes.

For a sample of series, the served forecast (online features from the online store, request
handling, the Bento's copy of the model) is compared with the offline forecast of the same
origin: the features Feast's point-in-time join returns from the offline store, passed through
the bundle as the backtest uses it. Any difference in the features, their materialization, the
request path or the packaged model shows up here.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import numpy as np
import pandas as pd
from feast import FeatureStore

from feature_repo.retrieval import historical_features
from serving.routes import FORECAST
from training.bundle import ForecasterBundle


@dataclass(frozen=True)
class SkewResult:
    passed: bool
    max_difference: float  # max |served - offline| / max(1, |offline|): units below 1, relative above
    items: int
    detail: str


def served_forecasts(base_url: str, pairs: list[tuple[str, str]], horizon: int) -> list[dict]:
    items = [{"store_id": store, "sku_id": sku, "horizon": horizon} for store, sku in pairs]
    reply = httpx.post(f"{base_url}{FORECAST}", json={"items": items}, timeout=120)
    reply.raise_for_status()
    return reply.json()


def offline_forecasts(store: FeatureStore, bundle: ForecasterBundle, served: list[dict]) -> np.ndarray:
    """(items, horizon, 3) from the offline store's features at each served item's origin."""
    entities = pd.DataFrame(
        {
            "store_id": [r["store_id"] for r in served],
            "sku_id": [r["sku_id"] for r in served],
            "event_timestamp": pd.to_datetime([r["origin_date"] for r in served]).tz_localize("UTC"),
        }
    )
    features = historical_features(store, entities, bundle.meta.feature_service)
    features = entities.merge(features, on=["store_id", "sku_id", "event_timestamp"], how="left")
    return bundle.predict(features)


def skew_check(
    base_url: str, store: FeatureStore, bundle: ForecasterBundle, pairs: list[tuple[str, str]], *, tolerance: float
) -> SkewResult:
    """Served against offline forecasts of `pairs`; passes when every quantile agrees within `tolerance`.

    The difference is in units below one unit and relative above: float32 arithmetic carries about
    7 significant digits, so a monthly forecast of 300 units may differ by 2e-5 units with no skew.
    """
    horizon = bundle.meta.horizon
    served = served_forecasts(base_url, pairs, horizon)
    degraded = [f"{r['store_id']}/{r['sku_id']}" for r in served if r["degraded"]]
    if degraded:  # answered from last known features: the online path was not exercised
        return SkewResult(False, float("nan"), len(served), f"served degraded, not from the online store: {degraded}")
    online = np.array([[[d["p10"], d["p50"], d["p90"]] for d in r["forecast"]] for r in served])
    offline = offline_forecasts(store, bundle, served)
    scaled = np.abs(online - offline) / np.maximum(1.0, np.abs(offline))
    difference = float(scaled.max())
    worst = int(scaled.reshape(len(served), -1).max(axis=1).argmax())
    detail = (
        f"{len(served)} series x {horizon} periods x 3 quantiles: max |served - offline| / max(1, |offline|) = "
        f"{difference:.2e} (tolerance {tolerance:g}; worst {served[worst]['store_id']}/{served[worst]['sku_id']})"
    )
    return SkewResult(difference <= tolerance, difference, len(served), detail)


def sample_series(bundle: ForecasterBundle, count: int = 16, seed: int = 0) -> list[tuple[str, str]]:
    """A seeded sample of (store, sku) pairs the model knows."""
    rng = np.random.default_rng(seed)
    pairs = [(store, sku) for store in bundle.meta.stores for sku in bundle.meta.skus]
    chosen = rng.choice(len(pairs), size=min(count, len(pairs)), replace=False)
    return [pairs[i] for i in sorted(chosen)]
