"""Fixtures shared by the whole suite: free ports and the real shared services.

Tests reach Redis and PostgreSQL through REDIS_URL / DATABASE_URL (defaults: the
services on 127.0.0.1), use their own key prefix or schema, and clean up. A test
that stops or breaks a server starts a private instance instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    """A free port for a server the test starts."""
    return free_port()


@pytest.fixture
def redis_url() -> str:
    """URL of the shared Redis; the test must use ``unique_prefix`` for its keys."""
    return REDIS_URL


@pytest.fixture
def unique_prefix() -> str:
    """A key prefix / schema name no other test (or xdist worker) uses."""
    return f"tgtest_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_schema(unique_prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema on the shared server: yields (DATABASE_URL, schema), dropped after."""
    import psycopg

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{unique_prefix}"')
    try:
        yield DATABASE_URL, unique_prefix
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{unique_prefix}" CASCADE')
