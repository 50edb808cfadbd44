"""The loop's decisions from live evidence, as pure functions: retrain, and roll back.

Each returns the reason in words (what went into the run's tags and the audit log) or None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitoring.drift import band


@dataclass(frozen=True)
class LiveRule:
    margin: float  # relative: live WAPE above reference x (1 + margin)
    periods: int  # for this many consecutive scored periods, the latest ones


def _above(
    live: Mapping[str, float | None], reference: Mapping[str, float | None] | float, rule: LiveRule
) -> list[str] | None:
    """The latest `rule.periods` scored periods when every one is above its reference by the margin."""
    scored = sorted(p for p, w in live.items() if w is not None)
    latest = scored[-rule.periods :]
    if len(latest) < rule.periods:
        return None
    for period in latest:
        bar = reference if isinstance(reference, float) else reference.get(period)
        if bar is None or live[period] <= bar * (1 + rule.margin):
            return None
    return latest


def retraining_reason(
    champion: str,
    backtest_wape: float | None,
    live_wape: Mapping[str, float | None],
    drift_psi: Mapping[str, float],
    rule: LiveRule,
    *,
    drift_features: tuple[str, ...] = ("units_sold",),
) -> str | None:
    """Why the champion should be retrained now, or None: its live WAPE above its backtest WAPE by the
    margin over the latest periods, or significant drift (PSI > 0.25) of one of `drift_features`."""
    if backtest_wape is not None:
        latest = _above(live_wape, backtest_wape, rule)
        if latest:
            values = ", ".join(f"{live_wape[p]:.3f}" for p in latest)
            return (
                f"live WAPE of version {champion} ({values} over {latest[0]}..{latest[-1]}) above its backtest WAPE "
                f"{backtest_wape:.3f} by more than {rule.margin:.0%} for {rule.periods} periods"
            )
    drifted = {f: p for f, p in drift_psi.items() if f in drift_features and band(p) == "significant"}
    if drifted:
        detail = ", ".join(f"{f} PSI {p:.3f}" for f, p in drifted.items())
        return f"significant drift from version {champion}'s training window: {detail}"
    return None


def rollback_reason(
    champion: str,
    previous: str,
    champion_wape: Mapping[str, float | None],
    previous_wape: Mapping[str, float | None],
    rule: LiveRule,
) -> str | None:
    """Why the new champion should give way to the previous one, or None: its live WAPE above the previous
    champion's (scored in shadow on the same forecasts) by the margin over the latest periods."""
    latest = _above(champion_wape, previous_wape, rule)
    if not latest:
        return None
    pairs = ", ".join(f"{champion_wape[p]:.3f} vs {previous_wape[p]:.3f}" for p in latest)
    return (
        f"live WAPE of version {champion} above version {previous}'s on the same forecasts by more than "
        f"{rule.margin:.0%} for {rule.periods} periods ({latest[0]}..{latest[-1]}: {pairs})"
    )
