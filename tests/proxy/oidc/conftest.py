"""Fixtures for the OIDC relying-party tests: a real provider, a clock, a browser stand-in."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest

from proxy.auth.claims import MemoryReplayGuard
from proxy.oidc import AesGcmFlowSealer, OidcConfig, OidcRelyingParty
from tests.proxy.oidc.docserver import DocServer, serve
from tests.proxy.oidc.provider import CLIENT_ID, CLIENT_SECRET, Provider, start_provider


class Clock:
    """Wall time plus an adjustable offset (the provider stamps tokens with real time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Rp:
    rp: OidcRelyingParty
    sealer: AesGcmFlowSealer
    clock: Clock
    provider: Provider


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """One RS256 provider (client_secret_basic) shared by a test module."""
    op = start_provider(tmp_path_factory.mktemp("op"))
    yield op
    op.stop()


def rp_config(op: Provider, **overrides: object) -> OidcConfig:
    values: dict[str, object] = {
        "issuer": op.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "claims": {"roles": "roles", "tenant": "tenant"},
        "ca_file": op.ca_file,
    }
    values.update(overrides)
    return OidcConfig.model_validate(values)


def make_rp(
    op: Provider,
    clock: Clock | None = None,
    sealer: AesGcmFlowSealer | None = None,
    **overrides: object,
) -> Rp:
    clock = clock or Clock()
    config = rp_config(op, **overrides)
    sealer = sealer or AesGcmFlowSealer(
        AesGcmFlowSealer.generate_key(), ttl=config.login_timeout, clock=clock
    )
    rp = OidcRelyingParty(config, sealer=sealer, replay=MemoryReplayGuard(now=clock), clock=clock)
    return Rp(rp, sealer, clock, op)


@pytest.fixture
async def docserver() -> AsyncIterator[DocServer]:
    """A server of test-controlled JSON documents (cache and transport rules only)."""
    async with serve() as server:
        yield server


@pytest.fixture
async def rp(provider: Provider) -> AsyncIterator[Rp]:
    made = make_rp(provider)
    yield made
    await made.rp.aclose()


async def authorize(op: Provider, authorization_url: str) -> str:
    """Act as the browser: follow the provider's redirects (keeping cookies) back to the callback.

    Returns the callback's raw query string.
    """
    context = ssl.create_default_context(cafile=str(op.ca_file)) if op.ca_file else True
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        url = authorization_url
        for _ in range(12):
            async with browser.get(url, allow_redirects=False, ssl=context) as resp:
                location = resp.headers.get("Location")
                if resp.status not in (302, 303) or location is None:
                    body = await resp.text()
                    raise AssertionError(f"provider answered {resp.status}: {body[:500]}")
            url = urljoin(url, location)
            if url.startswith(op.redirect_uri + "?"):
                return urlsplit(url).query
    raise AssertionError("too many redirects at the provider")


async def login_query(made: Rp, return_to: str = "/", **start: object) -> tuple[str, str]:
    """Start a login and walk the provider: ``(callback query, flow cookie)``."""
    begun = await made.rp.start(origin=made.provider.origin, return_to=return_to, **start)  # type: ignore[arg-type]
    return await authorize(made.provider, begun.authorization_url), begun.cookie_value
