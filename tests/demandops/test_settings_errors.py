"""A bad setting is one line naming the variable, the value and what is allowed; never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from demandops.errors import SettingsError
from demandops.settings import get_settings

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
