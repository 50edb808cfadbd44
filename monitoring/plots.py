"""The live-accuracy plot of the Dagster UI: WAPE per scored period for each served version, against
the WAPE its backtest promised."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to files
import pandas as pd
from matplotlib import pyplot as plt


def live_versus_backtest_plot(per_period: pd.DataFrame, backtest_wape: dict[str, float]) -> bytes:
    """Lines: live WAPE per period and version (monitoring/live_summary.per_period_wape); dashed, in the
    same colour: the version's backtest WAPE. PNG bytes."""
    figure, axis = plt.subplots(figsize=(8, 3.2))
    for version in per_period.columns:
        live = per_period[version].dropna()
        (line,) = axis.plot(live.index, live.to_numpy(), marker="o", markersize=3, label=f"v{version} live")
        if version in backtest_wape:
            axis.axhline(backtest_wape[version], linestyle="--", color=line.get_color(), label=f"v{version} backtest")
    axis.set_ylabel("WAPE")
    axis.set_xlabel("target period")
    axis.set_title("Live accuracy of served forecasts against the backtest")
    if len(per_period.columns):
        axis.legend(fontsize="small", loc="best")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
