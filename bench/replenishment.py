"""Replenishment decisions side by side: demandops' lead-time quantiles against the textbook formula.

    .venv/bin/python -m bench.replenishment [--parts simulator m1 tourism] [--epochs 12]

Two measurements, each part training the network once (as bench/lead_time.py does):

1. Stock at equal service (every part). On the test rows, the calibrated layer's reorder points at
   α = 0.95 achieve some cycle service level; the textbook formula C_L + z·σ·√L (σ each series'
   one-step error deviation on the validation window) is swept over z until it achieves at least
   as much, and the two mean safety stocks are compared there. And the other way round: the service
   the textbook achieves with the same mean stock as the layer.
2. Replay (simulator only, whose backtest has every day as an origin). A periodic-review
   order-up-to policy, reviewed every day (R = 1), each order arriving L days later, is run over
   the backtest window on the recorded sales, once with demandops' order-up-to levels (the
   0.95-quantile of demand over L + R) and once with the textbook's at z = Φ⁻¹(0.95): units of lost
   sales, fill rate, share of days with a stockout and mean stock on hand, after a burn-in of L + R
   days. Each series starts with its first order-up-to level on hand and nothing on order.

Results in bench/results/replenishment.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from bench.lead_time import KEYS, _sigma, _train, _validation
from bench.network import _origin_rows
from bench.real import _matrix
from bench.train import default_training_set
from training.dataset import label_columns, split_by_origin
from training.lead_time import achieved_service, cumulative_median, safety_stock, textbook_quantiles, whole_units
from training.replenishment import quantile_at

RESULTS = Path(__file__).parent / "results"
ALPHA = 0.95
Z_GRID = np.round(np.arange(0.0, 4.0001, 0.01), 2)


def equal_service(forecast, actual, ours: np.ndarray, sigma: np.ndarray, levels: list[float], leads) -> dict:
    """Per lead time, at α: our achieved level and mean safety stock; the textbook's stock at the
    smallest z achieving at least our level; and the textbook's level at our stock."""
    column = levels.index(ALPHA)
    our_service, our_stock = achieved_service(actual, ours)[:, column], safety_stock(forecast, ours)[:, column]
    sweep = textbook_quantiles(forecast, sigma, norm.cdf(Z_GRID))
    book_service, book_stock = achieved_service(actual, sweep), safety_stock(forecast, sweep)
    out = {}
    for lead in leads:
        row = lead - 1
        reaching = np.nonzero(book_service[row] >= our_service[row])[0]
        # None where no z up to 4 reaches our level (written as null).
        z = float(Z_GRID[reaching[0]]) if len(reaching) else None
        stock_there = round(float(book_stock[row, reaching[0]]), 2) if len(reaching) else None
        # The textbook's service at our stock: interpolated on its (non-decreasing) stock curve.
        at_our_stock = float(np.interp(our_stock[row], book_stock[row], book_service[row]))
        out[f"L{lead}"] = {
            "demandops_achieved": round(float(our_service[row]), 4),
            "demandops_safety_stock": round(float(our_stock[row]), 2),
            "textbook_z_for_same_service": z,
            "textbook_safety_stock_for_same_service": stock_there,
            "stock_ratio_demandops_to_textbook": round(float(our_stock[row]) / stock_there, 4) if stock_there else None,
            "textbook_achieved_at_demandops_stock": round(at_our_stock, 4),
        }
    return out


def replay(order_up_to: np.ndarray, demand: np.ndarray, lead: int, review: int = 1) -> dict:
    """Run the policy over days 0..T-1 of (series, T) arrays; metrics after the burn-in of L + R days."""
    series, days = demand.shape
    on_hand = order_up_to[:, 0].astype("float64").copy()
    arriving = np.zeros((series, days + lead + 1))
    lost = np.zeros_like(demand, dtype="float64")
    ending = np.zeros_like(demand, dtype="float64")
    for t in range(days):
        if t % review == 0:  # at the end of day t: raise the position to the level, delivered at the end of t + L
            position = on_hand + arriving[:, t + 1 :].sum(axis=1)
            arriving[:, t + lead] += np.maximum(order_up_to[:, t] - position, 0.0)
        sold = np.minimum(on_hand, demand[:, t])  # the next day's demand
        lost[:, t] = demand[:, t] - sold
        on_hand = on_hand - sold + arriving[:, t + 1]
        ending[:, t] = on_hand
    kept = slice(lead + review, days)
    wanted = float(demand[:, kept].sum())
    return {
        "lost_units": round(float(lost[:, kept].sum()), 1),
        "fill_rate": round(1.0 - float(lost[:, kept].sum()) / wanted, 4),
        "stockout_day_share": round(float((lost[:, kept] > 0).mean()), 4),
        "mean_stock_on_hand": round(float(ending[:, kept].mean()), 3),
        "demand_units": round(wanted, 1),
    }


def _by_day(frame: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """(series, days) from one value per backtest row, rows ordered by series then origin."""
    days = frame["event_timestamp"].nunique()
    return values.reshape(-1, days)


def simulator_part(epochs: int, leads: tuple[int, ...]) -> dict:
    training_set, _data, cadence, spec = default_training_set()
    horizon = cadence.horizon
    fit, backtest = split_by_origin(training_set, horizon, cadence.backtest_origins)
    backtest = backtest.sort_values([*KEYS, "event_timestamp"]).reset_index(drop=True)
    per_series = backtest.groupby(KEYS).size()
    assert per_series.nunique() == 1, "every series has every backtest origin"
    bundle = _train(fit, horizon, cadence.validation_periods, epochs, spec)
    val = _validation(fit, horizon, cadence.validation_periods)
    sigma = _sigma(val, bundle.predict(val), backtest)
    forecast, ours = bundle.lead_time_quantiles(backtest)
    actual = backtest[label_columns(horizon)].to_numpy("float64")
    levels = list(bundle.meta.lead_time["levels"])
    result = {
        "test_rows": len(backtest),
        "series": len(per_series),
        "days": int(per_series.iloc[0]),
        "equal_service": equal_service(forecast, actual, ours, sigma, levels, (1, 7, 14)),
        "replay": {},
    }
    demand = _by_day(backtest, actual[:, 0])
    for lead in leads:
        window = lead + 1  # L + R with R = 1
        level = whole_units(quantile_at(ours[:, window - 1], levels, np.full(len(ours), ALPHA)))
        book = textbook_quantiles(forecast, sigma, [ALPHA])[:, window - 1, 0]
        ours_replayed = replay(_by_day(backtest, level), demand, lead)
        result["replay"][f"L{lead}"] = {
            "demandops": ours_replayed,
            "textbook": replay(_by_day(backtest, whole_units(book)), demand, lead),
            **textbook_matching(backtest, forecast, sigma, demand, lead, ours_replayed),
            "mean_expected_demand_over_L+R": round(float(cumulative_median(forecast)[:, window - 1].mean()), 2),
        }
    return result


def textbook_matching(backtest, forecast, sigma, demand, lead: int, ours: dict) -> dict:
    """The textbook's replay with z swept (0 to 4, steps of 0.05): at the smallest z holding at least
    our mean stock on hand (its lost sales there), and at the smallest z reaching our fill rate (its
    stock there). Both stock and fill rate grow with z, so the first z reaching each is the match."""
    grid = Z_GRID[::5]
    levels = textbook_quantiles(forecast, sigma, norm.cdf(grid))[:, lead, :]  # L + R - 1 with R = 1
    runs = [replay(_by_day(backtest, whole_units(levels[:, k])), demand, lead) for k in range(len(grid))]
    out = {}
    for name, key in (("textbook_at_equal_stock", "mean_stock_on_hand"), ("textbook_at_equal_fill_rate", "fill_rate")):
        reaching = [k for k, run in enumerate(runs) if run[key] >= ours[key]]
        out[name] = {"z": float(grid[reaching[0]]), **runs[reaching[0]]} if reaching else None
    return out


def monthly_part(name: str, epochs: int) -> dict:
    data, cadence, spec, rows, last = _origin_rows(name)
    horizon = data.horizon
    bundle = _train(rows, horizon, cadence.validation_periods, epochs, spec, seasonal_period=cadence.seasonal_period)
    val = _validation(rows, horizon, cadence.validation_periods)
    sigma = _sigma(val, bundle.predict(val), last)
    forecast, ours = bundle.lead_time_quantiles(last)
    actual = _matrix(
        data.holdout.rename(columns={"units_sold": "p50"}), list(last["sku_id"]), sorted(data.holdout["date"].unique())
    )
    levels = list(bundle.meta.lead_time["levels"])
    leads = (1, horizon // 2, horizon)
    return {"test_rows": len(last), "equal_service": equal_service(forecast, actual, ours, sigma, levels, leads)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["simulator", "m1", "tourism"])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--leads", nargs="+", type=int, default=[2, 7], help="Replay lead times (days).")
    args = parser.parse_args(argv)
    path = RESULTS / "replenishment.json"
    # A run of some parts replaces those parts and keeps the others'; each part records its epochs and peak RSS.
    result: dict = json.loads(path.read_text()) if path.exists() else {"alpha": ALPHA, "parts": {}}
    for shared in ("epochs", "peak_rss_mb"):
        for entry in result["parts"].values():
            entry.setdefault(shared, result.get(shared))
        result.pop(shared, None)
    for part in args.parts:
        started = time.perf_counter()
        entry = (
            simulator_part(args.epochs, tuple(args.leads)) if part == "simulator" else monthly_part(part, args.epochs)
        )
        entry["seconds"] = round(time.perf_counter() - started, 1)
        entry["epochs"] = args.epochs
        entry["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        result["parts"][part] = entry
        print(part, json.dumps(entry, indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
