"""KeyManager end to end on real roots and stores: request path, seal, lifecycle, replicas."""

from __future__ import annotations

import base64
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kms_client.errors import (
    DecryptionError,
    KeyringError,
    KeyStateError,
    Sealed,
    WrongRoot,
)
from kms_client.keyring import KeyState, SigningAlgorithm
from kms_client.manager import KeyManager
from tests.kms_client.stores import BACKENDS, redis_cleanup, store_uri
from tests.kms_client.support import Clock, RecordingAuditor, open_manager

CTX = b"record-1"


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[KeyManager]:
    m = await open_manager(tmp_path)
    yield m
    await m.close()


async def test_encrypt_decrypt_and_context_binding(manager: KeyManager) -> None:
    ct = manager.encrypt("mfa-secrets", b"totp-seed", context=CTX)
    assert manager.decrypt("mfa-secrets", ct, context=CTX) == b"totp-seed"
    with pytest.raises(DecryptionError):
        manager.decrypt("mfa-secrets", ct, context=b"record-2")
    with pytest.raises(DecryptionError):
        manager.decrypt("tokenize", ct, context=CTX)


async def test_hmac_is_stable_per_version(manager: KeyManager) -> None:
    a = manager.hmac("index", b"token")
    assert a == manager.hmac("index", b"token", version=a.version)
    assert a.digest != manager.hmac("index", b"other").digest
    assert a.digest != manager.hmac("hash", b"token").digest
    with pytest.raises(DecryptionError):
        manager.hmac("index", b"token", version=99)


async def test_derive_key_depends_on_salt_info_and_version(manager: KeyManager) -> None:
    a = manager.derive_key("tokenize", salt=b"id1", info=b"tokengate/outer/v1")
    assert a.version == 1
    assert len(a.key) == 32
    assert a == manager.derive_key("tokenize", salt=b"id1", info=b"tokengate/outer/v1", version=1)
    assert a.key != manager.derive_key("tokenize", salt=b"id2", info=b"tokengate/outer/v1").key
    assert "key=" not in repr(a)
    with pytest.raises(KeyStateError, match="holds signing keys"):
        manager.derive_key("session-signing", salt=b"", info=b"")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.encrypt("index", b"x", context=b""), "holds prf keys"),
        (lambda m: m.hmac("tokenize", b"x"), "holds aead keys"),
        (lambda m: m.signer("tokenize"), "holds aead keys"),
        (lambda m: m.encrypt("nope", b"x", context=b""), "unknown purpose 'nope'"),
    ],
)
async def test_misuse_is_a_key_state_error(manager: KeyManager, call, message: str) -> None:
    with pytest.raises(KeyStateError, match=message):
        call(manager)


async def test_signer_and_jwks(manager: KeyManager) -> None:
    signer = manager.signer("audit-checkpoint")
    public = signer.public_key()
    assert isinstance(public, Ed25519PublicKey)
    public.verify(signer.sign(b"m"), b"m")
    assert manager.jwks("audit-checkpoint") == {"keys": [signer.public_jwk()]}
    old_kid = signer.kid
    await manager.rotate("audit-checkpoint")
    new = manager.signer("audit-checkpoint")
    assert new.kid != old_kid
    assert [k["kid"] for k in manager.jwks("audit-checkpoint")["keys"]] == [new.kid, old_kid]
    await manager.revoke("audit-checkpoint", 1)
    assert [k["kid"] for k in manager.jwks("audit-checkpoint")["keys"]] == [new.kid]


async def test_signer_satisfies_the_audit_checkpoint_protocol(manager: KeyManager) -> None:
    from audit.signer import CheckpointSigner

    signer: CheckpointSigner = manager.signer("audit-checkpoint")
    assert len(signer.sign(b"x")) == 64
    assert signer.public_jwk()["kid"] == signer.kid


async def test_sealed_fails_closed_with_503_then_unseals(manager: KeyManager) -> None:
    ct = manager.encrypt("mfa-secrets", b"v", context=CTX)
    await manager.seal(actor="test")
    assert manager.is_sealed
    for call in (
        lambda: manager.encrypt("mfa-secrets", b"v", context=CTX),
        lambda: manager.decrypt("mfa-secrets", ct, context=CTX),
        lambda: manager.hmac("index", b"t"),
        lambda: manager.signer("session-signing"),
        lambda: manager.jwks("upstream-signing"),
        lambda: manager.derive_key("tokenize", salt=b"", info=b""),
    ):
        with pytest.raises(Sealed) as info:
            call()
        assert info.value.status == 503
    with pytest.raises(Sealed):
        await manager.rotate("mfa-secrets")
    await manager.unseal(actor="test")
    assert manager.decrypt("mfa-secrets", ct, context=CTX) == b"v"


async def test_request_path_makes_no_root_calls(manager: KeyManager) -> None:
    before = manager.root_calls
    for i in range(500):
        ct = manager.encrypt("mfa-secrets", b"%d" % i, context=CTX)
        manager.decrypt("mfa-secrets", ct, context=CTX)
        manager.hmac("index", b"t")
        manager.signer("upstream-signing").sign(b"x")
    assert manager.root_calls == before
    assert before > 0


async def test_rotation_keeps_old_ciphertexts_readable(tmp_path: Path) -> None:
    auditor = RecordingAuditor()
    m = await open_manager(tmp_path, auditor)
    old = m.encrypt("mfa-secrets", b"old", context=CTX)
    assert await m.rotate("mfa-secrets", actor="alice") == 2
    new = m.encrypt("mfa-secrets", b"new", context=CTX)
    assert (old[1:5], new[1:5]) == (b"\x00\x00\x00\x01", b"\x00\x00\x00\x02")
    assert m.decrypt("mfa-secrets", old, context=CTX) == b"old"
    assert m.decrypt("mfa-secrets", new, context=CTX) == b"new"
    states = [k.state for k in m.keyring().ring("mfa-secrets").keys]
    assert states == [KeyState.DECRYPT_ONLY, KeyState.ACTIVE]
    assert [f["result"] for f in auditor.find("key.rotate", purpose="mfa-secrets")] == [
        "requested",
        "ok",
    ]
    assert auditor.find("key.rotate", result="ok")[0]["version"] == 2
    assert auditor.find("key.rotate", result="ok")[0]["actor"] == "alice"
    await m.close()


async def test_revoke_fails_closed_and_primary_cannot_be_revoked(manager: KeyManager) -> None:
    old = manager.encrypt("mfa-secrets", b"old", context=CTX)
    with pytest.raises(KeyStateError, match="rotate first") as info:
        await manager.revoke("mfa-secrets", 1)
    assert info.value.status == 409
    await manager.rotate("mfa-secrets")
    await manager.revoke("mfa-secrets", 1)
    with pytest.raises(DecryptionError):
        manager.decrypt("mfa-secrets", old, context=CTX)
    new = manager.encrypt("mfa-secrets", b"new", context=CTX)
    assert manager.decrypt("mfa-secrets", new, context=CTX) == b"new"


async def test_destroy_shreds_and_old_keyring_copies_no_longer_unwrap(tmp_path: Path) -> None:
    auditor = RecordingAuditor()
    m = await open_manager(tmp_path, auditor)
    old = m.encrypt("mfa-secrets", b"old", context=CTX)
    await m.rotate("mfa-secrets")
    backup = tmp_path / "backup.json"
    shutil.copy(tmp_path / "kms" / "keyring.json", backup)  # e.g. last night's backup
    kwk_before = m.keyring_version
    await m.destroy("mfa-secrets", 1, actor="alice")
    assert m.keyring().ring("mfa-secrets").get(1).state is KeyState.DESTROYED  # type: ignore[union-attr]
    assert m.keyring().retired_kwks == ()
    with pytest.raises(DecryptionError):
        m.decrypt("mfa-secrets", old, context=CTX)
    assert auditor.find("key.destroy", result="ok")[0]["kwk_version"] == 2
    assert auditor.find("keyring.kwk_destroy", result="ok")[0]["kwk_version"] == 1
    assert kwk_before is not None
    await m.close()
    shutil.copy(backup, tmp_path / "kms" / "keyring.json")
    with pytest.raises(WrongRoot, match="kwk v1 is not in key table"):
        await open_manager(tmp_path)


async def test_tampered_keyring_file_is_a_clear_startup_error(tmp_path: Path) -> None:
    m = await open_manager(tmp_path)
    await m.close()
    path = tmp_path / "kms" / "keyring.json"
    doc = path.read_text()
    start = doc.index('"blob": "') + len('"blob": "')
    raw = bytearray(base64.b64decode(doc[start : doc.index('"', start)]))
    at = raw.index(b'"ciphertext":"') + 20
    raw[at] = ord("A") if raw[at] != ord("A") else ord("B")
    path.write_text(
        doc[:start] + base64.b64encode(bytes(raw)).decode() + doc[doc.index('"', start) :]
    )
    with pytest.raises(KeyringError, match="failed its integrity check"):
        await open_manager(tmp_path)


async def test_keyring_under_another_root_is_a_clear_startup_error(tmp_path: Path) -> None:
    m = await open_manager(tmp_path)
    await m.close()
    key = tmp_path / "kms" / "root.key"
    key.write_text(base64.b64encode(bytes(32)).decode())
    with pytest.raises(WrongRoot, match="another root"):
        await open_manager(tmp_path)


async def test_audit_failure_refuses_the_act(tmp_path: Path) -> None:
    auditor = RecordingAuditor()
    m = await open_manager(tmp_path, auditor)
    auditor.fail = True
    with pytest.raises(OSError, match="audit sink down"):
        await m.rotate("mfa-secrets")
    auditor.fail = False
    assert m.primary_version("mfa-secrets") == 1
    assert await m.refresh() is False
    await m.close()


async def test_new_purpose_in_config_is_added_at_unseal(tmp_path: Path) -> None:
    await (await open_manager(tmp_path)).close()
    auditor = RecordingAuditor()
    m = await open_manager(tmp_path, auditor, purposes={"webhooks": {"kind": "aead"}})
    assert m.primary_version("webhooks") == 1
    assert [f["purpose"] for f in auditor.find("key.create")] == ["webhooks"]
    await m.close()


async def test_kind_conflict_with_the_keyring_stops_startup(tmp_path: Path) -> None:
    from tokengate.errors import ConfigError

    await (await open_manager(tmp_path, purposes={"extra": {"kind": "aead"}})).close()
    with pytest.raises(ConfigError, match="holds 'aead' keys"):
        await open_manager(tmp_path, purposes={"extra": {"kind": "prf"}})


async def test_scheduled_rotation_skips_prf_purposes(tmp_path: Path) -> None:
    clock = Clock()
    auditor = RecordingAuditor()
    m = await open_manager(tmp_path, auditor, clock=clock)
    clock.advance(days=29)
    await m.maintain()
    assert auditor.find("key.rotate") == []
    clock.advance(days=2)
    await m.maintain()
    assert [f["purpose"] for f in auditor.find("key.rotate", result="ok")] == ["session-signing"]
    clock.advance(days=400)
    await m.maintain()
    rotated = {f["purpose"] for f in auditor.find("key.rotate", result="ok")}
    assert rotated == {
        "session-signing",
        "upstream-signing",
        "audit-checkpoint",
        "tokenize",
        "mfa-secrets",
        "egress-ca",
    }
    assert all(f["trigger"] == "schedule" for f in auditor.find("key.rotate", result="ok"))
    for prf in ("index", "convergent", "hash"):
        assert m.primary_version(prf) == 1
    await m.close()


async def test_usage_limit_rotates_before_the_configured_count(tmp_path: Path) -> None:
    auditor = RecordingAuditor()
    m = await open_manager(
        tmp_path, auditor, purposes={"mfa-secrets": {"rotate_after_encryptions": 5}}
    )
    for _ in range(4):
        m.encrypt("mfa-secrets", b"x", context=CTX)
    await m.maintain()
    assert m.primary_version("mfa-secrets") == 1
    m.encrypt("mfa-secrets", b"x", context=CTX)
    await m.maintain()
    assert m.primary_version("mfa-secrets") == 2
    assert auditor.find("key.rotate", result="ok")[0]["trigger"] == "usage"
    await m.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_replica_picks_up_rotation_without_restart(
    request, backend: str, tmp_path: Path, redis_url: str, unique_prefix: str
) -> None:
    pg = request.getfixturevalue("pg_schema") if backend == "postgres" else ("", "")
    uri = store_uri(backend, tmp_path=tmp_path, redis_url=redis_url, prefix=unique_prefix, pg=pg)
    async with redis_cleanup(redis_url, unique_prefix):
        auditor_b = RecordingAuditor()
        a = await open_manager(tmp_path, store=uri)
        b = await open_manager(tmp_path, auditor_b, store=uri)
        try:
            assert await b.refresh() is False
            await a.rotate("mfa-secrets")
            ct = a.encrypt("mfa-secrets", b"from a", context=CTX)
            with pytest.raises(DecryptionError):
                b.decrypt("mfa-secrets", ct, context=CTX)
            assert await b.refresh() is True
            assert b.decrypt("mfa-secrets", ct, context=CTX) == b"from a"
            assert b.primary_version("mfa-secrets") == 2
            assert auditor_b.find("keyring.refresh", result="ok")[0]["keyring_version"] == 2
            calls = b.root_calls
            await a.destroy("mfa-secrets", 1)
            await b.maintain()
            assert b.keyring().ring("mfa-secrets").get(1).state is KeyState.DESTROYED  # type: ignore[union-attr]
            assert b.root_calls > calls  # the new KWK was opened through the root
        finally:
            await a.close()
            await b.close()


async def test_rollback_of_the_store_is_refused(tmp_path: Path) -> None:
    a = await open_manager(tmp_path)
    path = tmp_path / "kms" / "keyring.json"
    shutil.copy(path, tmp_path / "old.json")
    await a.rotate("mfa-secrets")
    shutil.copy(tmp_path / "old.json", path)
    with pytest.raises(KeyringError, match="refusing a rollback"):
        await a.refresh()
    assert a.primary_version("mfa-secrets") == 2
    await a.close()


async def test_no_key_material_in_logs_audit_or_errors(tmp_path: Path, caplog) -> None:
    caplog.set_level("DEBUG")
    auditor = RecordingAuditor()
    m = await open_manager(tmp_path, auditor)
    errors = []
    await m.rotate("mfa-secrets")
    await m.revoke("mfa-secrets", 1)
    for bad in (b"", b"\x01" * 40):
        try:
            m.decrypt("mfa-secrets", bad, context=CTX)
        except DecryptionError as e:
            errors.append(f"{e!r} {e}")
    await m.destroy("mfa-secrets", 1)
    keyring = m.keyring()
    kwk_cache = list(m._io._kwks.values())  # the test needs the KWK itself to grep for it
    secrets = [k.material for r in keyring.purposes.values() for k in r.keys if k.material]
    secrets += kwk_cache
    root_key = base64.b64decode((tmp_path / "kms" / "root.key").read_text())
    secrets.append(root_key)
    haystack = "\n".join([caplog.text, auditor.dump(), *errors, repr(keyring), repr(m)])
    stored = (tmp_path / "kms" / "keyring.json").read_text()
    for secret in secrets:
        for form in (
            secret.hex(),
            base64.b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).decode().rstrip("="),
        ):
            assert form not in haystack
            assert form not in stored
    await m.close()


# ---- signing algorithms ----


async def test_ensure_algorithm_rotates_once_across_replicas_and_old_keys_verify(
    tmp_path: Path,
) -> None:
    auditor = RecordingAuditor()
    a = await open_manager(tmp_path, auditor)
    b = await open_manager(tmp_path)  # a second replica on the same store
    try:
        old = a.signer("session-signing")
        assert old.algorithm == "EdDSA"
        assert await a.ensure_algorithm("session-signing", SigningAlgorithm.ES256) == 2
        assert await b.ensure_algorithm("session-signing", SigningAlgorithm.ES256) == 2
        assert await a.ensure_algorithm("session-signing", SigningAlgorithm.ES256) is None
        new = b.signer("session-signing")
        assert (new.algorithm, new.version, len(new.sign(b"m"))) == ("ES256", 2, 64)
        assert [(s.version, s.algorithm) for s in a.verifiers("session-signing")] == [
            (2, "ES256"),
            (1, "EdDSA"),
        ]
        rotations = auditor.find("key.rotate", result="ok")
        assert [(r["purpose"], r["trigger"], r["version"]) for r in rotations] == [
            ("session-signing", "startup", 2)
        ]
        # A scheduled or manual rotation keeps the algorithm; switching back is explicit.
        assert await a.rotate("session-signing") == 3
        assert a.signer("session-signing").algorithm == "ES256"
        assert await a.rotate("session-signing", algorithm=SigningAlgorithm.EDDSA) == 4
        assert a.signer("session-signing").algorithm == "EdDSA"
    finally:
        await a.close()
        await b.close()
    reopened = await open_manager(tmp_path)  # through the store and the codec
    try:
        assert [s.algorithm for s in reopened.verifiers("session-signing")] == [
            "EdDSA",
            "ES256",
            "ES256",
            "EdDSA",
        ]
    finally:
        await reopened.close()


@pytest.mark.parametrize("purpose", ["upstream-signing", "audit-checkpoint"])
async def test_backend_and_audit_keys_stay_ed25519(manager: KeyManager, purpose: str) -> None:
    with pytest.raises(KeyStateError, match="signs with Ed25519 only"):
        await manager.ensure_algorithm(purpose, SigningAlgorithm.ES256)
    with pytest.raises(KeyStateError, match="signs with Ed25519 only"):
        await manager.rotate(purpose, algorithm=SigningAlgorithm.ES256)
    assert manager.signer(purpose).algorithm == "EdDSA"
    assert await manager.ensure_algorithm(purpose, SigningAlgorithm.EDDSA) is None


async def test_ensure_algorithm_refuses_a_non_signing_purpose(manager: KeyManager) -> None:
    with pytest.raises(KeyStateError, match="holds aead keys"):
        await manager.ensure_algorithm("mfa-secrets", SigningAlgorithm.ES256)


async def test_a_sealed_manager_switches_algorithm_when_it_unseals(manager: KeyManager) -> None:
    await manager.seal(actor="test")
    assert await manager.ensure_algorithm("session-signing", SigningAlgorithm.ES256) is None
    await manager.unseal(actor="test")
    assert manager.signer("session-signing").algorithm == "ES256"


async def test_without_a_requirement_unseal_keeps_the_algorithm(manager: KeyManager) -> None:
    await manager.seal(actor="test")
    await manager.unseal(actor="test")
    assert manager.signer("session-signing").algorithm == "EdDSA"
