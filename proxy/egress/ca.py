"""The relay's CA: made on first use, kept wrapped under the keyring, never on disk in the clear.

Rules:
- The CA is one record, ``egress/ca``, of the keyring store's wrapped
  secrets (:class:`kms_client.secrets.WrappedSecrets`) under its own aead
  purpose ``egress-ca`` (:data:`CA_PURPOSE`; destroying another purpose's keys
  never touches it): the PKCS#8 private key and the
  certificate, as PEM, encrypted together under the purpose's primary key
  with the record name bound as context. Every replica sharing the keyring
  store gets the same CA; ``tokengate keys rewrap`` moves it to a new
  primary like any other secret.
- The first ``egress serve`` or ``egress ca`` that finds no record makes the
  CA (RSA 3072, the key type mitmproxy's certificate store signs with; a
  self-signed CA certificate, ``pathlen 0``, key usage certificate and CRL
  signing, valid ``VALIDITY``), stores it, audits ``egress.ca_create`` with
  its SHA-256 fingerprint, and reads the record back, so that replicas
  racing at first start settle on the one that was stored last. Start one
  replica (or run ``egress ca``) first to avoid the race altogether.
- A record that does not decrypt, does not parse, or whose key does not
  match its certificate stops the relay: it is never silently replaced.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kms_client.audit_port import Auditor
from kms_client.secrets import WrappedSecrets
from tokengate.errors import GatewayError

CA_PURPOSE = "egress-ca"  # the keyring purpose the CA record is encrypted under
RECORD = "egress/ca"
KEY_SIZE = 3072
VALIDITY = dt.timedelta(days=5 * 365)
BACKDATE = dt.timedelta(days=2)  # tolerate clients whose clocks run late


class CaError(GatewayError):
    """The stored CA cannot be used: the relay does not start."""

    status = 500
    code = "config_error"


@dataclass(frozen=True, slots=True)
class RelayCa:
    """The CA's key and certificate (the key never appears in a repr, a log or an error)."""

    key: rsa.RSAPrivateKey = field(repr=False)
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        """The certificate to install in the backend's trust store."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the certificate (DER): how the audit log and operators name it."""
        return self.cert.fingerprint(hashes.SHA256()).hex()

    def to_record(self) -> bytes:
        """WARNING: the private key in the clear (PKCS#8 PEM then the certificate PEM)."""
        key = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return key + self.cert_pem

    @classmethod
    def from_record(cls, record: bytes) -> RelayCa:
        """Parse a record; CaError (naming no content) if it is not a usable CA."""
        try:
            key = serialization.load_pem_private_key(record, password=None)
            cert = x509.load_pem_x509_certificate(record[record.index(b"-----BEGIN CERTIFICATE") :])
        except ValueError as e:
            raise CaError("egress: the stored CA record does not parse") from e
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CaError("egress: the stored CA key is not an RSA key")
        if key.public_key().public_numbers() != _rsa_public(cert).public_numbers():
            raise CaError("egress: the stored CA key does not match its certificate")
        return cls(key, cert)

    @classmethod
    def generate(cls, common_name: str, *, now: dt.datetime) -> RelayCa:
        """A fresh CA valid from ``now`` (minus a small backdate) for :data:`VALIDITY`."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tokengate"),
            ]
        )
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)


def _rsa_public(cert: x509.Certificate) -> rsa.RSAPublicKey:
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise CaError("egress: the stored CA certificate does not hold an RSA key")
    return public


async def load_or_create_ca(
    secrets: WrappedSecrets,
    *,
    common_name: str,
    audit: Auditor,
    actor: str,
    now: dt.datetime | None = None,
) -> RelayCa:
    """The stored CA, made (and audited) first if there is none."""
    record = await secrets.get(RECORD)
    if record is None:
        made = await asyncio.to_thread(
            RelayCa.generate, common_name, now=now or dt.datetime.now(dt.UTC)
        )
        await audit.emit(
            "egress.ca_create",
            fingerprint=made.fingerprint,
            common_name=common_name,
            actor=actor,
        )
        await secrets.put(RECORD, made.to_record())
        record = await secrets.get(RECORD)
        if record is None:
            raise CaError("egress: the CA record vanished right after it was stored")
    return RelayCa.from_record(record)
