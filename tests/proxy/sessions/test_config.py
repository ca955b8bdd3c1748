"""The sessions: config section."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from proxy.sessions.config import DEFAULT_URI, SessionStoreConfig
from proxy.sessions.sqlite_store import SqliteSessionStore
from proxy.sessions.store import StoreSettings


def test_defaults() -> None:
    c = SessionStoreConfig()
    assert c.uri == DEFAULT_URI
    assert (c.idle_timeout, c.absolute_lifetime, c.refresh_grace) == (1800.0, 43200.0, 10.0)
    assert c.settings() == StoreSettings()


def test_durations_and_mapping() -> None:
    c = SessionStoreConfig.model_validate(
        {"idle_timeout": "15m", "absolute_lifetime": "8h", "refresh_grace": "5s",
         "touch_interval": "30s", "key_prefix": "tg:", "revoke_replicas": 2}
    )  # fmt: skip
    s = c.settings()
    assert (s.idle_timeout, s.absolute_lifetime, s.refresh_grace) == (900.0, 28800.0, 5.0)
    assert (s.touch_interval, s.key_prefix, s.revoke_replicas) == (30.0, "tg:", 2)


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown": 1},
        {"idle_timeout": 0},
        {"refresh_grace": "2m"},
        {"touch_interval": "20m"},  # more than half the idle timeout
        {"key_prefix": "{tag}:"},
        {"revoke_replicas": -1},
        {"timeout": 0},
    ],
)
def test_mistakes_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SessionStoreConfig.model_validate(bad)


def test_every_field_has_one_line_of_help() -> None:
    for name, field in SessionStoreConfig.model_fields.items():
        assert field.description, name
        assert "\n" not in field.description, name


def test_open_builds_the_configured_store(tmp_path: Path) -> None:
    store = SessionStoreConfig().open(data_dir=tmp_path, workers=4)
    assert isinstance(store, SqliteSessionStore)
    assert store.description == f"sqlite:{tmp_path / 'sessions/sessions.db'}"


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("memory:", "memory:"),
        ("redis://cache.internal:6379", "rediss://"),
        ("redis+cluster://127.0.0.1:7000,10.0.0.2:7000", "rediss://"),
        ("rediss://cache.internal:6379", None),
        ("redis://127.0.0.1:6379", None),  # the sidecar's own loopback Redis
        ("sqlite:sessions.db", None),
    ],
)
def test_production_problems(uri: str, problem: str | None) -> None:
    problems = SessionStoreConfig(uri=uri).production_problems()
    assert (problems == []) if problem is None else (problem in problems[0])
