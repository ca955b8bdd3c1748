"""open_session_store: the backend a URI names, and the worker-count guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.sessions.factory import open_session_store, sqlite_path
from proxy.sessions.memory_store import MemorySessionStore
from proxy.sessions.redis_store import RedisSessionStore
from proxy.sessions.sqlite_store import SqliteSessionStore
from tokengate.errors import ConfigError

DATA = Path("/var/lib/tokengate")


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("memory:", MemorySessionStore),
        ("sqlite:sessions.db", SqliteSessionStore),
        ("redis://127.0.0.1:6379/0", RedisSessionStore),
        ("rediss://cache:6380", RedisSessionStore),
        ("redis+sentinel://s1/mm", RedisSessionStore),
        ("rediss+cluster://n1,n2", RedisSessionStore),
    ],
)
def test_scheme_picks_the_backend(uri: str, kind: type) -> None:
    assert isinstance(open_session_store(uri, data_dir=DATA, workers=1), kind)


def test_memory_refuses_several_workers() -> None:
    with pytest.raises(ConfigError, match="2 workers"):
        open_session_store("memory:", data_dir=DATA, workers=2)
    for uri in ("sqlite:s.db", "redis://h"):
        assert open_session_store(uri, data_dir=DATA, workers=8).supports_multiple_workers


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("sqlite:sessions.db", DATA / "sessions.db"),
        ("sqlite:sub/dir/s.db", DATA / "sub/dir/s.db"),
        ("sqlite:/srv/s.db", Path("/srv/s.db")),
        ("sqlite:///srv/s.db", Path("/srv/s.db")),
    ],
)
def test_sqlite_paths(uri: str, path: Path) -> None:
    assert sqlite_path(uri, DATA) == path


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("postgresql://db/x", "unknown scheme"),
        ("sqlite://otherhost/s.db", "local file"),
        ("sqlite:s.db?mode=ro", "local file"),
        ("sqlite:", "file name"),
        ("sqlite:dir/", "file name"),
        ("memory:/somewhere", "memory"),
    ],
)
def test_mistakes(uri: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_session_store(uri, data_dir=DATA, workers=1)
