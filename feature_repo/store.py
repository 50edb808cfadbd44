"""Open the Feast store of a profile, with a feature_store.yaml rendered from the settings."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import yaml
from feast import FeatureStore, RepoConfig

from demandops.settings import Settings
from feature_repo.definitions import SERIES_VIEWS, STATIC_VIEWS
from feature_repo.redis_store import STORE_TYPE as REDIS_STORE_TYPE
from training.static_features import STATIC_TIMESTAMP

FEAST_PROJECT = "demandops"


def store_config(settings: Settings) -> dict:
    """The feature_store.yaml content: profiles differ only in their stores."""
    feast_dir = settings.feast_dir
    if settings.profile == "production":
        online = {"type": REDIS_STORE_TYPE, "connection_string": settings.production.redis_url}
    else:
        online = {"type": "sqlite", "path": str(feast_dir / "online_store.db")}
    return {
        "project": FEAST_PROJECT,
        "provider": "local",
        "registry": str(feast_dir / "registry.db"),
        "online_store": online,
        # DuckDB does a real as-of join: the file store (dask) ran out of 24 GB on the default data.
        "offline_store": {"type": "duckdb"},
        "entity_key_serialization_version": 3,
    }


def write_store_yaml(settings: Settings, directory: Path) -> Path:
    """Write feature_store.yaml into directory (the state folder, or a Bento build context)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "feature_store.yaml"
    path.write_text(yaml.safe_dump(store_config(settings), sort_keys=False))
    return path


def materialize_span(store: FeatureStore, start: datetime, end: datetime, *, series: bool = True) -> None:
    """Per-period views from start to end (inclusive) into the online store; static views in full (they are small)."""
    materialize_spans(store, [(start, end)], series=series)


def materialize_spans(store: FeatureStore, spans: list[tuple[datetime, datetime]], *, series: bool = True) -> None:
    """Per-period views span by span, oldest first, then the static views up to the last span's end.

    Feast's offline store ranks every row of a span to find each series' latest (DuckDB holds the
    whole span to do it: 14 GB for two years of 25,000 series). Span by span, memory follows the
    span; a later span overwrites what an earlier one wrote for the series it holds, so the online
    store ends with each series' latest row, as one span would leave it.
    """
    for start, end in sorted(spans) if series else []:
        store.materialize(start_date=start, end_date=end + timedelta(seconds=1), feature_views=SERIES_VIEWS)
    store.materialize(
        start_date=STATIC_TIMESTAMP.to_pydatetime(),
        end_date=max(end for _start, end in spans) + timedelta(seconds=1),
        feature_views=[view for view, _features in STATIC_VIEWS.values()],
    )


def open_store(settings: Settings) -> FeatureStore:
    """The profile's FeatureStore, its yaml refreshed from the settings, its offline joins held to
    the configured memory."""
    write_store_yaml(settings, settings.feast_dir)
    bound_offline_memory(settings.feast.offline_memory_gb, settings.state / "duckdb_spill")
    return FeatureStore(repo_path=str(settings.feast_dir))


def bound_offline_memory(memory_gb: float, spill_dir: Path) -> None:
    """Feast's DuckDB offline store runs on ibis's default backend, one DuckDB for the process: give it
    a memory limit and a folder to spill to beyond it (DuckDB would otherwise take 80% of the machine)."""
    import ibis  # Feast's own dependency for its DuckDB store

    spill_dir.mkdir(parents=True, exist_ok=True)
    wanted = {"memory_limit": f"{memory_gb}GB", "temp_directory": str(spill_dir)}
    if _OFFLINE_BACKEND.get("config") != wanted:
        ibis.set_backend(ibis.duckdb.connect(**wanted))
        _OFFLINE_BACKEND["config"] = wanted


# The one DuckDB configured for this process (ibis keeps one default backend per process).
_OFFLINE_BACKEND: dict[str, dict] = {}


def open_store_failing_fast(directory: Path, *, timeout_s: float) -> FeatureStore:
    """The store configured in directory/feature_store.yaml, its Redis client failing within timeout_s, unretried.

    For readers with a deadline (the service): a read that cannot be answered in time is better
    reported at once than retried. SQLite has no network to wait on; its config is left as it is.
    """
    config = yaml.safe_load((directory / "feature_store.yaml").read_text())
    if config["online_store"]["type"] == REDIS_STORE_TYPE:
        config["online_store"].update(connect_timeout_s=timeout_s, socket_timeout_s=timeout_s, retries=0)
    return FeatureStore(repo_path=str(directory), config=RepoConfig(repo_path=directory, **config))
