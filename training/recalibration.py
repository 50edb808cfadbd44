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

Refitting alone still fell short: a table fitted on one window covers less on the next than it did
on its own rows (on the simulator, a 0.9 for 14 days refitted this way was kept 0.88 of the time),
the shortfall growing with L, as a window holds fewer independent L-period demands and the first
L origins are served the bundle's tables, which the validation window had fitted even less well.
So the served record is read too: each row's demand, once known, is placed at the level that the
tables served at its origin needed to cover it (reached_levels), and where those levels show that
a promise of α was kept less often than α, the column is read at the level that would have kept it
(recalibrate_levels: the quantile recalibration of Kuleshov et al., 2018, on the record of the
tables as served, one-sided). It needs no more than the refit does: the tables served at each
origin are refitted again from the same rows (served_calibrations).

The backtest measures this as it would be served: rolling_quantiles takes the calibration served at
every test origin from the rows known by then. Live, the loop writes the prediction log's forecasts
beside the gated sales (monitoring/lead_time_evidence.py), and /replenishment and `demandops plan`
take the calibration served now from them.
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


def reached_levels(errors: np.ndarray, table: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Per row, the level at which one column of a table (its quantiles at `levels`) covered the
    row's standardized error: read between the levels, 0 below the lowest, 1 above the highest. Where
    the column has ties (a slow mover's few whole units), the first level that covers it."""
    above = np.searchsorted(table, errors, side="left")  # the first level whose quantile is >= the error
    low, high = np.maximum(above - 1, 0), np.minimum(above, len(table) - 1)
    gap = table[high] - table[low]
    share = np.divide(errors - table[low], gap, out=np.zeros_like(errors), where=gap > 0)
    reached = np.where(above == 0, 0.0, levels[low] + share * (levels[high] - levels[low]))
    return np.where(np.isnan(errors), np.nan, np.where(above >= len(table), 1.0, reached))


def recalibrate_levels(refitted: dict, reached: np.ndarray, strata: np.ndarray, least: int = MIN_STRATUM_ROWS) -> dict:
    """The tables of `refitted`, raised where the served record shows promises kept less often than
    made: where a stratum holds at least `least` rows with a known `reached` level at L (the level
    at which the tables served at the row's origin covered its demand), the α entry becomes the
    column's quantile at the α-quantile of those levels when that is above α. Never below α: a
    record that over-covered was, on the backtests, the bundle's tables before the refit replaced
    them (weekly, they kept 0.93 for 0.9 over 8 weeks), and reading the refitted column lower for it
    left the refitted tables 2-3 points short (0.87 for the same cell); a quantile fitted on one
    window covers less on the next, not more."""
    levels = np.asarray(refitted["levels"], dtype="float64")
    tables = []
    for n, table in enumerate(refitted["tables"]):
        table, mine = np.array(table, dtype="float64"), reached[strata == n]
        for lead in range(min(len(table), mine.shape[1])):
            seen = mine[:, lead][~np.isnan(mine[:, lead])]
            if len(seen) >= least:
                needed = np.clip(np.quantile(seen, levels), levels, levels[-1])
                table[lead] = np.interp(needed, levels, table[lead])
        tables.append(table.round(6).tolist())
    return refitted | {"tables": tables}


def served_calibrations(
    forecast: np.ndarray,
    actual: np.ndarray,
    origins: np.ndarray,
    kept: dict,
    window: int,
    at_periods,
    read_record: bool = True,
) -> Iterator[tuple[int, dict]]:
    """For each period `at` of `at_periods`, in order, the calibration a deployment serves then, from
    the rows (forecast, actual, origins) logged before it: the tables refitted on the rows whose
    lead-time demand is known by `at` (refit_tables), raised where the tables refitted at each of
    those rows' origins kept their promises less often than made (recalibrate_levels; not with
    `read_record` false, which bench/lead_time.py compares). `actual` may hold NaN where unknown."""
    horizon, levels = forecast.shape[1], np.asarray(kept["levels"], dtype="float64")
    errors = (cumulative_actual(actual) - cumulative_median(forecast)) / band_spread(forecast, kept["spread"])
    strata = stratum_of(forecast, kept.get("volume_edges", []))
    reached = np.full(errors.shape, np.nan)
    wanted = np.unique(np.asarray(at_periods, dtype="int64"))
    # The record needs the tables served at each origin whose rows can count at the first `at`.
    replayed = origins[(origins > wanted.min() - window - horizon) & (origins < wanted.max())] if len(wanted) else []
    replayed = replayed if read_record else []
    for at in np.union1d(replayed, wanted).astype("int64"):
        near = (origins > at - window - horizon) & (origins < at)
        demand = known_lead_time_demand(actual[near], origins[near], int(at), window)
        refitted = refit_tables(forecast[near], demand, kept)
        if not read_record:
            yield int(at), refitted
            continue
        for n, table in enumerate(np.asarray(refitted["tables"], dtype="float64")):
            mine = np.flatnonzero((origins == at) & (strata == n))
            for lead in range(horizon):
                reached[mine, lead] = reached_levels(errors[mine, lead], table[lead], levels)
        if at in wanted:
            known = np.where(np.isnan(demand), np.nan, reached[near])
            yield int(at), recalibrate_levels(refitted, known, strata[near])


def rolling_tables(
    forecast: np.ndarray,
    actual: np.ndarray,
    origins: np.ndarray,
    kept: dict,
    window: int,
    history: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    read_record: bool = True,
) -> Iterator[tuple[np.ndarray, dict]]:
    """For each origin of these rows (period ordinals `origins`), in order: which rows have it, and the
    calibration served then (served_calibrations), from these rows and the optional `history`
    (forecast, actual, origins) of earlier rows, such as a validation window's."""
    pool = (forecast, actual, origins)
    if history is not None:
        pool = tuple(np.concatenate([old, new]) for old, new in zip(history, pool, strict=True))
    for at, served in served_calibrations(*pool, kept, window, np.unique(origins), read_record):
        yield origins == at, served


def rolling_quantiles(forecast, actual, origins, kept: dict, window: int, history=None, read_record=True) -> np.ndarray:
    """(rows, H, levels): each row's lead-time quantiles from the tables served at its origin (rolling_tables)."""
    quantiles = np.empty((*forecast.shape[:2], len(kept["levels"])))
    for rows, refitted in rolling_tables(forecast, actual, origins, kept, window, history, read_record):
        quantiles[rows] = calibrated_quantiles(forecast[rows], refitted)
    return quantiles


def recalibrated_service(
    forecast, actual, origins, kept: dict, window: int
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The achieved service of the tables served at each backtest origin (served_calibrations), from
    the backtest rows known by then (the bundle's until enough are), as a deployment that
    recalibrates from its prediction log would have kept its promises: metrics
    lead_time_recalibrated_service_L{L}_p{α}, and the curve (lead time -> achieved at each kept
    level) for the calibration plot."""
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
