"""How complete a training set is: the null share of every feature, judged against a bound."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from training.features import FeatureSpec


@dataclass(frozen=True)
class NullReport:
    shares: dict[str, float]  # every feature's share of null values
    judged: list[str]  # the features the bound applies to
    bound: float

    @property
    def violations(self) -> dict[str, float]:
        return {name: self.shares[name] for name in self.judged if self.shares[name] > self.bound}


def null_report(frame: pd.DataFrame, spec: FeatureSpec, *, data_columns: set[str], bound: float) -> NullReport:
    """Null shares of the spec's features; price and stock features are judged only when the data has them."""
    shares = {name: float(frame[name].isna().mean()) if len(frame) else 1.0 for name in spec.feature_names}
    return judge_null_shares(shares, spec, data_columns=data_columns, bound=bound)


def judge_null_shares(
    shares: dict[str, float], spec: FeatureSpec, *, data_columns: set[str], bound: float
) -> NullReport:
    """The report of these null shares (one per feature of the spec)."""
    shares = {name: float(share) for name, share in shares.items()}
    absent = set() if "price" in data_columns else {"price", f"price_ratio_{spec.long_window}"}
    absent |= set() if "stock_on_hand" in data_columns else set(spec.stock_features)
    return NullReport(shares, [n for n in spec.feature_names if n not in absent], bound)
