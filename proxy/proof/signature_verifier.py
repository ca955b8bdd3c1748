"""Verification of RFC 9421 signatures as tokengate makes them (tests, demo, backends).

Rules:

- The member under the expected label is read from ``Signature-Input`` and
  ``Signature`` (RFC 8941 dictionaries, duplicates refused); the covered
  components are plain sf-strings without parameters, and only the metadata
  parameters of RFC 9421 section 2.3 are allowed.
- ``keyid`` names an Ed25519 key in the caller's mapping; ``alg``, when
  present, is ``ed25519``; ``created`` is required and within the age window;
  ``expires``, when present, is in the future; ``tag`` must match when the
  caller expects one.
- Every component the caller requires must be covered; with a body, a covered
  ``content-digest`` must prove it.
- Every failure raises the one opaque :class:`ProofError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proxy.proof.digest import verify_content_digest
from proxy.proof.errors import ProofError
from proxy.proof.message_signature import (
    ALG_ED25519,
    LABEL,
    RequestView,
    SignatureParams,
    signature_base,
)
from proxy.proof.structured import InnerList, Item, parse_dictionary

_PARAMS: Final = frozenset({"created", "expires", "nonce", "alg", "keyid", "tag"})


@dataclass(frozen=True)
class VerifiedSignature:
    """What a valid signature says about the request."""

    keyid: str
    created: int
    components: tuple[str, ...]
    nonce: str | None
    tag: str | None


class MessageVerifier:
    """Verifies one labelled Ed25519 signature on a request."""

    def __init__(
        self,
        *,
        keys: Mapping[str, Ed25519PublicKey],
        label: str = LABEL,
        required: Sequence[str] = ("@method", "@authority", "@path", "@query"),
        max_age: float = 60.0,
        max_future: float = 5.0,
    ) -> None:
        self._keys = keys
        self._label = label
        self._required = tuple(required)
        self._max_age = max_age
        self._max_future = max_future

    def verify(
        self,
        message: RequestView,
        *,
        now: float,
        body: bytes | None = None,
        expect_tag: str | None = None,
    ) -> VerifiedSignature:
        """Check the signature; :class:`ProofError` for anything wrong."""
        member, signature = self._read(message)
        params = _params(member)
        missing = set(self._required) - set(params.components)
        if missing:
            raise ProofError("signature: a required component is not covered")
        if expect_tag is not None and params.tag != expect_tag:
            raise ProofError("signature: unexpected tag")
        if not now - self._max_age <= params.created <= now + self._max_future:
            raise ProofError("signature: created outside the window")
        if params.expires is not None and params.expires <= now:
            raise ProofError("signature: expired")
        key = self._keys.get(params.keyid)
        if key is None:
            raise ProofError("signature: unknown keyid")
        try:
            key.verify(signature, signature_base(message, member))
        except (KeyError, ValueError) as e:
            raise ProofError("signature: covered component missing or unsignable") from e
        except InvalidSignature as e:
            raise ProofError("signature: mismatch") from e
        if body is not None:
            digest = message.fields.get("content-digest")
            if "content-digest" not in params.components or digest is None:
                raise ProofError("signature: body not covered by a content-digest")
            verify_content_digest(", ".join(digest), body)
        return VerifiedSignature(
            params.keyid, params.created, params.components, params.nonce, params.tag
        )

    def _read(self, message: RequestView) -> tuple[InnerList, bytes]:
        inputs = message.fields.get("signature-input")
        signatures = message.fields.get("signature")
        if not inputs or not signatures:
            raise ProofError("signature: fields missing")
        member = parse_dictionary(", ".join(inputs)).get(self._label)
        value = parse_dictionary(", ".join(signatures)).get(self._label)
        if not isinstance(member, InnerList) or not isinstance(value, Item):
            raise ProofError("signature: label missing")
        if not isinstance(value.value, bytes) or len(value.value) != 64 or value.params:
            raise ProofError("signature: not an ed25519 signature")
        return member, value.value


def _params(member: InnerList) -> SignatureParams:
    components = []
    for item in member.items:
        if not isinstance(item.value, str) or item.params:
            raise ProofError("signature: unsupported component identifier")
        components.append(item.value)
    p = member.params
    if not set(p) <= _PARAMS:
        raise ProofError("signature: unknown parameter")
    created, expires = p.get("created"), p.get("expires")
    keyid, alg, nonce, tag = p.get("keyid"), p.get("alg"), p.get("nonce"), p.get("tag")
    if type(created) is not int or (expires is not None and type(expires) is not int):
        raise ProofError("signature: created or expires is not an integer")
    if not isinstance(keyid, str) or alg not in (None, ALG_ED25519):
        raise ProofError("signature: keyid or alg unacceptable")
    if not all(v is None or isinstance(v, str) for v in (nonce, tag)):
        raise ProofError("signature: nonce or tag is not a string")
    return SignatureParams(
        components=tuple(components),
        created=created,
        keyid=keyid,
        alg=alg if isinstance(alg, str) else None,
        nonce=nonce if isinstance(nonce, str) else None,
        tag=tag if isinstance(tag, str) else None,
        expires=expires if isinstance(expires, int) else None,
    )
