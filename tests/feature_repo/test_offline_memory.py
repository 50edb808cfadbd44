"""Feast's DuckDB offline store is held to the configured memory, and spills under the state folder."""

from __future__ import annotations

from pathlib import Path

import ibis

from demandops.settings import FeastSettings
from feature_repo.store import open_store
from tests.conftest import make_settings


def test_the_offline_store_runs_on_a_duckdb_held_to_the_configured_memory(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, feast=FeastSettings(offline_memory_gb=1.5))
    open_store(settings)
    [(limit, spill)] = (
        ibis.get_backend()
        .raw_sql("select current_setting('memory_limit'), current_setting('temp_directory')")
        .fetchall()
    )
    assert limit == "1.3 GiB" and Path(spill) == settings.state / "duckdb_spill"  # DuckDB counts in GiB
