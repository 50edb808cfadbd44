"""Quantiles of lead-time demand: the cumulative demand of the next L periods, for L = 1..H.

A reorder point is a quantile of the demand over the lead time, and quantiles do not add: the sum
of each day's p90 over a week is far above the week's p90 when the days' errors partly cancel,
and below it when they move together (a level the network has wrong stays wrong all week). The
textbook safety stock z·σ·√L assumes normal errors, independent from day to day.

So lead-time quantiles are a calibrated layer over the network's per-step bands, fitted on a
window the network did not fit (the validation window, as the bands' own calibration is): for each
L, the error of the cumulative median, D_L - C_L, is divided by a spread S_L read from the bands,
and the α-quantile of that ratio over the window's rows is the table's entry (L, α). A row's
α-quantile of D_L is then C_L + table[L, α]·S_L, at least 0, and made non-decreasing in L (demand
over a longer lead time cannot be smaller). It is non-decreasing in α because each row of the
table is a set of quantiles of one sample. How the spread is read from the bands (SPREADS) is
measured in bench/lead_time.py; SERVED_SPREAD is the one chosen there (the two differ by
0.3 points of achieved service at most: the table absorbs the shape).

One table for every row is right on average and wrong for each kind of item: a slow mover's
cumulative demand is a few whole units of Poisson noise around a median of zero, a fast mover's
is dominated by a level the forecast has wrong, and the two standardized errors have different
tails. Pooled, the slow movers' tail set the table, and on the simulator's backtest the fast movers
held 0.998 of cycles for a 0.95 target (and most of the stock) while the slow movers held 0.85. So
rows are split into VOLUME_STRATA by their forecast volume over the horizon (the sum of the p50s),
at the validation rows' quantiles of it, and each stratum has its own table (bench/lead_time.py
measures both).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

# The low levels are there for stockout probabilities of positions below the median (replenishment.py).
SERVICE_LEVELS = (0.1, 0.25, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)
# Half a unit of spread at least per step: a series forecast at zero with a zero-width band would
# otherwise have no spread at all, and one sale would be an infinite error in the table.
MIN_STEP_SPREAD = 0.5
SPREADS = ("sum", "root")
SERVED_SPREAD = "sum"  # chosen in bench/lead_time.py
# Three volume strata (slow, medium, fast movers), each of at least 300 validation rows, so that
# a stratum's 0.99 quantile rests on three rows above it at least.
VOLUME_STRATA = 3
MIN_STRATUM_ROWS = 300


def cumulative_median(forecast: np.ndarray) -> np.ndarray:
    """C_L: the sum of the p50s of steps 1..L, (rows, H), from quantile forecasts (rows, H, 3)."""
    return np.cumsum(forecast[..., 1], axis=1)


def band_spread(forecast: np.ndarray, kind: str) -> np.ndarray:
    """S_L, (rows, H): the p10–p90 widths of steps 1..L, summed ("sum": errors that move together)
    or added in quadrature ("root": independent errors); each width at least MIN_STEP_SPREAD."""
    width = np.maximum(forecast[..., 2] - forecast[..., 0], MIN_STEP_SPREAD)
    if kind == "sum":
        return np.cumsum(width, axis=1)
    if kind == "root":
        return np.sqrt(np.cumsum(width**2, axis=1))
    raise ValueError(f"unknown spread {kind!r}; expected one of {', '.join(SPREADS)}")


def calibration(forecast: np.ndarray, actual: np.ndarray) -> dict:
    """What a bundle keeps (BundleMeta.lead_time): the levels, the spread, the volume edges between
    strata and one table per stratum, from the quantile forecasts (rows, H, 3) and actuals (rows, H)
    in units of a window the network did not fit. "table" is the pooled table of all rows: code from
    before the strata, serving a bundle trained after them, reads that one."""
    edges = volume_edges(forecast_volume(forecast))
    strata = stratum_of(forecast, edges)
    strata_rows = [strata == n for n in range(len(edges) + 1)]
    tables = [fit_table(forecast[rows], actual[rows], spread=SERVED_SPREAD) for rows in strata_rows]
    return {
        "levels": list(SERVICE_LEVELS),
        "spread": SERVED_SPREAD,
        # How reorder points are rounded (whole_units): down where every demand was a whole number.
        "whole_demand": bool(np.all(np.isnan(actual) | (actual == np.round(actual)))),
        "table": fit_table(forecast, actual, spread=SERVED_SPREAD).round(6).tolist(),
        "volume_edges": edges.round(6).tolist(),
        "tables": [table.round(6).tolist() for table in tables],
    }


def forecast_volume(forecast: np.ndarray) -> np.ndarray:
    """Per row, the sum of its p50s over the horizon: what sorts rows into volume strata."""
    return forecast[..., 1].sum(axis=1)


def volume_edges(volume: np.ndarray, strata: int = VOLUME_STRATA, least: int = MIN_STRATUM_ROWS) -> np.ndarray:
    """Edges between volume strata at the quantiles of `volume`, fewer where a stratum would hold
    fewer than `least` rows (ties at zero volume are common: many slow movers forecast at 0)."""
    edges = np.unique(np.quantile(volume, np.linspace(0, 1, strata + 1)[1:-1])) if len(volume) else np.zeros(0)
    while len(edges):
        counts = np.bincount(np.searchsorted(edges, volume, side="left"), minlength=len(edges) + 1)
        if counts.min() >= least:
            break
        # Merge the smallest stratum into the one above it (the last into the one below).
        edges = np.delete(edges, min(int(np.argmin(counts)), len(edges) - 1))
    return edges


def stratum_of(forecast: np.ndarray, edges) -> np.ndarray:
    """Per row, its volume stratum: 0 for a volume up to the first edge, and so on."""
    return np.searchsorted(np.asarray(edges, dtype="float64"), forecast_volume(forecast), side="left")


def calibrated_quantiles(forecast: np.ndarray, kept: dict) -> np.ndarray:
    """(rows, H, levels): lead-time quantiles from a bundle's calibration, each row by its volume
    stratum's table. A calibration from before strata has one table, for every row."""
    if "tables" not in kept:
        return lead_time_quantiles(forecast, np.asarray(kept["table"], dtype="float64"), spread=kept["spread"])
    strata = stratum_of(forecast, kept["volume_edges"])
    quantiles = np.empty((*forecast.shape[:2], len(kept["levels"])))
    for n, table in enumerate(kept["tables"]):
        rows = strata == n
        quantiles[rows] = lead_time_quantiles(forecast[rows], np.asarray(table, dtype="float64"), spread=kept["spread"])
    return quantiles


def cumulative_actual(actual: np.ndarray) -> np.ndarray:
    """D_L, (rows, H): the demand of steps 1..L."""
    return np.cumsum(actual, axis=1)


def fit_table(forecast: np.ndarray, actual: np.ndarray, *, spread: str, levels=SERVICE_LEVELS) -> np.ndarray:
    """The (H, levels) table of standardized lead-time errors, from rows the network did not fit."""
    if not len(forecast):
        raise ValueError("no rows to calibrate lead-time quantiles on")
    errors = (cumulative_actual(actual) - cumulative_median(forecast)) / band_spread(forecast, spread)
    return np.quantile(errors, levels, axis=0).T


def lead_time_quantiles(forecast: np.ndarray, table: np.ndarray, *, spread: str) -> np.ndarray:
    """(rows, H, levels): each row's quantiles of demand over L = 1..H periods, at least 0,
    non-decreasing in L and in the level."""
    center, scale = cumulative_median(forecast), band_spread(forecast, spread)
    quantiles = np.maximum(center[..., None] + table[None] * scale[..., None], 0.0)
    return np.maximum.accumulate(np.maximum.accumulate(quantiles, axis=1), axis=2)


def textbook_quantiles(forecast: np.ndarray, sigma: np.ndarray, levels=SERVICE_LEVELS) -> np.ndarray:
    """(rows, H, levels): C_L + z_α·σ·√L, the formula a planner would otherwise use, with σ each
    row's one-step error standard deviation; at least 0."""
    steps = np.sqrt(np.arange(1, forecast.shape[1] + 1))
    z = norm.ppf(np.asarray(levels))
    center = cumulative_median(forecast)
    return np.maximum(center[..., None] + sigma[:, None, None] * steps[None, :, None] * z[None, None, :], 0.0)


def whole_units(quantiles: np.ndarray, whole_demand: bool = True) -> np.ndarray:
    """Reorder points in whole units. Where demand comes in whole units, the quantile rounded down:
    the largest whole number at or below it covers exactly the demands the quantile covers, and
    rounding up would add a unit of stock, and service, that the level did not ask for. Where it
    does not (M1's series are not unit counts: 81% of its slow movers' monthly demands have a
    fraction), rounding down leaves out every demand between the whole number and the quantile, and
    the live M1 loop kept a 0.9 promise 0.86 of the time for it; so the quantile is rounded up."""
    return np.floor(quantiles + 1e-9) if whole_demand else np.ceil(quantiles - 1e-9)


def whole_demand(kept: dict) -> bool:
    """Whether a calibration's demand came in whole units (calibrations from before the flag did)."""
    return bool(kept.get("whole_demand", True))


def achieved_service(actual: np.ndarray, quantiles: np.ndarray, whole: bool = True) -> np.ndarray:
    """(H, levels): the share of rows whose demand over L stayed at or below the reorder point."""
    return (cumulative_actual(actual)[..., None] <= whole_units(quantiles, whole)).mean(axis=0)


def safety_stock(forecast: np.ndarray, quantiles: np.ndarray, whole: bool = True) -> np.ndarray:
    """(H, levels): the mean over rows of the whole-unit reorder point less the expected demand C_L."""
    return (whole_units(quantiles, whole) - cumulative_median(forecast)[..., None]).mean(axis=0)


TARGETS = (0.9, 0.95, 0.98)  # the service levels the backtest reports
CHUNK_ROWS = 50_000


def report_leads(horizon: int) -> list[int]:
    """The lead times the backtest reports: one period, half the horizon and the whole of it."""
    return sorted({1, max(1, horizon // 2), horizon})


def one_step_sigma(forecast: np.ndarray, actual: np.ndarray, series: np.ndarray) -> np.ndarray:
    """Per row, the standard deviation of its series' one-step errors over the rows given (the whole
    set's where a series has a single row): the σ of the textbook formula."""
    errors = actual[:, 0] - forecast[:, 0, 1]
    _, codes = np.unique(series, return_inverse=True)
    count = np.bincount(codes)
    mean = np.bincount(codes, errors) / count
    variance = np.bincount(codes, (errors - mean[codes]) ** 2) / np.maximum(count - 1, 1)
    sigma = np.where(count > 1, np.sqrt(variance), np.std(errors, ddof=1) if len(errors) > 1 else 0.0)
    return sigma[codes]


def backtest_service(
    forecast: np.ndarray, actual: np.ndarray, series: np.ndarray, kept: dict
) -> tuple[dict[str, float], dict[str, dict[str, list[float]]]]:
    """Achieved cycle service levels on backtest rows: as metrics, per reported lead time and target
    level, with the mean safety stock, for the calibrated quantiles and the textbook formula; and as
    curves (method -> lead time -> achieved at each of the kept levels) for the calibration plot. The
    textbook's σ comes from the same rows' one-step errors, which favours it (in-sample). Rows are
    taken CHUNK_ROWS at a time: the quantiles are rows x H x levels (5 GB at 25,000 daily series)."""
    levels, whole = list(kept["levels"]), whole_demand(kept)
    sigma = one_step_sigma(forecast, actual, series)
    thirds = volume_thirds(forecast)
    totals = {name: np.zeros((2, forecast.shape[1], len(levels))) for name in ("lead_time", "textbook")}
    by_third = np.zeros((len(VOLUME_THIRDS), forecast.shape[1], len(levels)))
    for start in range(0, len(forecast), CHUNK_ROWS):
        part, truth = forecast[start : start + CHUNK_ROWS].astype("float64"), actual[start : start + CHUNK_ROWS]
        for name, quantiles in (
            ("lead_time", calibrated_quantiles(part, kept)),
            ("textbook", textbook_quantiles(part, sigma[start : start + CHUNK_ROWS], levels)),
        ):
            covered = cumulative_actual(truth)[..., None] <= whole_units(quantiles, whole)
            totals[name][0] += covered.sum(axis=0)
            totals[name][1] += safety_stock(part, quantiles, whole) * len(part)
            if name == "lead_time":
                by_third += covered_by_third(covered, thirds[start : start + CHUNK_ROWS])
    metrics = service_by_third(by_third, np.bincount(thirds, minlength=len(VOLUME_THIRDS)), levels, forecast.shape[1])
    curves = {}
    for name, (covered, stock) in totals.items():
        covered, stock = covered / len(forecast), stock / len(forecast)
        leads = report_leads(forecast.shape[1])
        curves[name] = {str(lead): covered[lead - 1].round(4).tolist() for lead in leads}
        for lead in leads:
            for alpha in TARGETS:
                cell = (lead - 1, levels.index(alpha))
                metrics[f"{name}_service_L{lead}_p{round(alpha * 100)}"] = float(covered[cell])
                metrics[f"{name}_safety_stock_L{lead}_p{round(alpha * 100)}"] = float(stock[cell])
    return metrics, curves


VOLUME_THIRDS = ("slow", "medium", "fast")


def volume_thirds(forecast: np.ndarray) -> np.ndarray:
    """Per row, 0, 1 or 2: its third of the rows by forecast volume over the horizon (ties at an
    edge go to the lower third)."""
    volume = forecast_volume(forecast)
    if not len(volume):
        return np.zeros(0, dtype="int64")
    return np.searchsorted(np.quantile(volume, [1 / 3, 2 / 3]), volume, side="left")


def covered_by_third(covered: np.ndarray, thirds: np.ndarray) -> np.ndarray:
    """(3, H, levels): how many rows of each volume third had their demand over L covered, from
    each row's (H, levels) coverage."""
    return np.stack([covered[thirds == n].sum(axis=0) for n in range(len(VOLUME_THIRDS))])


def service_by_third(covered: np.ndarray, rows: np.ndarray, levels: list[float], horizon: int) -> dict[str, float]:
    """Metrics lead_time_service_L7_p95_slow, ..._medium, ..._fast: a level promised to every item
    is kept for slow and fast movers alike, not only on average (one table for all rows gave the
    fast movers 0.998 and the slow 0.85 for 0.95 on the simulator)."""
    metrics = {}
    for n, name in enumerate(VOLUME_THIRDS):
        for lead in report_leads(horizon) if rows[n] else ():
            for alpha in TARGETS:
                share = covered[n, lead - 1, levels.index(alpha)] / rows[n]
                metrics[f"lead_time_service_L{lead}_p{round(alpha * 100)}_{name}"] = float(share)
    return metrics
