"""``tokengate sessions list|revoke`` on real stores (SQLite, Redis) with the real audit log and keyring."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import redis
from click.testing import CliRunner, Result

from proxy.adminapi.listing import sid_hash
from proxy.cli import sessions_cmd
from proxy.sessions.config import SessionStoreConfig
from proxy.sessions.model import SessionGrant
from tests.conftest import free_port
from tests.proxy.adminapi.conftest import events

UPSTREAM = "upstreams:\n  app: {url: 'http://127.0.0.1:1'}\n"


@dataclass
class Setup:
    config: Path
    data_dir: Path
    store_args: tuple[str, ...]
    store: SessionStoreConfig

    def run(self, *args: str, input: str | None = None, store: bool = True) -> Result:
        group = click.Group()
        sessions_cmd.register(group)
        extra = self.store_args if store else ()
        argv = ["sessions", *args, "--config", str(self.config), "--actor", "cli:tester", *extra]
        return CliRunner().invoke(group, argv, input=input)

    def seed(self, *subs: str) -> list[str]:
        async def create() -> list[str]:
            s = self.store.open(data_dir=self.data_dir, workers=1)
            await s.open()
            try:
                return [(await s.create(SessionGrant(sub=sub))).session.sid for sub in subs]
            finally:
                await s.close()

        return asyncio.run(create())

    def live(self, *sids: str) -> list[bool]:
        async def check() -> list[bool]:
            s = self.store.open(data_dir=self.data_dir, workers=1)
            await s.open()
            try:
                return [await s.get(sid) is not None for sid in sids]
            finally:
                await s.close()

        return asyncio.run(check())


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(UPSTREAM + "data_dir: data\nkeys:\n  keyring_name: cli-test\n" + extra)
    return path


@pytest.fixture(params=["sqlite-option", "redis-config"])
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, unique_prefix: str
) -> Iterator[Setup]:
    """SQLite named by --store; the shared Redis named by gateway.yaml's sessions.store."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite-option":
        yield Setup(write_config(tmp_path), data_dir, ("--store", "sqlite:sessions.db"),
                    SessionStoreConfig(uri="sqlite:sessions.db"))  # fmt: skip
        return
    prefix = f"{unique_prefix}:"
    section = f"sessions:\n  store: {{uri: '{redis_url}', key_prefix: '{prefix}'}}\n"
    config = write_config(tmp_path, section)
    yield Setup(config, data_dir, (), SessionStoreConfig(uri=redis_url, key_prefix=prefix))
    with redis.Redis.from_url(redis_url, socket_timeout=5) as c:
        for key in list(c.scan_iter(match=f"{prefix}*", count=500)):
            c.delete(key)


def test_revoke_one_session(setup: Setup) -> None:
    sid, other = setup.seed("alice", "alice")
    result = setup.run("revoke", "--sid", sid, "--reason", "lost laptop")
    assert result.exit_code == 0, result.output
    assert f"revoked 1 session: sid_hash {sid_hash(sid)}" in result.output
    assert sid not in result.output
    assert setup.live(sid, other) == [False, True]
    again = setup.run("revoke", "--sid", sid)
    assert "revoked 0 sessions" in again.output
    entries = events(setup.data_dir)
    assert [(e, f["result"], f.get("revoked")) for e, f in entries] == [
        ("admin.session_revoke", "requested", None),
        ("admin.session_revoke", "ok", True),
        ("admin.session_revoke", "requested", None),
        ("admin.session_revoke", "ok", False),
    ]
    assert entries[0][1] == {
        "actor": "cli:tester",
        "sid_hash": sid_hash(sid),
        "reason": "lost laptop",
        "result": "requested",
    }


def test_revoke_user_prints_the_count(setup: Setup) -> None:
    a1, a2, bob = setup.seed("alice", "alice", "bob")
    result = setup.run("revoke", "--user", "alice")
    assert result.exit_code == 0, result.output
    assert "revoked 2 session(s) of 'alice'" in result.output
    assert setup.live(a1, a2, bob) == [False, False, True]
    assert events(setup.data_dir)[-1][1]["count"] == 2


def test_revoke_all_asks_first(setup: Setup) -> None:
    sids = setup.seed("alice", "bob")
    declined = setup.run("revoke", "--all", input="n\n")
    assert declined.exit_code == 1
    assert "revoke every session of every user" in declined.output
    assert setup.live(*sids) == [True, True]
    assert not (setup.data_dir / "audit").exists() or events(setup.data_dir) == []
    accepted = setup.run("revoke", "--all", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "revoked every session created before" in accepted.output
    assert setup.live(*sids) == [False, False]
    later = setup.seed("carol")
    assert setup.live(*later) == [True]
    assert setup.run("revoke", "--all", "--yes").exit_code == 0
    assert setup.live(*later) == [False]
    assert [f["result"] for e, f in events(setup.data_dir) if e == "admin.all_revoke"] == [
        "requested", "ok", "requested", "ok",
    ]  # fmt: skip


def test_list_shows_hashes_never_ids(setup: Setup) -> None:
    sids = setup.seed("alice", "alice", "bob")
    text = setup.run("list", "--user", "alice")
    assert text.exit_code == 0, text.output
    assert "2 live session(s) of 'alice'" in text.output
    assert sid_hash(sids[0]) in text.output
    assert sid_hash(sids[2]) not in text.output
    assert all(sid not in text.output for sid in sids)
    doc = json.loads(setup.run("list", "--user", "alice", "--json").output)
    assert doc["count"] == 2
    assert {s["sid_hash"] for s in doc["sessions"]} == {sid_hash(s) for s in sids[:2]}
    assert [f["count"] for e, f in events(setup.data_dir)] == [2, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("revoke",), "exactly one of --sid, --user, --all"),
        (("revoke", "--user", "a", "--all"), "exactly one of"),
        (("revoke", "--sid", "x" * 43, "--user", "a"), "exactly one of"),
        (("revoke", "--sid", "short"), "not a session id"),
        (("revoke", "--user", "a", "--yes"), "--yes goes with --all"),
        (("revoke", "--user", "a\x01"), "control characters"),
        (("revoke", "--user", "a", "--reason", "x" * 257), "at most 256"),
        (("revoke", "--user", "a", "--reason", "two\nlines"), "at most 256"),
        (("list",), "Missing option '--user'"),
    ],
)
def test_usage_errors(setup: Setup, args: tuple[str, ...], message: str) -> None:
    result = setup.run(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_default_store_is_the_gateways(tmp_path: Path) -> None:
    setup = Setup(write_config(tmp_path), tmp_path / "data", (), SessionStoreConfig())
    a, b = setup.seed("alice", "alice")
    result = setup.run("revoke", "--user", "alice")
    assert result.exit_code == 0, result.output
    assert "revoked 2 session(s)" in result.output
    assert (tmp_path / "data" / "sessions" / "sessions.db").is_file()
    assert setup.live(a, b) == [False, False]


def test_store_option_overrides_the_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sessions:\n  store: {uri: 'sqlite:configured.db'}\n")
    configured = Setup(
        config, tmp_path / "data", (), SessionStoreConfig(uri="sqlite:configured.db")
    )
    other = Setup(config, tmp_path / "data", ("--store", "sqlite:other.db"),
                  SessionStoreConfig(uri="sqlite:other.db"))  # fmt: skip
    [kept], [gone] = configured.seed("alice"), other.seed("alice")
    assert other.run("revoke", "--user", "alice").exit_code == 0
    assert configured.live(kept) == [True]
    assert other.live(gone) == [False]
    result = configured.run("revoke", "--user", "alice", "--key-prefix", "x:")
    assert result.exit_code == 2
    assert "--key-prefix goes with --store" in result.output


def test_memory_store_is_refused(tmp_path: Path) -> None:
    setup = Setup(write_config(tmp_path), tmp_path / "data", ("--store", "memory:"),
                  SessionStoreConfig())  # fmt: skip
    result = setup.run("revoke", "--user", "alice")
    assert result.exit_code == 2
    assert "use the admin API" in result.output


def test_audit_log_that_cannot_open_refuses_the_act(tmp_path: Path) -> None:
    config = write_config(tmp_path, "audit:\n  dir: blocked\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blocked").write_text("a file where the audit directory should be")
    setup = Setup(config, tmp_path / "data", ("--store", "sqlite:sessions.db"),
                  SessionStoreConfig(uri="sqlite:sessions.db"))  # fmt: skip
    [sid] = setup.seed("alice")
    result = setup.run("revoke", "--sid", sid)
    assert result.exit_code == 1
    assert setup.live(sid) == [True]


def test_unreachable_store_fails(tmp_path: Path) -> None:
    port = free_port()
    setup = Setup(write_config(tmp_path), tmp_path / "data",
                  ("--store", f"redis://127.0.0.1:{port}/0"), SessionStoreConfig())  # fmt: skip
    result = setup.run("revoke", "--user", "alice")
    assert result.exit_code == 1
    assert "Error: sessions:" in result.output


def test_prompt_hides_store_credentials(tmp_path: Path) -> None:
    port = free_port()
    setup = Setup(write_config(tmp_path), tmp_path / "data",
                  ("--store", f"redis://user:s3cret@127.0.0.1:{port}/0"),
                  SessionStoreConfig())  # fmt: skip
    result = setup.run("revoke", "--all", input="n\n")
    assert result.exit_code == 1
    assert f"redis://127.0.0.1:{port}/0" in result.output
    assert "s3cret" not in result.output
