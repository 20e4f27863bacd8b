"""Shared fixtures: one real Postgres for the session, a fresh warehouse schema per test.

``JIBBLE_TEST_DATABASE_URL`` points the tests at an existing server; without it they start
an embedded PostgreSQL in a temporary folder and stop it at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from jibble_pipeline.warehouse.connection import libpq_url
from jibble_pipeline.warehouse.embedded import ensure_embedded_postgres, stop_embedded_postgres

if TYPE_CHECKING:
    from jibble_pipeline_tests.pipeline_harness import Pipeline


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("JIBBLE_TEST_DATABASE_URL")
    if external:
        yield libpq_url(external)
        return
    data_dir = tmp_path_factory.mktemp("postgres") / "pgdata"
    yield ensure_embedded_postgres(data_dir)
    stop_embedded_postgres(data_dir)


@pytest.fixture
def warehouse_schema(database_url: str) -> Iterator[str]:
    """A schema of its own for one test, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:10]}"
    yield schema
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def own_database(database_url: str) -> Iterator[str]:
    """A database of its own on the test server, as a deployment has: Dagster's storage
    (runs, sensor cursors) and the warehouse both in it; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield urlsplit(database_url)._replace(path=f"/{name}").geturl()
    with psycopg.connect(database_url, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


@pytest.fixture
def schema_factory(database_url: str) -> Iterator[Callable[[], str]]:
    """Makes further schema names for one test (e.g. a clean run's, to compare with); every
    one is dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(f"test_{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    with psycopg.connect(database_url, autocommit=True) as conn:
        for schema in made:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def pipeline(
    request: pytest.FixtureRequest, database_url: str, warehouse_schema: str
) -> Iterator[Pipeline]:
    """The test module's ``PIPELINE_SETUP`` running on a simulator and a schema of its own,
    its work dates already derived."""
    # Imported here: the rule tests need no Dagster.
    from jibble_pipeline_tests.pipeline_harness import running_pipeline

    setup = getattr(request.module, "PIPELINE_SETUP", None)
    if setup is None:
        pytest.fail(f"{request.module.__name__} uses `pipeline` but sets no PIPELINE_SETUP")
    with running_pipeline(setup, database_url, warehouse_schema) as running:
        yield running
