"""The loop's decisions from live evidence, as pure functions: retrain (on accuracy, drift or the service
the reorder points kept), and roll back.

Each returns the reason in words (what went into the run's tags and the audit log) or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from demandops.settings import MonitoringSettings
from monitoring.drift import band


@dataclass(frozen=True)
class LiveRule:
    margin: float  # relative: live WAPE above reference x (1 + margin)
    periods: int  # for this many consecutive scored periods, the latest ones


@dataclass(frozen=True)
class ServiceRule:
    shortfall: float  # achieved cycle service below the promised level by more than this (absolute)
    decisions: int  # scored decisions of that lead time and level at least, for the share to mean something


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


def service_reason(champion: str, service: Sequence[Mapping], rule: ServiceRule) -> str | None:
    """Why the champion should be retrained now, or None: the reorder points it served (live summary's
    "service": lead time, level, decisions scored, share achieved) kept their promise less often than
    promised by more than the rule's shortfall, on enough decisions. Retraining recalibrates the lead-time
    quantiles on the latest window (training/lead_time.py)."""
    short = [
        row
        for row in service
        if row["decisions"] >= rule.decisions and row["service_level"] - row["achieved"] > rule.shortfall
    ]
    if not short:
        return None
    detail = "; ".join(
        f"L={row['lead_time']} at {row['service_level']:g}: {row['achieved']:.3f} over {row['decisions']} decisions"
        for row in short
    )
    return (
        f"live cycle service of version {champion}'s reorder points below the promised level by more than "
        f"{rule.shortfall:g} ({detail})"
    )


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


def champion_retraining_reason(
    champion: str, backtest_wape: float | None, summary: Mapping, drift: Mapping, monitoring: MonitoringSettings
) -> str | None:
    """The loop's and the retraining sensor's one question, from the live summary (monitoring/live_summary.py)
    and the drift summary: live WAPE, drift, then the service its reorder points kept."""
    return retraining_reason(
        champion,
        backtest_wape,
        summary.get("versions", {}).get(champion, {}).get("wape_per_period", {}),
        drift.get("psi", {}),
        LiveRule(monitoring.retrain_margin, monitoring.retrain_periods),
        drift_features=monitoring.retrain_on_drift,
    ) or service_reason(
        champion,
        summary.get("service", {}).get(champion, []),
        ServiceRule(monitoring.retrain_service_shortfall, monitoring.retrain_service_decisions),
    )
