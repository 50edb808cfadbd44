"""The backtest and validation windows, chosen from the data's lengths unless the user set them.

The cadence defaults (a backtest of 3 x H origins, a validation window of a few seasons' worth)
suit long histories. A catalogue of short series cannot hold them out: 48 months of history
cannot give 3 x 18 months to a backtest, 18 more to the gap before it, and still train. So each
window not set by the user is capped by the origins of a typical series (the median): the
backtest takes at most half of them, in whole windows of H where it can, the validation window
at most a quarter. What was chosen, and why, travels with the cadence into the MLflow run.

The backtest's model never sees its last backtest + H origins. When they are more than a tenth
of a typical series, serving that model would throw away the most recent years of a monthly
catalogue, so the served model is refit on every row up to its own validation window (held out
to calibrate its bands), for as many epochs as the backtest's model found best (training/job.py).
The backtest then follows the same recipe: each of its windows after the first is forecast by a
model refit on the rows before that window, so it scores what is served (a model a window old at
most), not a model years older than its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demandops.contract import SERIES_KEYS
from demandops.settings import Cadence

REFIT_SHARE = 0.1  # held-out share of a typical series above which the served model is refit on every row


@dataclass(frozen=True)
class Windows:
    cadence: Cadence  # the cadence with the chosen windows set
    typical_origins: int  # complete origins (history and labels) of the median series
    reason: str  # how the windows were chosen, for people

    @property
    def backtest_origins(self) -> int:
        return self.cadence.backtest_origins

    @property
    def validation_origins(self) -> int:
        return self.cadence.validation_periods

    @property
    def metadata(self) -> dict[str, int | str | bool]:
        """What was chosen, for the asset's metadata."""
        return {
            "backtest_origins": self.backtest_origins,
            "validation_origins": self.validation_origins,
            "refit_on_every_row": self.refit,
            "backtest_models": 1 + len(self.later_window_holdouts) if self.refit else 1,
            "windows": self.reason,
        }

    @property
    def later_window_holdouts(self) -> dict[int, int]:
        return later_window_holdouts(self.backtest_origins, self.cadence.horizon)

    @property
    def refit(self) -> bool:
        """Whether the served model is refit on every row (see the module docstring)."""
        return self.backtest_origins + self.cadence.horizon > REFIT_SHARE * self.typical_origins


def later_window_holdouts(backtest_origins: int, horizon: int) -> dict[int, int]:
    """For each backtest window after the first, its number (1 the oldest, counted back from the
    latest in whole windows of H, as training/backtest.py counts them) and the origins from its
    start to the end of the backtest: the holdout that leaves its model only the rows before it."""
    count = -(-backtest_origins // horizon)
    return {count - k + 1: k * horizon for k in range(count - 1, 0, -1)}


def _capped_backtest(default: int, horizon: int, typical: int) -> int:
    if default <= typical // 2:
        return default
    windows = (typical // 2) // horizon
    return windows * horizon if windows else max(1, typical // 2)


def fitted_windows(training_set: pd.DataFrame, cadence: Cadence) -> Windows:
    """The cadence with backtest and validation windows that the training set can hold."""
    typical = int(training_set.groupby(list(SERIES_KEYS), sort=False).size().median()) if len(training_set) else 0
    return windows_for(typical, cadence)


def windows_for(typical: int, cadence: Cadence) -> Windows:
    """The cadence with backtest and validation windows that a median series of `typical` origins can hold."""
    chosen = set(cadence.model_fields_set)
    update: dict[str, int] = {}
    if "backtest_periods" not in chosen or cadence.backtest_periods is None:
        update["backtest_periods"] = _capped_backtest(cadence.backtest_origins, cadence.horizon, typical)
    if "validation_periods" not in chosen:
        update["validation_periods"] = max(1, min(cadence.validation_periods, typical // 4))
    fitted = cadence.model_copy(update=update)
    if not update:
        reason = "both set by the user"
    else:
        reason = (
            f"{', '.join(sorted(update))} from the data: the median series has {typical} complete origins "
            f"(backtest {fitted.backtest_origins}, validation {fitted.validation_periods})"
        )
    windows = Windows(fitted, typical, reason)
    refit = "; the served model is refit on every row" if windows.refit else ""
    return Windows(fitted, typical, reason + refit)


def typical_complete_origins(periods: np.ndarray, horizon: int, min_history: int) -> int:
    """Complete origins of the median series, from the periods each series spans (first row to last):
    less the history before its first origin and the `horizon` periods its labels need; what
    training/dataset.entity_rows makes of it. Series without a complete origin are not counted."""
    origins = np.asarray(periods) - (min_history - 1) - horizon
    return int(np.median(origins[origins > 0])) if (origins > 0).any() else 0
