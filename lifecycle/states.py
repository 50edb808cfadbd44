"""The lifecycle state machine and its guards, as pure functions of recorded evidence."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from demandops.errors import IllegalTransitionError
from demandops.settings import LifecycleSettings


class State(StrEnum):
    TRAINING = "Training"
    TRAINED = "Trained"
    FAILED = "Failed"
    VALIDATED = "Validated"
    REJECTED = "Rejected"
    STAGED = "Staged"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.TRAINING: frozenset({State.TRAINED, State.FAILED}),
    State.TRAINED: frozenset({State.VALIDATED, State.REJECTED}),
    State.VALIDATED: frozenset({State.STAGED, State.REJECTED}),
    State.STAGED: frozenset({State.PRODUCTION, State.REJECTED}),
    State.PRODUCTION: frozenset({State.ARCHIVED}),
}
# States a version holds only while a run works on it; one left there was interrupted (see compensation_target).
UNFINISHED: frozenset[State] = frozenset({State.TRAINING, State.TRAINED, State.VALIDATED})
# Registry aliases kept in step with the states that have one.
ALIASES: Mapping[State, str] = {State.STAGED: "staging", State.PRODUCTION: "production"}


def require_legal(current: State, target: State) -> None:
    """Raise IllegalTransitionError unless current -> target is an edge of the machine."""
    allowed = TRANSITIONS.get(current, frozenset())
    if target not in allowed:
        expected = ", ".join(sorted(allowed)) or "none (terminal state)"
        raise IllegalTransitionError(
            f"illegal transition {current} -> {target}; from {current} the allowed targets are: {expected}"
        )


@dataclass(frozen=True)
class GuardResult:
    name: str
    passed: bool
    detail: str


Evidence = Mapping[str, Any]
Guard = Callable[[Evidence, LifecycleSettings, str], list[GuardResult]]


def _number(evidence: Evidence, key: str) -> float:
    value = evidence.get(key)
    return float(value) if isinstance(value, int | float) else math.nan


def validation_guards(evidence: Evidence, settings: LifecycleSettings, actor: str) -> list[GuardResult]:
    """Trained -> Validated: checked data, beats seasonal naive and the best statistical model,
    calibrated bands, no NaN."""
    # With statistical baselines, what is served (see training/candidates.py) is scored on the window starts.
    rows = "window starts" if "window_starts_wape" in evidence else "all origins"
    wape, naive, cov = (_served(evidence, key) for key in ("wape", "seasonal_naive_wape", "coverage_p10_p90"))
    required = (1 - settings.naive_margin) * naive
    low, high = settings.coverage_band
    return [
        GuardResult(
            "data_checks_passed",
            evidence.get("data_checks_passed") is True,
            f"dataset {evidence.get('dataset_version')}: checks passed = {evidence.get('data_checks_passed')}",
        ),
        GuardResult(
            "beats_seasonal_naive",
            wape <= required,
            f"WAPE {wape:.4f} on the {rows} must be <= {required:.4f} "
            f"(naive {naive:.4f} x {1 - settings.naive_margin:.2f})",
        ),
        _statistical_guard(evidence, settings),
        GuardResult("coverage_in_band", low <= cov <= high, f"p10-p90 coverage {cov:.3f} must lie in [{low}, {high}]"),
        GuardResult(
            "no_nan",
            evidence.get("has_nan") == 0 and not math.isnan(wape),
            f"forecast NaN flag = {evidence.get('has_nan')}",
        ),
    ]


def _served(evidence: Evidence, key: str) -> float:
    """The served forecaster's metric on the window starts when the backtest scored it there, else the network's."""
    return _number(evidence, f"window_starts_{key}" if "window_starts_wape" in evidence else key)


def _statistical_guard(evidence: Evidence, settings: LifecycleSettings) -> GuardResult:
    """No worse than the best statistical baseline on the window-start rows (passes when none is configured)."""
    if not settings.statistical_baselines:
        return GuardResult("no_worse_than_statistical", True, "no statistical baseline is configured")
    names = [name for name in settings.statistical_baselines if f"{name}_wape" in evidence]
    if not names:
        expected = list(settings.statistical_baselines)
        return GuardResult("no_worse_than_statistical", False, f"the backtest scored none of {expected}")
    best = min(names, key=lambda name: _number(evidence, f"{name}_wape"))
    model, reference = _number(evidence, "window_starts_wape"), _number(evidence, f"{best}_wape")
    allowed = (1 + settings.statistical_margin) * reference
    return GuardResult(
        "no_worse_than_statistical",
        model <= allowed,
        f"WAPE {model:.4f} on the window starts must be <= {allowed:.4f} "
        f"({best} {reference:.4f} x {1 + settings.statistical_margin:.2f})",
    )


def staging_guards(evidence: Evidence, settings: LifecycleSettings, actor: str) -> list[GuardResult]:
    """Validated -> Staged: a Bento was built for this version, its smoke test passed, and its
    served forecasts equal the offline ones (no train/serve skew)."""
    skew = _number(evidence, "skew_max_difference")
    return [
        GuardResult("bento_built", bool(evidence.get("bento_tag")), f"bento tag {evidence.get('bento_tag')}"),
        GuardResult(
            "smoke_test_passed",
            evidence.get("smoke_test_passed") is True,
            f"smoke test: {evidence.get('smoke_test_detail', 'not run')}",
        ),
        GuardResult(
            "no_train_serve_skew",
            skew <= settings.skew_tolerance,
            f"skew check: {evidence.get('skew_detail', 'not run')}",
        ),
    ]


def production_guards(evidence: Evidence, settings: LifecycleSettings, actor: str) -> list[GuardResult]:
    """Staged -> Production: an allow-listed actor, enough soak time in Staged, and a challenger at
    least as good as the champion on the latest backtest window (within the tolerance)."""
    staged_hours = _number(evidence, "staged_hours")
    return [
        GuardResult(
            "actor_authorized",
            actor in settings.promoters,
            f"actor {actor!r}; allowed: {', '.join(settings.promoters)}",
        ),
        GuardResult(
            "soaked_in_staged",
            staged_hours >= settings.min_soak_hours,
            f"{staged_hours:.2f} h in Staged; at least {settings.min_soak_hours} h required",
        ),
        _champion_guard(evidence, settings),
        _live_guard(evidence, settings),
    ]


def _champion_guard(evidence: Evidence, settings: LifecycleSettings) -> GuardResult:
    champion = evidence.get("champion_version")
    if champion is None:
        return GuardResult("beats_champion", True, "no version is in Production: nothing to compare with")
    compared = evidence.get("compared_champion_version")
    if compared != champion and evidence.get("champion_skipped_version") == champion:
        return GuardResult(
            "beats_champion",
            True,
            f"comparison waived: champion v{champion} could not be scored on this backtest "
            f"({evidence.get('champion_skipped')})",
        )
    if compared != champion:
        return GuardResult(
            "beats_champion",
            False,
            f"the backtest compared with {'no champion' if compared is None else f'version {compared}'}, "
            f"but version {champion} is in Production now; re-run model_evaluation",
        )
    challenger = _number(evidence, "latest_window_wape_vs_champion")
    incumbent = _number(evidence, "champion_latest_window_wape")
    allowed = incumbent * (1 + settings.champion_tolerance)
    return GuardResult(
        "beats_champion",
        challenger <= allowed,
        f"latest-window WAPE {challenger:.4f} must be <= {allowed:.4f} "
        f"(champion v{champion} {incumbent:.4f} x {1 + settings.champion_tolerance:.3f})",
    )


def _live_guard(evidence: Evidence, settings: LifecycleSettings) -> GuardResult:
    """The challenger, scored in shadow on the forecasts the champion served, at least as good as it."""
    name = "beats_champion_live"
    if not settings.live_guard:
        return GuardResult(name, True, "not required (lifecycle.live_guard is off)")
    champion = evidence.get("champion_version")
    if champion is None:
        return GuardResult(name, True, "no version is in Production: nothing to compare with")
    compared = evidence.get("live_compared_champion_version")
    if compared != champion:
        against = "no champion" if compared is None else f"version {compared}"
        return GuardResult(name, False, f"the shadow scoring compared with {against}, but version {champion} is in "
                           "Production; score the challenger in shadow again (demandops loop)")  # fmt: skip
    forecasts = int(evidence.get("live_forecasts", 0))
    if forecasts < settings.live_min_forecasts:
        return GuardResult(
            name, False, f"{forecasts} live forecasts scored; at least {settings.live_min_forecasts} required"
        )
    challenger, incumbent = float(evidence["live_challenger_wape"]), float(evidence["live_champion_wape"])
    allowed = incumbent * (1 + settings.live_tolerance)
    return GuardResult(
        name,
        challenger <= allowed,
        f"shadow WAPE {challenger:.4f} on {forecasts} live forecasts ({evidence.get('live_window')}) must be "
        f"<= {allowed:.4f} (champion v{champion} live {incumbent:.4f} x {1 + settings.live_tolerance:.3f})",
    )


GUARDS: Mapping[tuple[State, State], Guard] = {
    (State.TRAINED, State.VALIDATED): validation_guards,
    (State.VALIDATED, State.STAGED): staging_guards,
    (State.STAGED, State.PRODUCTION): production_guards,
}


def compensation_target(current: State) -> State | None:
    """Where a version goes when a step after a registry write fails: never left half-way.

    A version still Training failed; one already trained was rejected by the failed step.
    Production and the terminal states are left alone (a failed rebuild must not demote it).
    """
    if current == State.TRAINING:
        return State.FAILED
    if current in (State.TRAINED, State.VALIDATED, State.STAGED):
        return State.REJECTED
    return None


def rollback_target(production_history: list[str], champion: str | None) -> str:
    """The version to restore: the last one in Production before the current champion.

    `production_history` lists the versions that entered Production, oldest first.
    """
    if champion is None:
        raise IllegalTransitionError("rollback refused: no version is in Production")
    earlier = [v for v in production_history if v != champion]
    if not earlier:
        raise IllegalTransitionError(f"rollback refused: version {champion} is the only version ever in Production")
    return earlier[-1]


def evaluate_guards(
    current: State, target: State, evidence: Evidence, settings: LifecycleSettings, actor: str
) -> list[GuardResult]:
    """Legality first, then every guard of the edge (an edge without guards passes)."""
    require_legal(current, target)
    guard = GUARDS.get((current, target))
    return guard(evidence, settings, actor) if guard else []
