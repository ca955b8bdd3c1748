"""The stored identity form: round trip and corruption failing closed."""

from __future__ import annotations

import json

import pytest

from proxy.sessions.codec import StoredTimes, decode_session, encode_identity
from proxy.sessions.errors import SessionStoreUnavailable
from proxy.sessions.model import Session

S = Session(
    sid="s" * 43,
    sub="alice",
    tenant="acme",
    roles=("admin",),
    amr=("pwd", "hwk", "mfa"),
    acr="urn:acr:mfa",
    auth_time=100,
    created=100.25,
    last_seen=101.5,
    absolute_expiry=1000.0,
    idle_timeout=300.0,
    family_id="f" * 22,
    cnf_jkt="J" * 43,
    mfa_enrolled=True,
    mfa_time=100.0,
)
TIMES = StoredTimes(S.created, S.last_seen, S.absolute_expiry, S.idle_timeout)


def test_round_trip_is_exact() -> None:
    identity = encode_identity(S)
    assert "alice" not in identity
    assert S.family_id not in identity
    assert (
        decode_session(
            sid=S.sid, sub="alice", family_id=S.family_id, identity=identity, times=TIMES
        )
        == S
    )


@pytest.mark.parametrize(
    "identity",
    [
        "not json",
        "[]",
        json.dumps({"v": 2}),
        encode_identity(S).replace('"roles":["admin"]', '"roles":"admin"'),
        encode_identity(S).replace('"acr":"urn:acr:mfa"', '"acr":7'),
        encode_identity(S).replace(',"tenant":"acme"', ""),
    ],
)
def test_corrupt_identity_fails_closed(identity: str) -> None:
    with pytest.raises(SessionStoreUnavailable) as caught:
        decode_session(
            sid=S.sid, sub="alice", family_id=S.family_id, identity=identity, times=TIMES
        )
    assert caught.value.status == 503
