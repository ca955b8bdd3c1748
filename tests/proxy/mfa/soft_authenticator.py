"""A software WebAuthn authenticator plus browser client, for tests.

It reads the JSON options the relying party sends, makes an ES256 (P-256)
credential, and answers with the exact wire structures a browser returns:
``clientDataJSON``, CBOR ``attestationObject`` with attestation ``none`` and
``authenticatorData`` (rp id hash, flags, big-endian counter, attested
credential data with a COSE_Key), and a DER ECDSA signature over
``authenticatorData || SHA-256(clientDataJSON)`` for assertions. Knobs let a
test lie about the origin, the rp id, the counter or the flags.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_AT = 0x40
AAGUID = bytes.fromhex("00112233445566778899aabbccddeeff")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cose_es256(public_key: ec.EllipticCurvePublicKey) -> bytes:
    numbers = public_key.public_numbers()
    return cbor2.dumps(
        {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    )


@dataclass
class SoftCredential:
    """One credential held by the authenticator."""

    credential_id: bytes
    rp_id: str
    user_handle: bytes
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    counter: int = 0


@dataclass
class SoftAuthenticator:
    """A roaming ES256 authenticator with a signature counter, driven like a browser."""

    origin: str
    credentials: dict[bytes, SoftCredential] = field(default_factory=dict)
    user_verified: bool = True
    counter_step: int = 1

    def create(
        self,
        options_json: str,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        type_: str = "webauthn.create",
        user_present: bool = True,
        reuse: bytes | None = None,
    ) -> str:
        """``navigator.credentials.create()``: a registration response as JSON.

        ``reuse`` presents an existing credential again (what an attacker can
        do with attestation ``none``: claim someone else's public key).
        """
        options = json.loads(options_json)
        assert options["attestation"] == "none"
        assert {p["alg"] for p in options["pubKeyCredParams"]} >= {-7}
        excluded = {unb64url(c["id"]) for c in options.get("excludeCredentials", [])}
        assert not excluded & set(self.credentials), "authenticator already registered"
        rp = rp_id or options["rp"]["id"]
        if reuse is not None:
            cred = self.credentials[reuse]
            key = cred.key
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            cred = SoftCredential(os.urandom(32), rp, unb64url(options["user"]["id"]), key)
            self.credentials[cred.credential_id] = cred
        flags = FLAG_AT | (FLAG_UP if user_present else 0) | (FLAG_UV if self.user_verified else 0)
        attested = AAGUID + struct.pack(">H", len(cred.credential_id)) + cred.credential_id
        auth_data = (
            self._auth_data(rp, flags, cred.counter) + attested + cose_es256(key.public_key())
        )
        client_data = self._client_data(type_, challenge or unb64url(options["challenge"]), origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(cred.credential_id),
                "rawId": b64url(cred.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": ["usb"],
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "cross-platform",
            }
        )

    def get(
        self,
        options_json: str,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        counter: int | None = None,
        credential_id: bytes | None = None,
        user_handle: bytes | None = None,
        sign_with: ec.EllipticCurvePrivateKey | None = None,
        type_: str = "webauthn.get",
    ) -> str:
        """``navigator.credentials.get()``: an assertion response as JSON."""
        options = json.loads(options_json)
        allowed = [unb64url(c["id"]) for c in options["allowCredentials"]]
        cred_id = credential_id or next(c for c in allowed if c in self.credentials)
        cred = self.credentials[cred_id]
        assert options["rpId"] == cred.rp_id
        cred.counter = cred.counter + self.counter_step if counter is None else counter
        flags = FLAG_UP | (FLAG_UV if self.user_verified else 0)
        auth_data = self._auth_data(rp_id or cred.rp_id, flags, cred.counter)
        client_data = self._client_data(type_, challenge or unb64url(options["challenge"]), origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = (sign_with or cred.key).sign(signed, ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": b64url(cred_id),
                "rawId": b64url(cred_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(user_handle or cred.user_handle),
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "cross-platform",
            }
        )

    @staticmethod
    def _auth_data(rp_id: str, flags: int, counter: int) -> bytes:
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", counter)

    def _client_data(self, type_: str, challenge: bytes, origin: str | None) -> bytes:
        body = {
            "type": type_,
            "challenge": b64url(challenge),
            "origin": origin or self.origin,
            "crossOrigin": False,
        }
        return json.dumps(body, separators=(",", ":")).encode()
