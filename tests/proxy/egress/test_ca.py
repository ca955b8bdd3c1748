"""The relay's CA: made once, stored wrapped under the keyring, refused when damaged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from kms_client.secrets import WrappedSecrets
from proxy.egress.ca import CA_PURPOSE, RECORD, CaError, RelayCa, load_or_create_ca
from tests.kms_client.support import RecordingAuditor, open_manager

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_a_generated_ca_is_a_ca_for_issuing_only() -> None:
    ca = RelayCa.generate("test CA", now=NOW)
    cert = ca.cert
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (constraints.ca, constraints.path_length) == (True, 0)
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc
    assert ca.key.key_size == 3072
    assert "PRIVATE" not in repr(ca)
    assert "key=" not in repr(ca)


def test_the_record_round_trips_and_refuses_a_foreign_key() -> None:
    ca, other = RelayCa.generate("a", now=NOW), RelayCa.generate("b", now=NOW)
    again = RelayCa.from_record(ca.to_record())
    assert again.fingerprint == ca.fingerprint
    spliced = other.to_record().split(b"-----BEGIN CERTIFICATE")[0] + ca.cert_pem
    with pytest.raises(CaError, match="does not match"):
        RelayCa.from_record(spliced)
    with pytest.raises(CaError, match="does not parse"):
        RelayCa.from_record(b"garbage")
    with pytest.raises(CaError, match="does not parse"):
        RelayCa.from_record(ca.to_record().split(b"-----BEGIN CERTIFICATE")[0])


async def test_made_once_stored_wrapped_and_audited(tmp_path: Path) -> None:
    auditor = RecordingAuditor()
    manager = await open_manager(tmp_path, auditor)
    try:
        secrets = WrappedSecrets(manager, purpose=CA_PURPOSE)
        first = await load_or_create_ca(
            secrets, common_name="relay", audit=auditor, actor="test", now=NOW
        )
        second = await load_or_create_ca(
            secrets, common_name="relay", audit=auditor, actor="test", now=NOW
        )
        assert first.fingerprint == second.fingerprint
        created = [f for e, f in auditor.events if e == "egress.ca_create"]
        assert created == [
            {"fingerprint": first.fingerprint, "common_name": "relay", "actor": "test"}
        ]
        stored = await manager.store.secret_get(secrets.purpose, RECORD)
        assert stored is not None
        assert secrets.purpose == "egress-ca"  # its own purpose, not the MFA secrets'
        assert await manager.store.secret_get("mfa-secrets", RECORD) is None
        assert b"PRIVATE KEY" not in stored
        assert first.cert_pem not in stored
    finally:
        await manager.close()
