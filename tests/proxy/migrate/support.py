"""Helpers for migration tests: an "existing app" table on SQLite or PostgreSQL, and its rows.

The table is ``users(id, email, ssn, owner, kind)`` with an integer primary
key; ``rows(n)`` makes plaintext rows with a few NULL, empty and (SQLite
only) non-text values mixed in, so every count of a run is exercised.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

SCHEMA = "CREATE TABLE {t} (id INTEGER PRIMARY KEY, email TEXT, ssn TEXT, owner TEXT, kind TEXT)"

Values = tuple[int, object, str | None, str | None, str]


def rows(n: int, *, sqlite: bool = True) -> list[Values]:
    """``n`` rows: mostly plaintext, every 7th NULL, every 11th empty, every 13th a BLOB."""
    out: list[Values] = []
    for i in range(1, n + 1):
        email: object = f"user{i}@example.com"
        if i % 7 == 0:
            email = None
        elif i % 11 == 0:
            email = ""
        elif i % 13 == 0 and sqlite:
            email = f"blob{i}".encode()  # a BLOB: not text, left alone
        ssn = f"{100 + i % 800:03d}-{10 + i % 80:02d}-{1000 + i:04d}"
        kind = "staff" if i % 2 else "customer"
        out.append((i, email, ssn, f"sub-{i}", kind))
    return out


def make_sqlite(path: Path, data: list[Values]) -> None:
    """A SQLite file with the table and ``data``."""
    with sqlite3.connect(path) as conn:
        conn.execute(SCHEMA.format(t="users"))
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?)", data)
    conn.close()


def read_sqlite(path: Path, column: str = "email") -> dict[int, object]:
    """id -> value of ``column``."""
    with sqlite3.connect(path) as conn:
        got = dict(conn.execute(f"SELECT id, {column} FROM users ORDER BY id").fetchall())
    conn.close()
    return got


def make_pg(url: str, schema: str, data: list[Values]) -> None:
    """The table in ``schema`` with ``data`` (email as text: integers become strings)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA.format(t=f'"{schema}".users'))
        with conn.cursor() as cur:
            cur.executemany(
                f'INSERT INTO "{schema}".users VALUES (%s, %s, %s, %s, %s)',
                [(i, None if e is None else str(e), s, o, k) for i, e, s, o, k in data],
            )


def read_pg(url: str, schema: str, column: str = "email") -> dict[int, object]:
    """id -> value of ``column``."""
    with psycopg.connect(url, autocommit=True) as conn:
        got = conn.execute(f'SELECT id, {column} FROM "{schema}".users ORDER BY id').fetchall()
    return {int(str(i)): v for i, v in got}


POLICY = """classes:
  email: {}
  ssn: {format: ssn, keep_last: 4}
"""


def write_config(tmp_path: Path, extra: str = "") -> Path:
    """gateway.yaml (data dir ``data``, keyring ``cli-test``) and a policy file with the classes."""
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "classes.yaml").write_text(POLICY)
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "upstreams:\n  app: {url: 'http://127.0.0.1:1'}\n"
        "data_dir: data\nkeys:\n  keyring_name: cli-test\n" + extra
    )
    return path
