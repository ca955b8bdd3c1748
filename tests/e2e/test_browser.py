"""A real browser (Debian's Chromium, driven by Playwright) walks the demo behind tokengate:
login, a protected page, TOTP step-up, a security key added with Chromium's virtual
WebAuthn authenticator, logout, and a WebAuthn step-up after the next login."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Page, async_playwright

from tests.conftest import free_port
from tests.integration.process import TOKENGATE
from tests.proxy.authn.test_mfa_routes import secret_of, totp_code

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[str]:
    port, admin = free_port(), free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(TOKENGATE, "demo", "--port", str(port), "--admin-port", str(admin)),
                *("--data-dir", str(tmp_path / "demo"), "--workers", "1"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as s:
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    yield f"http://localhost:{port}"  # a host name: WebAuthn refuses IP addresses
    proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(proc.wait, 30)


async def call(
    page: Page, method: str, path: str, body: object | None = None
) -> tuple[int, object]:
    """fetch() from inside the page: same origin, the browser's own cookies."""
    result = await page.evaluate(
        """async ([method, path, body]) => {
            const init = {method, headers: {}};
            if (body !== null) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
            const r = await fetch(path, init);
            const text = await r.text();
            let parsed = null; try { parsed = JSON.parse(text); } catch (e) {}
            return [r.status, parsed];
        }""",
        [method, path, body],
    )
    return int(result[0]), result[1]


async def webauthn(page: Page, ceremony: str) -> int:
    """One WebAuthn ceremony in the page: options from the gateway, the browser's credential back."""
    return int(
        await page.evaluate(
            """async (ceremony) => {
                const post = (path, body) => fetch(path, {method: "POST",
                    headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
                const base = "/.tokengate/mfa/webauthn/" + ceremony;
                const options = await (await post(base + "/options", {})).json();
                const credential = ceremony === "register"
                    ? await navigator.credentials.create(
                        {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)})
                    : await navigator.credentials.get(
                        {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
                const r = await post(base + "/verify", {credential: credential.toJSON()});
                return r.status;
            }""",
            ceremony,
        )
    )


async def test_login_protected_page_step_up_and_logout(demo: str) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await browser.new_page()
            await page.goto(f"{demo}/")
            await page.fill("#login-form input[name=username]", "alice")
            await page.fill("#login-form input[name=password]", "alice")
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("#app-section:not([hidden])")
            assert (await page.text_content("#whoami-name") or "").startswith("alice")
            cookies = {c["name"]: c for c in await page.context.cookies()}
            assert cookies["__Host-tg-at"]["httpOnly"]
            assert cookies["__Host-tg-at"]["secure"]

            # The protected page's data comes through the gateway with the session.
            await page.fill("#create-form input[name=name]", "Ada")
            await page.fill("#create-form input[name=email]", "ada@example.com")
            await page.fill("#create-form input[name=ssn]", "078-05-1120")
            await page.fill("#create-form input[name=card_number]", "4242424242424242")
            await page.click("#create-form button[type=submit]")
            await page.wait_for_selector("#records tr")
            status, listing = await call(page, "GET", "/api/users")
            assert status == 200
            record = listing["users"][0]  # type: ignore[index]

            # Changing a record needs a second factor: step up with TOTP.
            update = {k: record[k] for k in ("name", "email", "ssn", "card_number")}
            status, body = await call(page, "PUT", f"/api/users/{record['id']}", update)
            assert (status, body["error"]) == (401, "insufficient_user_authentication")  # type: ignore[index]
            status, enrolled = await call(page, "POST", "/.tokengate/mfa/totp/enrol", {})
            assert status == 200
            secret = secret_of(enrolled["uri"])  # type: ignore[index]
            status, _ = await call(
                page, "POST", "/.tokengate/mfa/totp/confirm", {"code": totp_code(secret)}
            )
            assert status == 200
            # The confirming step is spent; the next one is inside the one-step window.
            status, _ = await call(
                page, "POST", "/.tokengate/mfa/totp/verify", {"code": totp_code(secret, 1)}
            )
            assert status == 200
            status, _ = await call(page, "PUT", f"/api/users/{record['id']}", update)
            assert status == 200

            # With MFA passed, add a security key (Chromium's virtual authenticator).
            cdp = await page.context.new_cdp_session(page)
            await cdp.send("WebAuthn.enable", {"enableUI": False})
            await cdp.send(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                        "automaticPresenceSimulation": True,
                    }
                },
            )
            assert await webauthn(page, "register") == 200

            # Logout ends the session in the gateway too.
            await page.click("#logout")
            await page.wait_for_selector("#login-section:not([hidden])")
            status, _ = await call(page, "GET", "/api/users")
            assert status == 401

            # A new login is password-only: the key steps it up this time.
            await page.fill("#login-form input[name=username]", "alice")
            await page.fill("#login-form input[name=password]", "alice")
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("#app-section:not([hidden])")
            status, _ = await call(page, "PUT", f"/api/users/{record['id']}", update)
            assert status == 401
            assert await webauthn(page, "authenticate") == 200
            status, _ = await call(page, "PUT", f"/api/users/{record['id']}", update)
            assert status == 200
        finally:
            await browser.close()


async def test_dpop_helper_binds_the_session_to_a_non_extractable_browser_key(demo: str) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await browser.new_page()
            await page.goto(f"{demo}/")
            result = await page.evaluate(
                """async () => {
                    const plain = globalThis.fetch.bind(globalThis);
                    const dpop = await import("/.tokengate/dpop.js");
                    await dpop.install();  // fetch now adds proofs for this origin
                    const login = await fetch("/login", {method: "POST",
                        headers: {"Content-Type": "application/json"},
                        body: JSON.stringify({username: "alice", password: "alice"})});
                    const withProof = await fetch("/api/users");
                    const withoutProof = await plain("/api/users");
                    const key = await dpop.idbKeyStore().load();
                    return [login.status, withProof.status, withoutProof.status,
                            key.privateKey.extractable, key.privateKey.algorithm.name];
                }"""
            )
        finally:
            await browser.close()
    login, with_proof, without_proof, extractable, algorithm = result
    assert login == 200
    assert with_proof == 200
    assert without_proof == 401  # the session is bound to the browser's key
    assert extractable is False
    assert algorithm == "ECDSA"
