"""DSNs: which file a sqlite: DSN names, which schemes are refused, no password in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.migrate.errors import MigrateError
from proxy.migrate.opening import build_source, open_source, sqlite_file
from proxy.migrate.source import Target


@pytest.mark.parametrize(
    ("dsn", "path"),
    [
        ("sqlite:app.db", Path("app.db")),
        ("sqlite:data/app.db", Path("data/app.db")),
        ("sqlite:/srv/app.db", Path("/srv/app.db")),
        ("sqlite:///srv/app.db", Path("/srv/app.db")),
        ("sqlite:////srv/app.db", Path("/srv/app.db")),
        ("sqlite://localhost/srv/app.db", Path("/srv/app.db")),
        ("sqlite:/srv/a%20b.db", Path("/srv/a b.db")),
    ],
)
def test_sqlite_file(dsn: str, path: Path) -> None:
    assert sqlite_file(dsn) == path


@pytest.mark.parametrize(
    "dsn", ["sqlite://db.example/app.db", "sqlite:app.db?mode=ro", "sqlite:", "sqlite:a#b"]
)
def test_sqlite_dsn_with_host_or_options_is_refused(dsn: str) -> None:
    with pytest.raises(MigrateError, match="local file"):
        sqlite_file(dsn)


@pytest.mark.parametrize("dsn", ["mysql://h/db", "app.db", "redis://h", ""])
def test_other_schemes_are_refused(dsn: str) -> None:
    with pytest.raises(MigrateError, match="--dsn must start with"):
        build_source(dsn, Target("users", "email"))


async def test_postgres_password_never_in_errors(unused_port: int) -> None:
    dsn = f"postgresql://u:s3cret@127.0.0.1:{unused_port}/db"
    with pytest.raises(MigrateError, match="cannot connect") as caught:
        await open_source(dsn, Target("users", "email"))
    assert "s3cret" not in str(caught.value)
