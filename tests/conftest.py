"""Shared fixtures: tiny real data and per-test state folders (no mocks of our own code)."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg2
import pytest
import redis
from feast import FeatureStore

from demandops.frequency import longest_span
from demandops.settings import DailyCadence, ProductionServices, Settings
from feature_repo.definitions import feature_objects
from feature_repo.sources import write_period_features, write_static_features
from feature_repo.store import open_store
from salesdata.datasets import generate
from salesdata.simulator import PRESETS, SimulatedData, simulate
from training.dataset import entity_rows
from training.features import FeatureSpec, compute_features
from training.static_features import sku_attributes, store_attributes, with_static

# Daily data as the default settings describe it (the chain derives the same from the settings).
DAILY = FeatureSpec.for_cadence("D", DailyCadence())
DAILY_TTL = longest_span(DailyCadence().feature_ttl_periods, "D")


@pytest.fixture(scope="session")
def small_data() -> SimulatedData:
    return simulate(PRESETS["small"])


@pytest.fixture(scope="session")
def small_sales(small_data: SimulatedData) -> pd.DataFrame:
    return small_data.sales


@pytest.fixture(scope="session")
def small_training_set(small_data: SimulatedData) -> pd.DataFrame:
    """Features joined to labels without Feast (Feast's own join is tested in feature_repo/)."""
    features = compute_features(small_data.sales, DAILY)
    rows = entity_rows(small_data.sales, 7, DAILY).merge(features, on=["store_id", "sku_id", "event_timestamp"])
    return with_static(rows, small_data.stores, small_data.skus)


def apply_features(settings: Settings, data: SimulatedData) -> tuple[FeatureStore, pd.DataFrame]:
    """The small data's features written as the Feast sources and the registry applied (no materialization)."""
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    features = compute_features(data.sales, DAILY)
    write_period_features(settings.feast_dir, features)
    write_static_features(settings.feast_dir, store_attributes(data.stores), sku_attributes(data.skus))
    store = open_store(settings)
    store.apply(feature_objects(settings.feast_dir, DAILY, DAILY_TTL))
    return store, features


POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    try:
        admin = psycopg2.connect(POSTGRES_ADMIN_DSN, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES_ADMIN_DSN} cannot be reached: {exc}")
    admin.autocommit = True
    name = f"demandops_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_SERVER = shutil.which("redis-server")


@dataclass(frozen=True)
class RedisDatabase:
    url: str
    client: redis.Redis


@pytest.fixture
def redis_db(worker_id: str) -> Iterator[RedisDatabase]:
    """A Redis database of this test worker's own (pytest-xdist runs two tests at once), emptied before and after."""
    number = 10 + (0 if worker_id == "master" else int(worker_id.removeprefix("gw")))
    assert number < 16, f"only Redis databases 10-15 are set aside for tests; worker {worker_id} needs {number}"
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"Redis at {REDIS_HOST}:{REDIS_PORT} cannot be reached: {exc}")
    client.flushdb()
    yield RedisDatabase(f"{REDIS_HOST}:{REDIS_PORT},db={number}", client)
    client.flushdb()


class RedisServer:
    """A redis-server of the test's own on a free loopback port, to be killed and restarted (empty, as
    a Redis without persistence comes back)."""

    def __init__(self, directory: Path):
        self.directory = directory
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        while True:  # poll until it answers: it listens within milliseconds
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start; see {self.directory}") from None
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to its clients, as a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Clock:
    """Time a test moves by hand, so that a cool-down needs no sleep."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Poll a condition that another thread or process makes true; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.02)


def empty_sqlite_store(database: Path) -> int:
    """Delete every row of a SQLite online store's tables, as a Redis restarted without persistence
    comes back; returns how many rows there were."""
    with sqlite3.connect(database) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return sum(connection.execute(f'DELETE FROM "{table}"').rowcount for table in tables)


def production_settings(tmp_path: Path, *, postgres_url: str = "", redis_url: str = "") -> Settings:
    services = ProductionServices(
        postgres_url=postgres_url or ProductionServices().postgres_url,
        redis_url=redis_url or ProductionServices().redis_url,
    )
    return Settings(profile="production", project_dir=tmp_path, production=services)


def make_settings(project_dir: Path, **overrides) -> Settings:
    return Settings(project_dir=project_dir, preset="small", **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose project, data and state all live in a fresh temporary folder."""
    return make_settings(tmp_path)


@pytest.fixture
def project_with_data(settings: Settings) -> Settings:
    """A project folder holding the small dataset, not yet tracked by DVC."""
    generate(settings.data, "small")
    return settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding a slow or production test run first: with a file to each of two workers, a
    three-minute file that started last would run alone at the end."""
    heavy = {item.path for item in items if item.get_closest_marker("slow") or item.get_closest_marker("production")}
    items.sort(key=lambda item: item.path not in heavy)
