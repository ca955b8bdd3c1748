"""Building the worker's :class:`~proxy.authn.gate.Gate`: proofs, session store, login verifier."""

from __future__ import annotations

import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from audit import Auditor
from kms_client import KeyManager, SigningAlgorithm
from kms_client.rng import random_bytes
from proxy.auth.claims import ReplayGuard
from proxy.auth.dpop import DPoPNonces, DPoPVerifier
from proxy.auth.jose import HmacKey
from proxy.auth.login_assertion import LoginAssertionVerifier
from proxy.authn.config import LoginAssertionSettings
from proxy.authn.exchange import Prover
from proxy.authn.gate import Gate
from proxy.authn.service import SessionService
from proxy.mfa.service import open_mfa_service
from proxy.oidc.config import OidcConfig
from proxy.oidc.flow import OidcRelyingParty
from proxy.oidc.sealer import AesGcmFlowSealer
from proxy.proof.identity import IdentityMinter
from proxy.proof.message_signature import UpstreamSigner
from proxy.settings import Settings
from tokengate.errors import ConfigError


def _read_secret(path: Path) -> bytes:
    info = path.stat()
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"sessions.login.secret_file: {path} is readable by others (chmod 600)")
    secret = path.read_bytes()
    # The secret is the file's bytes; only one trailing newline (an editor's) is not part of it.
    secret = secret.removesuffix(b"\n").removesuffix(b"\r")
    if len(secret) < 32:
        raise ConfigError("sessions.login.secret_file: the secret must be at least 32 bytes")
    return secret


def login_verifier(
    config: LoginAssertionSettings, *, base: Path, replay: ReplayGuard
) -> LoginAssertionVerifier:
    """The verifier of the backend's login assertions (file paths relative to ``base``)."""
    key: HmacKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
    if config.secret_file is not None and config.algorithm == "HS256":
        key = HmacKey(_read_secret(base / config.secret_file))
    elif config.public_key_file is not None and config.algorithm != "HS256":
        loaded = load_pem_public_key((base / config.public_key_file).read_bytes())
        if not isinstance(loaded, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            raise ConfigError("sessions.login.public_key_file: not an Ed25519 or P-256 key")
        key = loaded
    else:
        raise ConfigError("sessions.login: no key for the configured algorithm")
    return LoginAssertionVerifier(
        key=key,
        audience=config.audience,
        issuer=config.issuer,
        replay=replay,
    )


@asynccontextmanager
async def open_gate(
    settings: Settings, *, keys: KeyManager, auditor: Auditor, workers: int
) -> AsyncIterator[Gate]:
    """The gate for this worker; the session store is open until the context exits."""
    cfg = settings.gateway.sessions
    # Before any token is issued: the session-signing primary must use the configured
    # algorithm (a switch rotates once across replicas; a sealed manager switches on unseal).
    await keys.ensure_algorithm(
        "session-signing", SigningAlgorithm(cfg.access_algorithm), actor="startup"
    )
    upstream_key = lambda: keys.signer("upstream-signing")  # noqa: E731 - resolved per use (rotation)
    prover = Prover(
        minter=IdentityMinter(signer=upstream_key, issuer=cfg.issuer, random_bytes=random_bytes),
        signer=UpstreamSigner(signer=upstream_key, random_bytes=random_bytes),
    )
    store = cfg.store.open(data_dir=settings.data_dir, workers=workers)
    await store.open()
    try:
        login = (
            login_verifier(cfg.login, base=settings.config_path.parent, replay=store)
            if cfg.login is not None
            else None
        )
        service = SessionService(cfg, store=store, keys=keys, auditor=auditor, login=login)
        mfa = await open_mfa_service(
            cfg.mfa,
            data_dir=settings.data_dir,
            keys=keys,
            guard=store,
            production=settings.production,
        )
        oidc = _relying_party(cfg.oidc, keys=keys, replay=store) if cfg.oidc else None
        nonces = DPoPNonces(
            lambda: [
                keys.derive_key(
                    "hash", salt=b"tokengate/dpop-nonce", info=b"tokengate/dpop-nonce/v1"
                ).key
            ],
            time.time,
        )
        dpop = DPoPVerifier(replay=store, nonces=nonces, max_age=cfg.dpop.max_age)
        try:
            yield Gate(
                prover=prover,
                service=service,
                strip=tuple(cfg.strip_headers),
                mfa=mfa,
                oidc=oidc,
                dpop=dpop,
                dpop_nonces=nonces,
            )
        finally:
            if oidc is not None:
                await oidc.aclose()
            await mfa.store.close()
    finally:
        await store.close()


def _relying_party(
    config: OidcConfig, *, keys: KeyManager, replay: ReplayGuard
) -> OidcRelyingParty:
    """The OIDC client; its flow cookies are sealed under a key derived from the keyring."""
    derived = keys.derive_key("hash", salt=b"tokengate/oidc-flow", info=b"tokengate/oidc-flow/v1")
    sealer = AesGcmFlowSealer(derived.key, ttl=config.login_timeout)
    return OidcRelyingParty(config, sealer=sealer, replay=replay)
