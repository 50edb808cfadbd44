"""Forecast accuracy metrics over arrays shaped (rows, horizon)."""

from __future__ import annotations

import numpy as np


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Weighted absolute percentage error: sum |error| / sum actual."""
    denominator = np.abs(actual).sum()
    if denominator == 0:
        raise ValueError("WAPE is undefined when every actual is zero")
    return float(np.abs(actual - forecast).sum() / denominator)


def pinball(actual: np.ndarray, forecast: np.ndarray, quantile: float) -> float:
    """Mean pinball loss of one quantile forecast."""
    error = actual - forecast
    return float(np.maximum(quantile * error, (quantile - 1) * error).mean())


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside [lower, upper]."""
    return float(((actual >= lower) & (actual <= upper)).mean())


def bias(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Total forecast minus total actual, relative to total actual."""
    return float((forecast.sum() - actual.sum()) / max(actual.sum(), 1e-9))
