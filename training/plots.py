"""Diagnostic plots of a backtest, as PNG bytes: forecast versus actual, residuals, calibration."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to files
import numpy as np
from matplotlib import pyplot as plt

from training.backtest import QUANTILE_LEVELS
from training.evaluate import Evaluation

HISTOGRAM_VALUES = 1_000_000


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def sample_series(evaluation: Evaluation, per_class: int = 2) -> list[tuple[str, str]]:
    """The busiest series of each mover class: the ones a planner looks at first."""
    rows = evaluation.rows.assign(volume=evaluation.actual.sum(axis=1))
    busiest = rows.groupby(["mover", "store_id", "sku_id"])["volume"].sum().reset_index()
    picks = busiest.sort_values("volume", ascending=False).groupby("mover").head(per_class)
    return list(zip(picks["store_id"], picks["sku_id"], strict=True))


def forecast_plot(evaluation: Evaluation, forecaster: str = "model") -> bytes:
    """For sample series: the forecast from the first origin of the latest window, with its p10-p90 band."""
    series = sample_series(evaluation)
    rows = evaluation.rows
    latest = rows["window"].max()
    figure, axes = plt.subplots(len(series), 1, figsize=(8, 2.4 * len(series)), squeeze=False)
    for axis, (store, sku) in zip(axes[:, 0], series, strict=True):
        mine = rows[(rows["store_id"] == store) & (rows["sku_id"] == sku) & (rows["window"] == latest)]
        row = mine["event_timestamp"].idxmin()
        forecast = evaluation.forecasts[forecaster][row]
        steps = np.arange(1, forecast.shape[0] + 1)
        axis.fill_between(steps, forecast[:, 0], forecast[:, 2], alpha=0.3, label="p10-p90")
        axis.plot(steps, forecast[:, 1], label="p50")
        axis.plot(steps, evaluation.actual[row], "k.", label="actual")
        origin = rows.loc[row, "event_timestamp"].date()
        axis.set_title(f"{store} / {sku} ({rows.loc[row, 'mover']}), origin {origin}", fontsize=9)
        axis.set_xlabel("periods ahead")
    axes[0, 0].legend(fontsize=8)
    return _png(figure)


def residual_plot(evaluation: Evaluation, forecaster: str = "model") -> bytes:
    """Median residuals (actual - p50): their distribution, and their mean and spread by step."""
    residual = evaluation.actual - evaluation.forecasts[forecaster][..., 1]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    # The histogram of an even sample of at most HISTOGRAM_VALUES: the whole, copied to clip and sort
    # it, would cost 0.4 GB at 25,000 series for a picture 60 bins wide.
    sample = residual.ravel()[:: max(1, residual.size // HISTOGRAM_VALUES)]
    left.hist(np.clip(sample, *np.percentile(sample, [1, 99])), bins=60)
    left.set_title("actual - p50 (1st-99th percentile)", fontsize=9)
    steps = np.arange(1, residual.shape[1] + 1)
    right.plot(steps, residual.mean(axis=0), label="mean (bias)")
    right.plot(steps, np.abs(residual, out=residual).mean(axis=0), label="mean absolute")
    right.set_xlabel("periods ahead")
    right.legend(fontsize=8)
    return _png(figure)


def calibration_plot(evaluation: Evaluation, forecaster: str = "model") -> bytes:
    """Share of actuals at or below each predicted quantile, by step: on the dotted line when calibrated."""
    forecast = evaluation.forecasts[forecaster]
    figure, axis = plt.subplots(figsize=(6, 3.2))
    steps = np.arange(1, forecast.shape[1] + 1)
    for i, level in enumerate(QUANTILE_LEVELS):
        observed = (evaluation.actual <= forecast[..., i]).mean(axis=0)
        line = axis.plot(steps, observed, marker="o", label=f"p{round(level * 100)}")
        axis.axhline(level, linestyle=":", color=line[0].get_color())
    axis.set_ylim(0, 1)
    axis.set_xlabel("periods ahead")
    axis.set_ylabel("share of actuals <= quantile")
    axis.legend(fontsize=8)
    return _png(figure)


def lead_time_plot(evaluation: Evaluation) -> bytes:
    """Achieved cycle service level against the target, per lead time, for the calibrated lead-time
    quantiles (solid), the same refitted at each origin as served (dash-dot; training/recalibration.py)
    and the textbook z·σ·√L (dashed): on the diagonal when the promise is kept."""
    levels = evaluation.lead_time_levels
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot([levels[0], levels[-1]], [levels[0], levels[-1]], linestyle=":", color="grey")
    names = {"lead_time": "calibrated", "recalibrated": "refitted live", "textbook": "textbook"}
    for method, style in (("lead_time", "-"), ("recalibrated", "-."), ("textbook", "--")):
        for n, (lead, achieved) in enumerate(evaluation.lead_time.get(method, {}).items()):
            label = f"{names[method]}, L={lead}"
            axis.plot(levels, achieved, linestyle=style, marker="o", color=f"C{n}", label=label)
    axis.set_xlabel("target service level")
    axis.set_ylabel("achieved (share of origins, demand over L <= reorder point)")
    axis.legend(fontsize=7)
    return _png(figure)
