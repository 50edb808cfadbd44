from __future__ import annotations

import pytest

from demandops.errors import IllegalTransitionError
from demandops.settings import LifecycleSettings
from lifecycle.states import TRANSITIONS, State, evaluate_guards, require_legal

GOOD_EVIDENCE = {
    "wape": 0.30,
    "seasonal_naive_wape": 0.45,
    "coverage_p10_p90": 0.8,
    "has_nan": 0.0,
    "data_checks_passed": True,
    "dataset_version": "abc",
}


def test_every_edge_of_the_design_is_legal() -> None:
    for current, targets in TRANSITIONS.items():
        for target in targets:
            require_legal(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.TRAINED, State.PRODUCTION),
        (State.PRODUCTION, State.STAGED),
        (State.ARCHIVED, State.PRODUCTION),
        (State.REJECTED, State.VALIDATED),
        (State.FAILED, State.TRAINED),
    ],
)
def test_shortcuts_and_resurrections_are_illegal(current: State, target: State) -> None:
    with pytest.raises(IllegalTransitionError, match=f"{current} -> {target}"):
        require_legal(current, target)


def test_validation_guards_pass_on_good_evidence() -> None:
    results = evaluate_guards(State.TRAINED, State.VALIDATED, GOOD_EVIDENCE, LifecycleSettings(), "pipeline")
    assert all(r.passed for r in results) and len(results) == 4


@pytest.mark.parametrize(
    ("change", "guard"),
    [
        ({"wape": 0.44}, "beats_seasonal_naive"),
        ({"coverage_p10_p90": 0.3}, "coverage_in_band"),
        ({"has_nan": 1.0}, "no_nan"),
        ({"data_checks_passed": False}, "data_checks_passed"),
    ],
)
def test_each_validation_guard_can_refuse(change: dict, guard: str) -> None:
    results = evaluate_guards(State.TRAINED, State.VALIDATED, {**GOOD_EVIDENCE, **change}, LifecycleSettings(), "p")
    assert [r.name for r in results if not r.passed] == [guard]


def test_missing_metrics_refuse_rather_than_pass() -> None:
    results = evaluate_guards(State.TRAINED, State.VALIDATED, {}, LifecycleSettings(), "pipeline")
    assert not any(r.passed for r in results)


def test_only_allow_listed_actors_reach_production() -> None:
    settings = LifecycleSettings(promoters=["ci"])
    assert evaluate_guards(State.STAGED, State.PRODUCTION, {}, settings, "ci")[0].passed
    assert not evaluate_guards(State.STAGED, State.PRODUCTION, {}, settings, "bob")[0].passed


def test_staging_needs_a_bento_and_a_passing_smoke_test() -> None:
    ok = {"bento_tag": "svc:1", "smoke_test_passed": True}
    assert all(r.passed for r in evaluate_guards(State.VALIDATED, State.STAGED, ok, LifecycleSettings(), "p"))
    failing = {"bento_tag": "svc:1", "smoke_test_passed": False}
    assert not all(r.passed for r in evaluate_guards(State.VALIDATED, State.STAGED, failing, LifecycleSettings(), "p"))
