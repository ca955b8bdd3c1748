"""The control socket: status, seal and Shamir unseal of a running gateway process."""

from __future__ import annotations

import asyncio
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kms_client import control
from kms_client.config import KeysConfig
from kms_client.local_root import LocalRootKey
from kms_client.manager import KeyManager
from kms_client.opening import open_key_manager
from kms_client.root_uri import parse_local
from kms_client.shamir import Share
from tests.kms_client.support import RecordingAuditor


@pytest.fixture
async def shamir_gateway(
    tmp_path: Path,
) -> AsyncIterator[tuple[KeyManager, Path, list[Share], RecordingAuditor]]:
    table = parse_local("local:shamir", data_dir=tmp_path).table
    shares = LocalRootKey.create_shamir(table, shares=5, threshold=3)
    directory = Path(tempfile.mkdtemp(prefix="tgc", dir="/tmp"))
    auditor = RecordingAuditor()
    config = KeysConfig(root="local:shamir", control_dir=str(directory))
    m = await open_key_manager(config, data_dir=tmp_path, auditor=auditor, production=False)
    yield m, directory, shares, auditor
    await m.close()
    shutil.rmtree(directory, ignore_errors=True)


async def test_socket_is_private(shamir_gateway) -> None:
    _, directory, _, _ = shamir_gateway
    (sock,) = control.sockets(directory)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


async def test_unseal_with_enough_shares(shamir_gateway) -> None:
    m, directory, shares, auditor = shamir_gateway
    (sock,) = control.sockets(directory)
    assert await control.request(sock, {"op": "status"}) == {
        "ok": True,
        "sealed": True,
        "keyring_version": None,
    }
    reply = await control.request(
        sock, {"op": "unseal", "shares": [s.encode() for s in shares[1:4]], "actor": "ops"}
    )
    assert reply["ok"] is True
    assert reply["sealed"] is False
    assert not m.is_sealed
    assert m.decrypt("tokenize", m.encrypt("tokenize", b"x", context=b""), context=b"") == b"x"
    assert auditor.find("keyring.unseal", result="ok")[0]["actor"] == "ops"
    reply = await control.request(sock, {"op": "seal", "actor": "ops"})
    assert reply["sealed"] is True
    assert m.is_sealed


@pytest.mark.parametrize(
    ("pick", "message"),
    [
        (lambda s: [s[0].encode(), s[1].encode()], "2 of 3 required shares given"),
        (lambda s: [s[0].encode(), s[0].encode(), s[1].encode()], "given twice"),
        (lambda s: ["tgshare1-garbage"], "not a tokengate share"),
        (
            lambda s: [
                s[0].encode(),
                s[1].encode(),
                Share(s[2].set_id, 3, s[2].x, bytes(32)).encode(),
            ],
            "shares do not rebuild the root",
        ),
    ],
)
async def test_wrong_or_insufficient_shares_leave_it_sealed(shamir_gateway, pick, message) -> None:
    m, directory, shares, _ = shamir_gateway
    (sock,) = control.sockets(directory)
    reply = await control.request(sock, {"op": "unseal", "shares": pick(shares)})
    assert reply["ok"] is False
    assert message in str(reply["error"])
    assert reply["sealed"] is True
    assert m.is_sealed
    for s in shares:
        assert s.encode() not in str(reply)


async def test_unknown_and_garbage_requests(shamir_gateway) -> None:
    _, directory, _, _ = shamir_gateway
    (sock,) = control.sockets(directory)
    assert (await control.request(sock, {"op": "explode"}))["error"] == (
        "kms: unknown control operation"
    )
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(b"not json\n")
    await writer.drain()
    assert b"unreadable" in await reader.readline()
    writer.close()
