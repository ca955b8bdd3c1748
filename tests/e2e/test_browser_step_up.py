"""A real browser (Debian's Chromium via Playwright) is sent to the gateway's MFA page by a
navigation to a page that needs MFA, passes TOTP there, and lands back on that page.

The demo runs as ``tokengate demo`` does (its packaged config and the demo app), plus one
policy file of this test: opening a record as a page (``GET /api/users/{id}``) needs a
second factor passed in the last 15 minutes.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from playwright.async_api import async_playwright

from proxy.cli.demo_cmd import write_demo_config
from tests.conftest import free_port
from tests.e2e.test_browser import ARGS, CHROMIUM, call
from tests.integration.process import start_gateway, wait_ready
from tests.proxy.authn.test_mfa_routes import secret_of, totp_code

pytestmark = pytest.mark.slow
RECORD_PAGE = """
routes:
  - name: record-page
    priority: 10
    match: {methods: [GET], path: "/api/users/{id}"}
    auth: {mfa: true, max_age: 15m}
"""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[str]:
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir(mode=0o700)
    port, admin, app_port = free_port(), free_port(), free_port()
    config = write_demo_config(demo_dir, port=port, admin_port=admin, app_port=app_port)
    extra = demo_dir / "record-page.yaml"
    extra.write_text(RECORD_PAGE)
    doc = yaml.safe_load(config.read_text())
    doc["policies"].append(str(extra))
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    secret = demo_dir / "login.secret"
    secret.write_text(secrets.token_urlsafe(32))
    secret.chmod(0o600)
    gw = start_gateway(config, port, admin)
    app: subprocess.Popen[bytes] | None = None
    try:
        await wait_ready(gw, timeout=60)
        with (demo_dir / "app.log").open("wb") as log:
            app = subprocess.Popen(
                [
                    *(sys.executable, "-m", "demo_backend", "--host", "127.0.0.1"),
                    *("--port", str(app_port), "--data-dir", str(demo_dir / "app")),
                    *("--tokengate-login-secret-file", str(secret)),
                    *("--tokengate-jwks-url", f"{gw.url}/.well-known/tokengate/jwks.json"),
                    *("--tokengate-identity-audience", "demo-app"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as s:
            while True:
                assert app.poll() is None, (demo_dir / "app.log").read_text()
                assert time.monotonic() < deadline, (demo_dir / "app.log").read_text()
                try:
                    async with s.get(f"http://127.0.0.1:{app_port}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        yield f"http://localhost:{port}"
    finally:
        if app is not None:
            await asyncio.to_thread(_stop, app)
        await asyncio.to_thread(gw.stop)


async def test_navigation_to_an_mfa_page_steps_up_on_the_gateway_page_and_returns(
    demo: str,
) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await browser.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            await page.goto(f"{demo}/")
            await page.fill("#login-form input[name=username]", "alice")
            await page.fill("#login-form input[name=password]", "alice")
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("#app-section:not([hidden])")
            created = {
                "name": "Ada",
                "email": "ada@example.com",
                "ssn": "078-05-1120",
                "card_number": "4242424242424242",
            }
            status, record = await call(page, "POST", "/api/users", created)
            assert status in (200, 201), record
            record_id = record["id"]  # type: ignore[index]
            status, enrolled = await call(page, "POST", "/.tokengate/mfa/totp/enrol", {})
            assert status == 200
            secret = secret_of(enrolled["uri"])  # type: ignore[index]
            status, _ = await call(
                page, "POST", "/.tokengate/mfa/totp/confirm", {"code": totp_code(secret)}
            )
            assert status == 200

            # The record as a page needs MFA: the navigation lands on the gateway's MFA page.
            target = f"/api/users/{record_id}"
            await page.goto(f"{demo}{target}")
            assert (
                page.url == f"{demo}/.tokengate/mfa/step-up?return_to=%2Fapi%2Fusers%2F{record_id}"
            )
            assert await page.get_attribute("#step-up", "data-return-to") == target
            valid = {totp_code(secret, offset) for offset in (-1, 0, 1)}
            wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)
            await page.fill("#totp-code", wrong)
            await page.click("#totp-form button[type=submit]")
            await page.wait_for_selector("#status:text('not accepted')")
            assert page.url.startswith(f"{demo}/.tokengate/mfa/step-up")  # refused: stays

            # The next code passes: back on the page it came from, now with the record.
            await page.fill("#totp-code", totp_code(secret, 1))
            await page.click("#totp-form button[type=submit]")
            await page.wait_for_url(f"{demo}{target}")
            assert "Ada" in (await page.text_content("body") or "")
            assert not [m for m in console if "Content Security Policy" in m]
        finally:
            await browser.close()
