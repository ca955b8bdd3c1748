"""Client credentials: Proxy-Authorization Basic against name + SHA-256 of the secret."""

from __future__ import annotations

import base64

import pytest

from proxy.egress.clients import ClientTable, new_client_secret, secret_digest
from proxy.egress.config import EgressClient

ALICE, BOB = new_client_secret(), new_client_secret()
TABLE = ClientTable(
    [
        EgressClient(name="alice", roles=["payments"], sha256=secret_digest(ALICE)),
        EgressClient(name="bob", sha256=secret_digest(BOB)),
    ]
)


def _basic(user: str, secret: str, scheme: str = "Basic") -> str:
    return f"{scheme} " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def test_secrets_are_fresh_and_well_formed() -> None:
    assert ALICE != BOB
    assert ALICE.startswith("tge_")
    assert len(ALICE) == 56


@pytest.mark.parametrize(
    ("headers", "who"),
    [
        ([_basic("alice", ALICE)], "alice"),
        ([_basic("alice", ALICE, "basic")], "alice"),
        ([_basic("bob", BOB)], "bob"),
        ([], None),
        ([_basic("alice", BOB)], None),  # bob's secret under alice's name
        ([_basic("carol", ALICE)], None),
        ([_basic("alice", ALICE), _basic("alice", ALICE)], None),
        ([_basic("alice", ALICE, "Bearer")], None),
        ([_basic("alice", "tge_" + "a" * 52)], None),
        ([_basic("alice", ALICE[:-1])], None),
        (["Basic !!!"], None),
        (["Basic " + base64.b64encode(b"\xff\xfe:x").decode()], None),
        ([_basic("alice", ALICE) + " " * 600], None),
        ([_basic("", ALICE)], None),
    ],
    ids=[
        "alice",
        "lowercase-scheme",
        "bob",
        "missing",
        "swapped",
        "unknown-name",
        "twice",
        "bearer",
        "unknown-secret",
        "short-secret",
        "not-base64",
        "not-utf8",
        "too-long",
        "empty-name",
    ],
)
def test_authenticate(headers: list[str], who: str | None) -> None:
    client = TABLE.authenticate(headers)
    assert (client.name if client is not None else None) == who


def test_a_client_is_never_a_user() -> None:
    client = TABLE.authenticate([_basic("alice", ALICE)])
    assert client is not None
    assert client.subject == "egress:alice"
    assert client.roles == frozenset({"payments"})


def test_current_follows_a_reload_by_name_and_secret() -> None:
    alice = TABLE.authenticate([_basic("alice", ALICE)])
    assert alice is not None
    same = ClientTable([EgressClient(name="alice", roles=["refunds"], sha256=secret_digest(ALICE))])
    now = same.current(alice)
    assert now is not None
    assert now.roles == frozenset({"refunds"})  # requests act with the roles now configured
    rotated = ClientTable([EgressClient(name="alice", sha256=secret_digest(new_client_secret()))])
    assert rotated.current(alice) is None
    renamed = ClientTable([EgressClient(name="alicia", sha256=secret_digest(ALICE))])
    assert renamed.current(alice) is None
    assert TABLE.current(alice) == alice


def test_the_credential_stays_out_of_the_clients_repr() -> None:
    alice = TABLE.authenticate([_basic("alice", ALICE)])
    assert alice is not None
    assert secret_digest(ALICE) not in repr(alice)
    assert "credential" not in repr(alice)
