"""The HTML page and its script: served locally, XSS-safe, no outside resources."""

from __future__ import annotations

import re

import pytest
from demo_backend.handlers import STATIC_DIR

from tests.demo_backend.support import Client

UNSAFE_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(")


async def test_page_is_served_with_a_strict_csp(client: Client) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    for element in ('id="login-form"', 'id="create-form"', 'id="records"'):
        assert element in html
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "ctype"), [("app.js", "text/javascript"), ("style.css", "text/css")]
)
async def test_assets_are_served(client: Client, name: str, ctype: str) -> None:
    resp = await client.get(f"/static/{name}")
    assert resp.status == 200
    assert resp.content_type == ctype


@pytest.mark.parametrize("path", ["/static/", "/static/../app.py", "/static/%2e%2e/app.py"])
async def test_no_listing_or_escape_from_static(client: Client, path: str) -> None:
    resp = await client.get(path)
    assert resp.status in (403, 404)
    assert "def create_app" not in await resp.text()


def test_script_writes_data_as_text_only() -> None:
    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    assert "textContent" in script
    for sink in UNSAFE_SINKS:
        assert sink not in script


@pytest.mark.parametrize("name", ["index.html", "app.js", "style.css"])
def test_no_outside_resources(name: str) -> None:
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE)
    assert "<script>" not in text  # inline scripts would need 'unsafe-inline'
    assert "style=" not in text
