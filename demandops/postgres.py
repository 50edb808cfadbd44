"""The production profile's one PostgreSQL database, shared by MLflow and Dagster in schemas of their own.

Both own a `runs` table and an `alembic_version`, so they cannot share a schema; each gets its
own, named on the connection's `search_path`. The driver is psycopg2, chosen explicitly:
SQLAlchemy 2.1 picks psycopg 3 for a bare `postgresql://`, and dagster-postgres sends `NOTIFY`
with a bound parameter, which only psycopg2's client-side binding turns into valid SQL.
"""

from __future__ import annotations

from functools import lru_cache

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from demandops.errors import DemandopsError

DRIVER = "postgresql+psycopg2"
ACCEPTED_SCHEMES = ("postgresql", "postgres", DRIVER)
MLFLOW_SCHEMA = "mlflow"
DAGSTER_SCHEMA = "dagster"
MAINTENANCE_DATABASE = "postgres"
# A table only MLflow creates: found in `public`, it is an installation from before the schemas.
MLFLOW_MARKER_TABLE = "registered_models"


class DatabaseSetupError(DemandopsError):
    """The production database cannot be reached, created or prepared."""


def parse_postgres_url(url: str) -> URL:
    """The URL as SQLAlchemy reads it; refuses anything but a PostgreSQL URL with a database name."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DemandopsError(
            f"postgres_url {url!r} is not a database URL; expected postgresql://user@host:port/db"
        ) from exc
    if parsed.drivername not in ACCEPTED_SCHEMES:
        raise DemandopsError(
            f"postgres_url {parsed.render_as_string(hide_password=True)!r} uses {parsed.drivername!r}; "
            f"expected one of {', '.join(s + '://' for s in ACCEPTED_SCHEMES)} (demandops drives PostgreSQL "
            "with psycopg2)"
        )
    if not parsed.database:
        raise DemandopsError(
            f"postgres_url {parsed.render_as_string(hide_password=True)!r} names no database; "
            "expected postgresql://user@host:port/<database>"
        )
    return parsed


def schema_url(url: str, schema: str) -> str:
    """The same database through psycopg2, with `schema` first on the search path."""
    parsed = parse_postgres_url(url)
    options = " ".join([*_options(parsed), f"-csearch_path={schema}"])
    return parsed.set(drivername=DRIVER).update_query_dict({"options": options}).render_as_string(hide_password=False)


def schema_of(url: str) -> str | None:
    """The schema a URL made by schema_url puts first on the search path."""
    for option in " ".join(_options(make_url(url))).split():
        if option.startswith("-csearch_path="):
            return option.removeprefix("-csearch_path=").split(",")[0]
    return None


def _options(parsed: URL) -> list[str]:
    """libpq `options` already in the URL (SQLAlchemy keeps a repeated query key as a tuple)."""
    options = parsed.query.get("options", ())
    return [options] if isinstance(options, str) else list(options)


@lru_cache(maxsize=8)
def ensure_schema(url: str) -> None:
    """Create the URL's database and schema when missing (once per process); raises naming what failed."""
    parsed = make_url(url)
    schema = schema_of(url)
    if schema is None:
        raise DemandopsError(
            f"{parsed.render_as_string(hide_password=True)!r} names no schema; build it with schema_url"
        )
    _ensure_database(parsed)
    try:
        with psycopg2.connect(**_connect_args(parsed, parsed.database)) as conn, conn.cursor() as cur:
            if schema == MLFLOW_SCHEMA:
                _refuse_unmoved_mlflow_tables(cur, parsed)
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg2.Error as exc:
        raise DatabaseSetupError(
            f"cannot create schema {schema!r} in {parsed.render_as_string(hide_password=True)}: {exc}".strip()
        ) from exc


def _ensure_database(parsed: URL) -> None:
    try:
        conn = psycopg2.connect(**_connect_args(parsed, MAINTENANCE_DATABASE))
    except psycopg2.Error as exc:
        raise DatabaseSetupError(
            f"cannot reach PostgreSQL at {parsed.host}:{parsed.port or 5432} as {parsed.username!r}: {exc}".strip()
        ) from exc
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(parsed.database)))
    except psycopg2.errors.DuplicateDatabase:
        pass  # another process created it between the check and the create
    except psycopg2.Error as exc:
        raise DatabaseSetupError(
            f"database {parsed.database!r} does not exist and cannot be created ({exc}); "
            "create it, or grant CREATEDB to this user".strip()
        ) from exc
    finally:
        conn.close()


def _refuse_unmoved_mlflow_tables(cur, parsed: URL) -> None:
    """An installation whose MLflow tables sit in `public` would start an empty registry beside them."""
    cur.execute(
        "SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL",
        (f"public.{MLFLOW_MARKER_TABLE}", f"{MLFLOW_SCHEMA}.{MLFLOW_MARKER_TABLE}"),
    )
    in_public, in_schema = cur.fetchone()
    if in_public and not in_schema:
        raise DatabaseSetupError(
            f"database {parsed.database!r} holds an MLflow registry in schema 'public', from before demandops kept "
            f"MLflow in schema {MLFLOW_SCHEMA!r}. Nothing was changed. Move it once (README, 'Upgrading from "
            "one shared schema'), or point DEMANDOPS_PRODUCTION__POSTGRES_URL at a new database."
        )


def _connect_args(parsed: URL, database: str) -> dict:
    args = {"host": parsed.host or "localhost", "port": parsed.port or 5432, "dbname": database, "connect_timeout": 10}
    if parsed.username:
        args["user"] = parsed.username
    if parsed.password:
        args["password"] = parsed.password
    return args
