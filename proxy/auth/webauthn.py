"""WebAuthn as a second factor: ceremony options and response checks over py_webauthn.

Rules:
- The relying party (rp id, name, allowed origins) comes from config and is
  validated once: every origin is ``https://`` (``http://`` only for
  localhost) and its host is the rp id or a subdomain of it.
- Challenges are made by the caller from the keyring RNG (32 bytes) and kept
  server-side, single use, with a TTL; this module only puts them into
  options and checks that the response echoes them.
- Registration asks for no attestation (``none``), prefers user verification
  and discourages resident keys (a second factor, not a passkey login);
  algorithms are pinned to ES256, EdDSA and RS256.
- Authentication lists the subject's own credentials (``allowCredentials``),
  prefers user verification, checks the credential id and user handle against
  the stored credential, and refuses a signature counter that did not grow
  (counters that are both zero are authenticators without one). The counter
  rule runs only after the signature verified, so :class:`SignCountRegression`
  is a real clone-or-replay signal, never something a forger can trigger.
  The caller stores the new counter with a compare-and-set.
- Every failure is one opaque :class:`WebAuthnError`; the library's message
  goes to ``reason`` for logs.

Pure: no IO (py_webauthn parses and verifies in memory).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import parse_authentication_credential_json
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from proxy.auth.errors import AuthError

CHALLENGE_BYTES = 32
USER_HANDLE_BYTES = 32
ALGORITHMS = (
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
)


class WebAuthnError(AuthError):
    """A WebAuthn response that does not verify (one opaque error; ``reason`` for logs)."""

    code = "mfa_failed"

    def __init__(self, reason: str) -> None:
        super().__init__("webauthn: verification failed", reason=reason)


class SignCountRegression(WebAuthnError):
    """A correctly signed assertion whose counter did not grow: a cloned key or a replay."""


@dataclass(frozen=True)
class RelyingParty:
    """Who the credentials are for: rp id, display name, the exact origins allowed."""

    rp_id: str
    name: str
    origins: tuple[str, ...]
    timeout_ms: int = 60_000
    require_user_verification: bool = False

    def __post_init__(self) -> None:
        if not self.rp_id or self.rp_id != self.rp_id.lower() or "/" in self.rp_id:
            raise ValueError("webauthn: rp_id must be a lowercase host name")
        if not self.name:
            raise ValueError("webauthn: rp name must not be empty")
        if not self.origins:
            raise ValueError("webauthn: at least one origin is required")
        for origin in self.origins:
            _check_origin(origin, self.rp_id)
        if not 10_000 <= self.timeout_ms <= 600_000:
            raise ValueError("webauthn: timeout_ms must be between 10000 and 600000")


@dataclass(frozen=True)
class StoredCredential:
    """A registered credential as the store keeps it."""

    credential_id: bytes
    public_key: bytes = field(repr=False)  # COSE_Key
    sign_count: int
    user_handle: bytes = field(repr=False)


@dataclass(frozen=True)
class NewCredential:
    """What a verified registration yields, to be stored for the subject."""

    credential_id: bytes
    public_key: bytes = field(repr=False)
    sign_count: int
    aaguid: str
    user_verified: bool
    backed_up: bool


@dataclass(frozen=True)
class Assertion:
    """What a verified authentication yields."""

    credential_id: bytes
    new_sign_count: int
    user_verified: bool


def registration_options(
    rp: RelyingParty,
    *,
    user_handle: bytes,
    user_name: str,
    challenge: bytes,
    exclude: Sequence[bytes] = (),
) -> str:
    """JSON options for ``navigator.credentials.create()``."""
    _check_random(challenge, CHALLENGE_BYTES, "challenge")
    _check_random(user_handle, USER_HANDLE_BYTES, "user handle")
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_name=user_name,
        user_id=user_handle,
        challenge=challenge,
        timeout=rp.timeout_ms,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=_uv(rp),
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in exclude],
        supported_pub_key_algs=list(ALGORITHMS),
    )
    return options_to_json(options)


def verify_registration(rp: RelyingParty, response_json: str, *, challenge: bytes) -> NewCredential:
    """Check a ``create()`` response against the stored challenge; WebAuthnError otherwise."""
    try:
        verified = verify_registration_response(
            credential=response_json,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            require_user_verification=rp.require_user_verification,
            supported_pub_key_algs=list(ALGORITHMS),
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as e:
        raise WebAuthnError(f"registration: {e}") from e
    return NewCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        user_verified=verified.user_verified,
        backed_up=verified.credential_backed_up,
    )


def authentication_options(rp: RelyingParty, *, challenge: bytes, allow: Sequence[bytes]) -> str:
    """JSON options for ``navigator.credentials.get()`` listing the subject's credentials."""
    _check_random(challenge, CHALLENGE_BYTES, "challenge")
    if not allow:
        raise ValueError("webauthn: no credentials to allow")
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge,
        timeout=rp.timeout_ms,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in allow],
        user_verification=_uv(rp),
    )
    return options_to_json(options)


def credential_id_of(response_json: str) -> bytes:
    """The credential id a ``get()`` response claims (to look up the stored credential)."""
    try:
        return parse_authentication_credential_json(response_json).raw_id
    except (WebAuthnException, ValueError, TypeError, KeyError) as e:
        raise WebAuthnError(f"authentication: {e}") from e


def verify_authentication(
    rp: RelyingParty,
    response_json: str,
    *,
    challenge: bytes,
    credential: StoredCredential,
) -> Assertion:
    """Check a ``get()`` response with the stored credential; WebAuthnError otherwise."""
    try:
        parsed = parse_authentication_credential_json(response_json)
        if not hmac.compare_digest(parsed.raw_id, credential.credential_id):
            raise WebAuthnError("authentication: credential id is not the stored one")
        handle = parsed.response.user_handle
        if handle is not None and not hmac.compare_digest(handle, credential.user_handle):
            raise WebAuthnError("authentication: user handle is not the stored one")
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            credential_public_key=credential.public_key,
            credential_current_sign_count=0,  # counter rule applied below, after the signature
            require_user_verification=rp.require_user_verification,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as e:
        raise WebAuthnError(f"authentication: {e}") from e
    new, old = verified.new_sign_count, credential.sign_count
    if (new > 0 or old > 0) and new <= old:
        raise SignCountRegression(f"authentication: sign count {new} not above stored {old}")
    return Assertion(
        credential_id=verified.credential_id,
        new_sign_count=verified.new_sign_count,
        user_verified=verified.user_verified,
    )


def _uv(rp: RelyingParty) -> UserVerificationRequirement:
    if rp.require_user_verification:
        return UserVerificationRequirement.REQUIRED
    return UserVerificationRequirement.PREFERRED


def _check_random(value: bytes, size: int, name: str) -> None:
    if len(value) != size:
        raise ValueError(f"webauthn: {name} must be {size} random bytes")


def _check_origin(origin: str, rp_id: str) -> None:
    parts = urlsplit(origin)
    host = parts.hostname or ""
    local = host == "localhost"
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ValueError(f"webauthn: origin '{origin}' must be https (http only for localhost)")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"webauthn: origin '{origin}' must be scheme://host[:port] only")
    if origin != origin.lower() or not (host == rp_id or host.endswith("." + rp_id)):
        raise ValueError(f"webauthn: origin '{origin}' is not within rp_id '{rp_id}'")
