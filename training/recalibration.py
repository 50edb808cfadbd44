"""Lead-time tables refitted on the latest scored forecasts: the calibration window slides forward.

A bundle's lead-time tables (training/lead_time.py) are fitted once, on the validation window. On
the simulator's backtest the cumulative median's bias then grew in the weeks that followed (the
fast movers' actual over p50 went from 1.029 to 1.072 over 14 days), and a 0.9 reorder point for
14 days was kept 0.87 of the time. The tables are quantiles of standardized errors, so they can be
refitted on any rows whose forecasts and lead-time demand are known: at an origin o, a row of
origin o' contributes its lead time L when the demand over it has been seen (o' + L <= o) and ended
within the last `window` periods (o' + L > o - window); the window is the validation window's
length, so the tables are fitted on as many origins as the bundle's were, only later ones. Each
stratum keeps the bundle's edges (the strata are a property of the rows, not of the window), and a
(stratum, L) cell with fewer than `least` such rows keeps the bundle's column: a new deployment
serves its bundle's tables until the evidence arrives.

The backtest measures this as it would be served: rolling_quantiles refits at every test origin on
the rows known by then. Live, the loop refits from the prediction log's forecasts and the gated
sales (pipelines/lead_time_recalibration.py), and /replenishment applies the refitted tables.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from training.lead_time import (
    MIN_STRATUM_ROWS,
    TARGETS,
    band_spread,
    calibrated_quantiles,
    cumulative_actual,
    cumulative_median,
    report_leads,
    stratum_of,
    whole_demand,
    whole_units,
)


def known_lead_time_demand(actual: np.ndarray, origins: np.ndarray, at: int, window: int) -> np.ndarray:
    """D_L, (rows, H), NaN where the lead time L of a row of origin o' ends after `at` (not seen yet)
    or at or before at - window (outside the window); `actual` may hold NaN past what is known."""
    ends = origins[:, None] + np.arange(1, actual.shape[1] + 1)[None, :]
    return np.where((ends <= at) & (ends > at - window), cumulative_actual(actual), np.nan)


def refit_tables(forecast: np.ndarray, demand: np.ndarray, kept: dict, least: int = MIN_STRATUM_ROWS) -> dict:
    """A copy of the calibration `kept` whose (stratum, L) columns are refitted on the rows with a known
    lead-time demand (`demand`, NaN elsewhere), where a stratum holds at least `least` of them at L;
    "refitted" counts the rows behind each refitted column, 0 where the bundle's was kept."""
    if "tables" not in kept:
        raise ValueError("this bundle's lead-time calibration has no volume strata; retrain it to recalibrate")
    levels = np.asarray(kept["levels"], dtype="float64")
    errors = (demand - cumulative_median(forecast)) / band_spread(forecast, kept["spread"])
    strata = stratum_of(forecast, kept["volume_edges"])
    tables, refitted = [], []
    for n, table in enumerate(kept["tables"]):
        table, counts = np.array(table, dtype="float64"), np.zeros(len(table), dtype="int64")
        mine = errors[strata == n]
        for lead in range(min(len(table), mine.shape[1])):
            column = mine[:, lead][~np.isnan(mine[:, lead])]
            if len(column) >= least:
                table[lead], counts[lead] = np.quantile(column, levels), len(column)
        tables.append(table.round(6).tolist())
        refitted.append(counts.tolist())
    return kept | {"tables": tables, "refitted": refitted}


def rolling_tables(
    forecast: np.ndarray,
    actual: np.ndarray,
    origins: np.ndarray,
    kept: dict,
    window: int,
    history: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Iterator[tuple[np.ndarray, dict]]:
    """For each origin of these rows (period ordinals `origins`), in order: which rows have it, and the
    tables refitted on the rows known by then, among these rows and the optional `history` (forecast,
    actual, origins) of earlier rows, such as a validation window's."""
    pool = (forecast, actual, origins)
    if history is not None:
        pool = tuple(np.concatenate([old, new]) for old, new in zip(history, pool, strict=True))
    pool_forecast, pool_actual, pool_origins = pool
    horizon = forecast.shape[1]
    for at in np.unique(origins):
        near = (pool_origins > at - window - horizon) & (pool_origins < at)
        demand = known_lead_time_demand(pool_actual[near], pool_origins[near], int(at), window)
        yield origins == at, refit_tables(pool_forecast[near], demand, kept)


def rolling_quantiles(forecast, actual, origins, kept: dict, window: int, history=None) -> np.ndarray:
    """(rows, H, levels): each row's lead-time quantiles from the tables refitted at its origin (rolling_tables)."""
    quantiles = np.empty((*forecast.shape[:2], len(kept["levels"])))
    for rows, refitted in rolling_tables(forecast, actual, origins, kept, window, history):
        quantiles[rows] = calibrated_quantiles(forecast[rows], refitted)
    return quantiles


def recalibrated_service(
    forecast, actual, origins, kept: dict, window: int
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The achieved service of the tables refitted at each backtest origin on the backtest rows known
    by then (the bundle's until enough are), as a deployment that recalibrates from its prediction
    log would have kept its promises: metrics lead_time_recalibrated_service_L{L}_p{α}, and the curve
    (lead time -> achieved at each kept level) for the calibration plot."""
    levels = list(kept["levels"])
    covered = np.zeros((forecast.shape[1], len(levels)))
    for rows, refitted in rolling_tables(forecast, actual, origins, kept, window):
        points = whole_units(calibrated_quantiles(forecast[rows].astype("float64"), refitted), whole_demand(kept))
        covered += (cumulative_actual(actual[rows])[..., None] <= points).sum(axis=0)
    share, leads = covered / max(len(forecast), 1), report_leads(forecast.shape[1])
    metrics = {
        f"lead_time_recalibrated_service_L{lead}_p{round(alpha * 100)}": float(share[lead - 1, levels.index(alpha)])
        for lead in leads
        for alpha in TARGETS
    }
    return metrics, {str(lead): share[lead - 1].round(4).tolist() for lead in leads}
