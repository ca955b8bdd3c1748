"""The gateway's side of request proofs, for the demo app's tests.

Requests are signed with tokengate's own code (``proxy.proof``), keys are
served from a real JWKS endpoint: the app's checks meet what the gateway sends.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kms_client.signing import public_jwk
from proxy.auth.jose import LocalSigningKey
from proxy.proof.digest import content_digest
from proxy.proof.identity import Identity, IdentityMinter
from proxy.proof.message_signature import RequestView, UpstreamSigner

IDENTITY_AUDIENCE = "demo-app"
ANONYMOUS = Identity(sub="", sid="", roles=(), tenant=None, amr=(), acr="", auth_time=0)


def new_key() -> LocalSigningKey:
    """A throwaway Ed25519 upstream-signing key (kid: its RFC 7638 thumbprint)."""
    return LocalSigningKey.ed25519(Ed25519PrivateKey.generate())


def jwk_of(key: LocalSigningKey) -> dict[str, str]:
    """The key's public JWK exactly as the gateway publishes it."""
    public = key.verification_key
    assert isinstance(public, Ed25519PublicKey)
    return public_jwk(public, kid=key.kid)


def user(sub: str, roles: tuple[str, ...] = ("user",)) -> Identity:
    """A session's identity facts, as the gateway would mint them."""
    return Identity(
        sub=sub, sid=f"sid-{sub}", roles=roles, tenant="demo", amr=("pwd",), acr="", auth_time=1
    )


@dataclass
class JwksServer:
    """A real HTTP endpoint serving a key set the test changes (and counting fetches)."""

    keys: list[dict[str, str]]
    status: int = 200
    fetches: int = 0
    body: bytes | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/jwks.json", self._serve)
        return app

    async def _serve(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.body is not None:
            return web.Response(body=self.body, status=self.status, content_type="application/json")
        return web.json_response({"keys": self.keys}, status=self.status)


@dataclass
class Gateway:
    """Mints identity tokens and signs requests the way tokengate forwards them."""

    key: LocalSigningKey
    authority: str
    identity_key: LocalSigningKey | None = None
    minted: dict[str, str] = field(default_factory=dict)

    def identity(
        self,
        who: Identity,
        *,
        now: float,
        audience: str = IDENTITY_AUDIENCE,
        key: LocalSigningKey | None = None,
    ) -> str:
        """A fresh ``Tokengate-Identity`` token for ``who``."""
        signer = key or self.identity_key or self.key
        minter = IdentityMinter(signer=lambda: signer, issuer="tokengate", random_bytes=os.urandom)
        return minter.token(who, audience=audience, now=now)

    def headers(
        self,
        method: str,
        target: str,
        *,
        now: float,
        who: Identity | None = None,
        identity: str | None = None,
        body: bytes | None = b"",
        streamed: bool = False,
        extra: Mapping[str, str] | None = None,
        signed_at: float | None = None,
    ) -> dict[str, str]:
        """Headers of a forwarded request: identity, digest or length, signature.

        ``body`` is what the request will carry (None: no body at all); buffered
        requests cover its Content-Digest, streamed ones its Content-Length.
        """
        headers = dict(extra or {})
        headers["Tokengate-Identity"] = identity or self.identity(who or user("alice"), now=now)
        if not streamed:
            headers["Content-Digest"] = content_digest(body or b"")
        elif body is not None:
            headers["Content-Length"] = str(len(body))
        view = RequestView.build(
            method=method,
            authority=self.authority,
            target=target,
            headers=headers.items(),
            scheme="http",
        )
        signer = UpstreamSigner(signer=lambda: self.key, random_bytes=os.urandom)
        when = now if signed_at is None else signed_at
        headers.update(signer.sign(view, now=when, streamed=streamed).as_dict())
        return headers
