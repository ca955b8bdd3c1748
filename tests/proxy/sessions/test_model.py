"""Session values: identifiers from the project RNG, grant validation."""

from __future__ import annotations

import pytest

from kms_client import rng
from proxy.sessions.model import (
    SessionGrant,
    b64url,
    is_family_id,
    is_sid,
    new_family_id,
    new_sid,
)


class _Counting:
    """A deterministic source, to prove identifiers come from the installed RNG."""

    name = "test-counting"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def random_bytes(self, n: int) -> bytes:
        self.calls.append(n)
        return bytes([len(self.calls)]) * n


def test_ids_come_from_the_project_rng() -> None:
    source = _Counting()
    rng.install(source)
    try:
        sid, family = new_sid(), new_family_id()
    finally:
        rng.uninstall(source)
    assert source.calls == [32, 16]
    assert sid == b64url(b"\x01" * 32)
    assert family == b64url(b"\x02" * 16)


def test_ids_have_their_shape_and_differ() -> None:
    sids = {new_sid() for _ in range(100)}
    assert len(sids) == 100
    assert all(is_sid(s) for s in sids)
    assert is_family_id(new_family_id())
    assert not is_sid(new_family_id())
    assert not is_family_id(new_sid())
    assert not is_sid("../" + "a" * 40)
    assert not is_sid("a" * 42 + "}")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sub": ""}, "sub"),
        ({"sub": "x" * 1025}, "sub"),
        ({"sub": "bob", "cnf_jkt": "short"}, "thumbprint"),
    ],
)
def test_grants_are_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SessionGrant(**kwargs)  # type: ignore[arg-type]
    SessionGrant(sub="bob", cnf_jkt="A" * 43)
