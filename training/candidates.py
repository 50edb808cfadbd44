"""The forecaster the chain serves, chosen by the backtest per series group.

Candidates are the network, each statistical model, and the even blend of the network with each
statistical model. They are scored on the window-start rows (where the statistical models were
fitted). The best on all rows is the default (the network, unless another candidate is strictly
better); a mover class is served by its own best candidate only where that is clearly better on
its rows (GROUP_SWITCH_MARGIN). A blend or a statistical model takes
its median from the statistical forecast and keeps the network's band widths around it (the
network's quantiles are calibrated; the statistical models' intervals are not part of the
comparison), so the served answer keeps its shape: p10 <= p50 <= p90 for each period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.metrics import wape
from training.statistical import statistical_paths
from training.statistical_engines import IN_PROCESS, StatisticalEngine

NETWORK = "network"
BLEND_SEPARATOR = "+"
# A group leaves the choice made on all rows only for a candidate this much better on its own rows:
# on M1's one backtest window, the launches' own best was 0.5% better in one half of the series and
# 12% worse in the other. Small groups' differences are mostly noise.
GROUP_SWITCH_MARGIN = 0.02


@dataclass(frozen=True)
class Candidate:
    """A network weight in [0, 1] and the statistical model supplying the rest of the median."""

    name: str
    network_weight: float
    statistical: str | None

    @classmethod
    def parse(cls, name: str) -> Candidate:
        if name == NETWORK:
            return cls(name, 1.0, None)
        if name.startswith(NETWORK + BLEND_SEPARATOR):
            return cls(name, 0.5, name.split(BLEND_SEPARATOR, 1)[1])
        return cls(name, 0.0, name)


def candidate_names(statistical: tuple[str, ...]) -> list[str]:
    return [NETWORK, *statistical, *(f"{NETWORK}{BLEND_SEPARATOR}{name}" for name in statistical)]


def combine(network: np.ndarray, statistical: np.ndarray, weight: np.ndarray | float) -> np.ndarray:
    """(rows, H, 3) quantiles: the blended median with the network's band widths around it, never negative."""
    weight = np.asarray(weight, dtype="float64")
    weight = weight[:, None] if weight.ndim == 1 else weight
    usable = np.isfinite(statistical)
    median = np.where(usable, weight * network[..., 1] + (1 - weight) * np.nan_to_num(statistical), network[..., 1])
    shift = median - network[..., 1]
    return np.clip(network + shift[..., None], 0.0, None)


def candidate_forecast(name: str, network: np.ndarray, statistical: dict[str, np.ndarray]) -> np.ndarray:
    candidate = Candidate.parse(name)
    if candidate.statistical is None:
        return network
    return combine(network, statistical[candidate.statistical], candidate.network_weight)


def choose_per_group(
    groups: np.ndarray, actual: np.ndarray, network: np.ndarray, statistical: dict[str, np.ndarray]
) -> dict[str, str]:
    """Per group, the candidate to serve: the best on all rows (the network unless another is strictly
    better), or the group's own best where it beats that by more than GROUP_SWITCH_MARGIN."""
    overall = _best_candidate(actual, network, statistical, incumbent=NETWORK, margin=0.0)
    choice = {}
    for group in sorted(set(groups)):
        rows = groups == group
        own = {k: v[rows] for k, v in statistical.items()}
        choice[str(group)] = _best_candidate(actual[rows], network[rows], own, overall, GROUP_SWITCH_MARGIN)
    return choice


def _best_candidate(
    actual: np.ndarray, network: np.ndarray, statistical: dict[str, np.ndarray], incumbent: str, margin: float
) -> str:
    """The lowest-WAPE candidate if it beats `incumbent` by more than `margin`, else `incumbent`
    (also when nothing was sold, so WAPE says nothing)."""
    if actual.sum() <= 0:
        return incumbent
    scores = {
        name: wape(actual, candidate_forecast(name, network, statistical)[..., 1])
        for name in candidate_names(tuple(statistical))
    }
    best = min(scores, key=scores.get)
    return best if scores[best] < (1 - margin) * scores[incumbent] else incumbent


def served_forecast(
    groups: np.ndarray, choice: dict[str, str], network: np.ndarray, statistical: dict[str, np.ndarray]
) -> np.ndarray:
    """What the chosen candidates forecast for rows of the given groups."""
    served = network.copy()
    for group, name in choice.items():
        rows = groups == group
        served[rows] = candidate_forecast(name, network[rows], {k: v[rows] for k, v in statistical.items()})
    return served


def statistical_plan(series_groups: pd.DataFrame, choice: dict[str, str], forecasts: pd.DataFrame) -> pd.DataFrame:
    """Per series served by a blend or a statistical model: its network weight and statistical median by date.

    `series_groups` has store_id, sku_id, group; `forecasts` store_id, sku_id, date and one column
    per statistical model. Series served by the network alone have no row.
    """
    chosen = series_groups.assign(candidate=series_groups["group"].astype(str).map(choice).fillna(NETWORK))
    chosen = chosen[chosen["candidate"] != NETWORK]
    if chosen.empty:
        return pd.DataFrame(columns=["store_id", "sku_id", "date", "network_weight", "statistical_p50"])
    parsed = chosen["candidate"].map(Candidate.parse)
    chosen = chosen.assign(
        network_weight=[c.network_weight for c in parsed], statistical=[c.statistical for c in parsed]
    )
    joined = chosen.merge(forecasts, on=["store_id", "sku_id"], how="inner")
    values = joined.to_dict("list")
    joined["statistical_p50"] = [values[model][i] for i, model in enumerate(joined["statistical"])]
    return joined[["store_id", "sku_id", "date", "network_weight", "statistical_p50"]].reset_index(drop=True)


def plan_for_serving(
    choice: dict[str, str],
    rows: pd.DataFrame,
    sales: pd.DataFrame,
    *,
    frequency: str,
    horizon: int,
    period: int,
    on: StatisticalEngine = IN_PROCESS,
) -> pd.DataFrame:
    """The statistical part of what is served, fitted on every period of `sales`: for each series of a
    group served by a blend or a statistical model, its network weight and statistical median for the
    next 2 x H periods (so a model serving a while after its training still finds them). Empty when
    the network serves every group."""
    needed = sorted({c.statistical for c in map(Candidate.parse, choice.values()) if c.statistical})
    series = rows.drop_duplicates(["store_id", "sku_id"])[["store_id", "sku_id", "mover"]].rename(
        columns={"mover": "group"}
    )
    served_otherwise = series[series["group"].astype(str).map(choice).fillna(NETWORK) != NETWORK]
    if not needed or served_otherwise.empty:
        return statistical_plan(series.iloc[0:0], {}, pd.DataFrame())
    paths = statistical_paths(
        sales, served_otherwise, frequency=frequency, periods=2 * horizon, period=period, names=tuple(needed), on=on
    )
    return statistical_plan(served_otherwise, choice, paths)
