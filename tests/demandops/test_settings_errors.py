"""A bad setting is one line naming the variable, the value and what is allowed; never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from demandops.errors import SettingsError
from demandops.settings import FEAST_METRICS_VARIABLES, Settings, get_settings

DEMANDOPS = str(Path(sys.executable).with_name("demandops"))


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch):
    get_settings.cache_clear()
    yield monkeypatch.setenv
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("DEMANDOPS_LIFECYCLE__NAIVE_MARGIN", "-0.5", "=-0.5: Input should be greater than or equal to 0 (allowed"),
        ("DEMANDOPS_CADENCES__M__HORIZON", "0", "=0: Input should be greater than or equal to 1 (allowed: >= 1 and"),
        ("DEMANDOPS_CADENCES__D__LAGS", "[0, 7]", ", item 0=0: Input should be greater than or equal to 1"),
        ("DEMANDOPS_GATE__ROW_COUNT_BAND", "[1.5, 0.6]", ": a band is (low, high): 1.5 is above 0.6"),
        ("DEMANDOPS_SERVING__MAX_BATCH_SIZE", "lots", "=lots: Input should be a valid integer"),
        ("DEMANDOPS_PROFILE", "prod", "=prod: Input should be 'local' or 'production'"),
    ],
)
def test_a_bad_setting_names_its_variable_and_what_is_allowed(environment, variable: str, value: str, named: str):
    environment(variable, value)
    with pytest.raises(SettingsError) as invalid:
        get_settings()
    assert f"{variable}{named}" in str(invalid.value)


def test_the_command_prints_one_line_per_bad_setting_and_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "DEMANDOPS_LIFECYCLE__NAIVE_MARGIN": "-1", "DEMANDOPS_GATE__MAX_UNITS": "0"}
    done = subprocess.run(
        [DEMANDOPS, "lifecycle", "status"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "demandops: invalid settings:",
        "  DEMANDOPS_GATE__MAX_UNITS=0: Input should be greater than 0 (allowed: > 0; Largest units_sold of one row "
        "(any series, any period); above is garbage.)",
        "  DEMANDOPS_LIFECYCLE__NAIVE_MARGIN=-1: Input should be greater than or equal to 0 (allowed: >= 0 and < 1; "
        "Required relative backtest WAPE gain over seasonal naive.)",
    ]


def test_a_child_rebuilds_the_settings_with_the_same_fields_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A default is not passed to a child as if the user had chosen it: the windows of the backtest and
    validation are derived from the data only where the user left them unset (training/windows.py)."""
    monkeypatch.setenv("DEMANDOPS_CADENCES__W__HORIZON", "6")
    parent = Settings(project_dir=tmp_path, preset="small")
    for name in [n for n in os.environ if n.startswith("DEMANDOPS_")]:
        monkeypatch.delenv(name)  # the child sees only what child_env passes
    for name, value in parent.child_env().items():
        if name.startswith("DEMANDOPS_"):
            monkeypatch.setenv(name, value)
    child = Settings()
    placed = {"project_dir", "state_dir", "data_dir"}  # passed as paths, resolved
    assert child.model_dump(exclude=placed) == parent.model_dump(exclude=placed)
    assert (child.state, child.data) == (parent.state, parent.data)
    assert child.cadences.D.model_fields_set == parent.cadences.D.model_fields_set == set()
    assert child.cadences.W.model_fields_set == {"horizon"} and child.cadences.W.horizon == 6
    assert child.serving.model_fields_set == set()


def test_a_child_is_not_handed_the_metrics_folder_feast_made_for_this_process(tmp_path: Path) -> None:
    import feast  # noqa: F401  (its import points the Prometheus variables at a folder of this process)

    assert Path(os.environ["PROMETHEUS_MULTIPROCESS_DIR"]).name.startswith("feast_metrics_")
    env = Settings(project_dir=tmp_path).child_env()
    assert not [name for name in FEAST_METRICS_VARIABLES if name in env]
