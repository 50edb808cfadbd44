"""Lead-time demand quantiles side by side: the calibrated layer's spreads against the textbook formula.

    .venv/bin/python -m bench.lead_time [--parts simulator weekly monthly m1 tourism] [--epochs 12] [--seeds 0 1 2]

Each part trains the network once, forecasts the rows of its validation window (which it did not
fit) and of a test set, and compares, on the test set, the reorder points of:
- `strata`: training/lead_time.py's layer as served, calibrated on the validation window, one
  table per volume stratum;
- `rolling_fresh`: the tables a deployment whose loop recalibrates them from its prediction log
  (which starts empty) serves at each test origin (training/recalibration.py): refitted on the
  test rows whose lead-time demand was known by then and ended within the last validation-window's
  length of periods, the bundle's columns kept until a stratum holds 300 such rows, and raised
  where the record of the tables served at those rows' origins shows promises kept less often than
  made;
- `refit_fresh`: the same refit without reading the record (as served before 2026-12-04);
- `rolling`: as `rolling_fresh`, with the validation window's rows also in the pool from the start;
- `pooled_sum` and `pooled_root`: the layer with one table for every row (as served before
  2026-12-03), the spread of the cumulative demand read as the sum of the steps' p10–p90 widths,
  or their root sum of squares;
- `textbook`: C_L + z·σ·√L, σ each series' one-step error standard deviation on the validation
  window (the formula a planner would otherwise use);
- `sum_of_p90s` at 0.9 only: each step's p90 added up, to show that quantiles do not add.

For each lead time L and target service level α: the achieved cycle service level (the share of
test rows whose demand over L stayed at or below the whole-unit reorder point) and the mean safety
stock (reorder point less the cumulative median); the achieved level of each third of the test
rows by forecast volume (slow, medium and fast movers: a promise is made to each item, not to the
average); and the safety stock at equal service: each method's safety stocks scaled by the one
factor that makes them achieve the target on the test rows, found in hindsight for every method
alike, which compares their shapes (for the textbook, that is its z swept). With several
`--seeds`, the network is trained once per seed and the served layer's achieved levels and stock
ratios are summarized over them (median, least, most): on one test window the achieved level of a
14-day lead time moves by 2–3 points from one training seed to the next. Test sets: the simulator's backtest window
(default preset, every origin); the default preset's series over four years summed into weeks
(Monday to Sunday, whole weeks only), with the weekly cadence's defaults and backtest window; the
same series over eight years summed into calendar months, with the monthly cadence's (horizon 3,
6 validation and 9 backtest origins); M1 and Tourism's official holdouts (one origin per series,
the last history month). Results in bench/results/lead_time.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from bench.network import _origin_rows
from bench.real import _matrix
from bench.train import default_training_set
from demandops.frequency import period_ordinals, period_start
from demandops.settings import MonthlyCadence, WeeklyCadence
from salesdata.datasets import resized
from salesdata.simulator import PRESETS, simulate
from training.dataset import entity_rows, label_columns, origin_split, rows_with_history, split_by_origin
from training.features import FeatureSpec, compute_features
from training.lead_time import (
    SERVICE_LEVELS,
    SPREADS,
    achieved_service,
    band_spread,
    calibrated_quantiles,
    calibration,
    cumulative_actual,
    cumulative_median,
    fit_table,
    forecast_volume,
    lead_time_quantiles,
    safety_stock,
    textbook_quantiles,
    volume_thirds,
    whole_demand,
    whole_units,
)
from training.recalibration import rolling_quantiles
from training.static_features import with_static
from training.train import TrainConfig, train_forecaster

RESULTS = Path(__file__).parent / "results"
TARGETS = (0.9, 0.95, 0.98)
KEYS = ["store_id", "sku_id"]


def _validation(rows: pd.DataFrame, horizon: int, validation_origins: int) -> pd.DataFrame:
    """The rows of the training's validation window: the network stopped early on them, but did not fit them."""
    _, first_val = origin_split(rows["event_timestamp"].unique(), horizon, validation_origins)
    return rows[rows["event_timestamp"] >= first_val].reset_index(drop=True)


def _sigma(val: pd.DataFrame, forecast: np.ndarray, test_keys: pd.DataFrame) -> np.ndarray:
    """Each test row's series' one-step error standard deviation on the validation window (pooled where
    the series has fewer than two validation rows)."""
    errors = val[KEYS].assign(error=val["y_1"].to_numpy("float64") - forecast[:, 0, 1])
    per_series = errors.groupby(KEYS)["error"].std().rename("sigma").reset_index()
    sigma = test_keys[KEYS].merge(per_series, on=KEYS, how="left")["sigma"]
    return sigma.fillna(float(errors["error"].std())).to_numpy("float64")


def _ordinals(rows: pd.DataFrame, frequency: str) -> np.ndarray:
    return period_ordinals(rows["event_timestamp"], frequency)


def stock_at_equal_service(center, demand, base, target: float, whole: bool = True) -> float:
    """The mean safety stock of reorder points C + m·base, with m the smallest that achieves `target`
    on these rows (found in hindsight, by bisection): the same scale for every method, so that
    methods are compared at equal achieved service by the shape of their safety stocks alone."""
    low, high = -5.0, 40.0
    for _ in range(50):
        middle = (low + high) / 2
        points = whole_units(np.maximum(center + middle * base, 0.0), whole)
        low, high = (low, middle) if (demand <= points).mean() >= target else (middle, high)
    return float((whole_units(np.maximum(center + high * base, 0.0), whole) - center).mean())


def compare(val_forecast, val_actual, forecast, actual, sigma, leads, origins) -> dict:
    """Achieved service and mean safety stock of each variant at each (L, α), on the test rows; the
    service of each third of the rows by forecast volume; and the stock at equal service. `origins`
    holds the period ordinals of the validation and the test rows, for the rolling variants."""
    kept = calibration(val_forecast, val_actual)
    val_origins, test_origins = origins
    window = len(np.unique(val_origins))  # the calibration window keeps its length as it slides
    whole = whole_demand(kept)  # reorder points rounded down for unit counts, up for M1's fractions
    variants = {
        "strata": calibrated_quantiles(forecast, kept),
        "rolling": rolling_quantiles(
            forecast, actual, test_origins, kept, window, history=(val_forecast, val_actual, val_origins)
        ),
        "rolling_fresh": rolling_quantiles(forecast, actual, test_origins, kept, window),
        "refit_fresh": rolling_quantiles(forecast, actual, test_origins, kept, window, read_record=False),
        **{
            f"pooled_{s}": lead_time_quantiles(forecast, fit_table(val_forecast, val_actual, spread=s), spread=s)
            for s in SPREADS
        },
        "textbook": textbook_quantiles(forecast, sigma),
    }
    levels = list(SERVICE_LEVELS)
    center, demand = cumulative_median(forecast), cumulative_actual(actual)
    thirds = volume_thirds(forecast)
    out: dict[str, dict] = {}
    for name, quantiles in variants.items():
        achieved, stock = achieved_service(actual, quantiles, whole), safety_stock(forecast, quantiles, whole)
        covered = demand[..., None] <= whole_units(quantiles, whole)
        out[name] = {
            f"L{lead}": {
                f"{alpha}": {
                    "achieved": round(float(achieved[lead - 1, levels.index(alpha)]), 4),
                    "safety_stock": round(float(stock[lead - 1, levels.index(alpha)]), 2),
                    "achieved_by_volume_third": [
                        round(float(covered[thirds == n, lead - 1, levels.index(alpha)].mean()), 4) for n in range(3)
                    ],
                    "safety_stock_at_equal_service": round(
                        stock_at_equal_service(
                            center[:, lead - 1],
                            demand[:, lead - 1],
                            quantiles[:, lead - 1, levels.index(alpha)] - center[:, lead - 1],
                            alpha,
                            whole,
                        ),
                        2,
                    ),
                }
                for alpha in TARGETS
            }
            for lead in leads
        }
        deviations = [abs(achieved[lead - 1, levels.index(a)] - a) for lead in leads for a in TARGETS]
        out[name]["worst_deviation_pp"] = round(100 * float(max(deviations)), 2)
    covered = demand <= whole_units(np.cumsum(forecast[..., 2], axis=1), whole)
    summed = {lead: round(float(covered[:, lead - 1].mean()), 4) for lead in leads}
    out["sum_of_p90s"] = {f"L{lead}": {"0.9": {"achieved": share}} for lead, share in summed.items()}
    out["window_shift"] = window_shift(val_forecast, val_actual, forecast, actual, max(leads))
    return out


def window_shift(val_forecast, val_actual, forecast, actual, lead: int) -> list[float]:
    """Per volume third (the validation rows' thirds), the test window's 0.95 quantile of the
    standardized error (D_L - C_L) / S_L over the validation window's: above 1 where the test
    window's errors are wider, relative to the bands, than those the table was calibrated on."""
    edges = np.quantile(forecast_volume(val_forecast), [1 / 3, 2 / 3])
    ratios = []
    for rows_forecast, rows_actual in ((val_forecast, val_actual), (forecast, actual)):
        errors = cumulative_actual(rows_actual) - cumulative_median(rows_forecast)
        standardized = (errors / band_spread(rows_forecast, "sum"))[:, lead - 1]
        thirds = np.searchsorted(edges, forecast_volume(rows_forecast), side="left")
        ratios.append([float(np.quantile(standardized[thirds == n], 0.95)) for n in range(3)])
    return [round(test / val, 3) for val, test in zip(*ratios, strict=True)]


def _wape(forecast: np.ndarray, actual: np.ndarray) -> dict:
    """The p50's WAPE on the test rows: a longer validation window must not buy calibration with accuracy."""
    return {"wape": round(float(np.abs(actual - forecast[..., 1]).sum() / actual.sum()), 4)}


def _train(rows: pd.DataFrame, horizon: int, validation: int, epochs: int, spec, seed: int = 0, **extra):
    config = TrainConfig(horizon=horizon, validation_origins=validation, epochs=epochs, seed=seed, **extra)
    return train_forecaster(rows, config, feature_service="bench", dataset_version="bench", spec=spec).bundle


def simulator_part(epochs: int, seed: int, validation: int | None = None) -> dict:
    """The simulator's daily backtest; `validation` origins instead of the daily cadence's default."""
    training_set, _data, cadence, spec = default_training_set()
    horizon, validation = cadence.horizon, validation or cadence.validation_periods
    fit, backtest = split_by_origin(training_set, horizon, cadence.backtest_origins)
    bundle = _train(fit, horizon, validation, epochs, spec, seed)
    val = _validation(fit, horizon, validation)
    val_forecast, forecast = bundle.predict(val), bundle.predict(backtest)
    sigma = _sigma(val, val_forecast, backtest)
    val_actual = val[label_columns(horizon)].to_numpy("float64")
    actual = backtest[label_columns(horizon)].to_numpy("float64")
    origins = _ordinals(val, "D"), _ordinals(backtest, "D")
    table = compare(val_forecast, val_actual, forecast, actual, sigma, (1, 7, 14), origins)
    return {"test_rows": len(backtest), "validation_rows": len(val), "horizon": horizon, "variants": table} | _wape(
        forecast, actual
    )


def periodic_sales(daily: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """Daily sales summed into whole weeks (Monday to Sunday) or calendar months, labelled by their
    first day as an import of weekly or monthly data would be: units summed, the mean price, on
    promotion if any day was, the last stock. Partial first and last periods would read as drops."""
    sales = daily.assign(date=period_start(daily["date"], frequency))
    days = daily["date"].groupby(sales["date"]).nunique()
    length = (period_start(pd.Series(days.index + pd.Timedelta(days=31 if frequency == "M" else 7)), frequency)
              .to_numpy() - days.index.to_numpy()) / pd.Timedelta(days=1)  # fmt: skip
    sales = sales[sales["date"].isin(days.index[days.to_numpy() == length])]
    summed = sales.groupby(["date", *KEYS], sort=True).agg(
        units_sold=("units_sold", "sum"), price=("price", "mean"), on_promo=("on_promo", "max"),
        stock_on_hand=("stock_on_hand", "last"),
    )  # fmt: skip
    return summed.reset_index()


# Two years hold 44 weekly origins with the weekly cadence's 52 weeks of history: too few for its 24
# backtest and 8 validation origins, each split leaving a horizon's gap. Four years of the same 200 series.
WEEKLY_YEARS = 4


def weekly_part(epochs: int, seed: int, validation: int | None = None) -> dict:
    """Four simulated years summed into weeks; `validation` origins instead of the weekly cadence's default."""
    return summed_part("W", WEEKLY_YEARS, epochs, seed, validation)


# Monthly: 12 months of history for the features, 6 validation and 9 backtest origins, each split
# leaving a horizon of 3 months; eight simulated years give the network 60-odd origins to fit.
MONTHLY_YEARS = 8


def simulator_monthly_part(epochs: int, seed: int, validation: int | None = None) -> dict:
    """Eight simulated years summed into calendar months, with the monthly cadence's defaults."""
    return summed_part("M", MONTHLY_YEARS, epochs, seed, validation)


def summed_part(frequency: str, years: int, epochs: int, seed: int, validation: int | None) -> dict:
    """The default preset's 200 series over `years` summed into weeks or months, with that cadence's
    defaults and backtest window; `validation` origins instead of the cadence's default."""
    data = simulate(resized(PRESETS["default"], stores=None, skus=None, days=years * 365))
    cadence = WeeklyCadence() if frequency == "W" else MonthlyCadence()
    sales = periodic_sales(data.sales, frequency)
    spec = FeatureSpec.for_cadence(frequency, cadence)
    rows = entity_rows(sales, cadence.horizon, spec).merge(compute_features(sales, spec), on=[*KEYS, "event_timestamp"])
    rows = with_static(rows_with_history(rows, spec), data.stores, data.skus)
    horizon, validation = cadence.horizon, validation or cadence.validation_periods
    fit, backtest = split_by_origin(rows, horizon, cadence.backtest_origins)
    extra = {"seasonal_period": cadence.seasonal_period}
    bundle = _train(fit, horizon, validation, epochs, spec, seed, **extra)
    val = _validation(fit, horizon, validation)
    val_forecast, forecast = bundle.predict(val), bundle.predict(backtest)
    sigma = _sigma(val, val_forecast, backtest)
    val_actual = val[label_columns(horizon)].to_numpy("float64")
    actual = backtest[label_columns(horizon)].to_numpy("float64")
    origins = _ordinals(val, frequency), _ordinals(backtest, frequency)
    leads = sorted({1, max(2, horizon // 2), horizon})  # weekly 1, 4, 8; monthly 1, 2, 3
    table = compare(val_forecast, val_actual, forecast, actual, sigma, tuple(leads), origins)
    return {"test_rows": len(backtest), "validation_rows": len(val), "horizon": horizon, "variants": table} | _wape(
        forecast, actual
    )


def monthly_part(name: str, epochs: int, seed: int) -> dict:
    data, cadence, spec, rows, last = _origin_rows(name)
    horizon = data.horizon
    bundle = _train(
        rows, horizon, cadence.validation_periods, epochs, spec, seed, seasonal_period=cadence.seasonal_period
    )
    val = _validation(rows, horizon, cadence.validation_periods)
    val_forecast, forecast = bundle.predict(val), bundle.predict(last)
    dates = sorted(data.holdout["date"].unique())
    order = list(last["sku_id"])
    actual = _matrix(data.holdout.rename(columns={"units_sold": "p50"}), order, dates)
    sigma = _sigma(val, val_forecast, last)
    val_actual = val[label_columns(horizon)].to_numpy("float64")
    leads = (1, horizon // 2, horizon)
    origins = _ordinals(val, "M"), _ordinals(last, "M")
    table = compare(val_forecast, val_actual, forecast, actual, sigma, leads, origins)
    return {"test_rows": len(last), "validation_rows": len(val), "horizon": horizon, "variants": table} | _wape(
        forecast, actual
    )


def print_table(part: str, variants: dict) -> None:
    """One line per variant: achieved service / mean safety stock at each (L, α), the service of each
    volume third, and the stock at equal service."""
    for name, table in variants.items():
        if name == "window_shift":
            print(f"{part:9} window shift (test / validation 0.95 quantile, by volume third): {table}", flush=True)
            continue
        cells = [
            f"{lead}@{alpha}: {cell['achieved']:.3f}/{cell.get('safety_stock', float('nan')):.1f}"
            + (
                f" thirds {'/'.join(f'{x:.3f}' for x in cell['achieved_by_volume_third'])}"
                f" equal-service stock {cell['safety_stock_at_equal_service']:.1f}"
                if "achieved_by_volume_third" in cell
                else ""
            )
            for lead, by_level in table.items()
            if lead != "worst_deviation_pp"
            for alpha, cell in by_level.items()
        ]
        print(f"{part:9} {name:11} worst {table.get('worst_deviation_pp', '-')} pp | " + " | ".join(cells), flush=True)


SUMMARIZED = ("strata", "rolling", "rolling_fresh", "refit_fresh")  # the served layer, and as the loop recalibrates it


def seed_summary(variants: dict, name: str = "strata") -> dict:
    """What one seed's run says of a variant of the served layer: its achieved level and its stock at
    equal service over the textbook's, per lead time and target."""
    strata, textbook = variants[name], variants["textbook"]
    return {
        lead: {
            alpha: {
                "achieved": cell["achieved"],
                "stock_to_textbook_at_equal_service": round(
                    cell["safety_stock_at_equal_service"] / textbook[lead][alpha]["safety_stock_at_equal_service"], 3
                ),
            }
            for alpha, cell in by_level.items()
        }
        for lead, by_level in strata.items()
        if lead.startswith("L")
    }


def across_seeds(summaries: dict[str, dict]) -> dict:
    """Median, least and most over the seeds of each number of seed_summary."""
    first = next(iter(summaries.values()))
    return {
        lead: {
            alpha: {
                name: {
                    stat: round(float(how([s[lead][alpha][name] for s in summaries.values()])), 4)
                    for stat, how in (("median", np.median), ("min", np.min), ("max", np.max))
                }
                for name in cell
            }
            for alpha, cell in by_level.items()
        }
        for lead, by_level in first.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["simulator", "weekly", "monthly", "m1", "tourism"])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[0], help="training seeds; the first one's full table is kept"
    )
    parser.add_argument(
        "--validation", type=int, help="the simulator and weekly parts with this many validation origins"
    )
    args = parser.parse_args(argv)
    path = RESULTS / "lead_time.json"
    # A run of some parts replaces those parts and keeps the others' recorded results; each part
    # records its own epochs and peak RSS.
    result: dict = json.loads(path.read_text()) if path.exists() else {"targets": TARGETS, "parts": {}}
    result.pop("epochs", None), result.pop("peak_rss_mb", None)
    parts = {"simulator": simulator_part, "weekly": weekly_part, "monthly": simulator_monthly_part}
    if args.validation:  # recorded beside the default runs, not over them
        parts = {
            f"{part}_validation{args.validation}": partial(parts[part], validation=args.validation)
            for part in args.parts
        }
        args.parts = list(parts)
    for part in args.parts:
        started, entry, wapes = time.perf_counter(), None, {}
        summaries: dict[str, dict] = {name: {} for name in SUMMARIZED}
        for seed in args.seeds:
            run = parts[part](args.epochs, seed) if part in parts else monthly_part(part, args.epochs, seed)
            print_table(f"{part}/{seed}", run["variants"])
            entry = entry or run | {"seed": seed}
            for name in SUMMARIZED:
                summaries[name][str(seed)] = seed_summary(run["variants"], name)
            wapes[str(seed)] = run["wape"]
        entry["seeds"] = summaries["strata"]
        entry["across_seeds"] = across_seeds(summaries["strata"])
        for name in SUMMARIZED[1:]:
            entry[f"across_seeds_{name}"] = across_seeds(summaries[name])
            print_across(f"{part} {name}", entry[f"across_seeds_{name}"])
        entry["wape_by_seed"] = wapes
        entry["seconds"] = round(time.perf_counter() - started, 1)
        entry["epochs"] = args.epochs
        entry["peak_rss_mb_so_far"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        result["parts"][part] = entry
        print_across(part, entry["across_seeds"])
        print(f"{part:9} WAPE of the p50 by seed: {wapes}", flush=True)
        RESULTS.mkdir(exist_ok=True)  # after each part: a part that fails later loses only itself
        path.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def print_across(part: str, summary: dict) -> None:
    for lead, by_level in summary.items():
        cells = [
            f"{alpha}: achieved {c['achieved']['median']:.3f} ({c['achieved']['min']:.3f}-{c['achieved']['max']:.3f}), "
            f"stock/textbook {c['stock_to_textbook_at_equal_service']['median']:.2f} "
            f"({c['stock_to_textbook_at_equal_service']['min']:.2f}-{c['stock_to_textbook_at_equal_service']['max']:.2f})"
            for alpha, c in by_level.items()
        ]
        print(f"{part:9} across seeds {lead:4} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
