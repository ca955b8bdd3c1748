"""The demo app's routes: login/logout, the users API, the page and health.

Rules:
- Every ``/api/*`` route needs a live session (401 otherwise).
- Any logged-in user may read every record: deciding who sees plaintext is
  tokengate's job, not this app's.
- Only a record's owner, or an account with the support role, may update it.
- Behind tokengate (proofs verified), the user is the one tokengate vouched
  for, never the app's own cookie; a login carrying ``Tokengate-Login-Nonce``
  is answered with a ``Tokengate-Login`` assertion when a login secret is set.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from demo_backend.errors import ApiError, not_found, unauthorized
from demo_backend.login_assertion import (
    LOGIN_HEADER,
    LOGIN_NONCE_HEADER,
    LOGOUT_HEADER,
    login_nonce,
)
from demo_backend.sessions import COOKIE_NAME
from demo_backend.state import STATE, VOUCHED, DemoState
from demo_backend.store import Account
from demo_backend.validation import (
    LOGIN_LIMITS,
    RECORD_LIMITS,
    read_json_object,
    string_fields,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
_LIMIT_RE = re.compile(r"[0-9]{1,4}")

routes = web.RouteTableDef()


def _account_json(account: Account) -> dict[str, object]:
    return {"username": account.username, "roles": list(account.roles)}


async def _require_account(request: web.Request) -> Account:
    if VOUCHED in request:  # behind tokengate: its word, never the app's cookie
        vouched = request[VOUCHED].account
        if vouched is None:
            raise unauthorized()
        return vouched
    state = request.app[STATE]
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie is None:
        raise unauthorized()
    sid_hash = state.signer.verify(cookie)
    if sid_hash is None:
        raise unauthorized()
    account = await state.store.session_account(sid_hash, now=state.now())
    if account is None:
        raise unauthorized()
    return account


def _record_id(request: web.Request) -> int:
    return int(request.match_info["id"])


@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    """The single HTML page; its script talks to the JSON API."""
    return web.FileResponse(STATIC_DIR / "index.html")


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    """Check username and password, start a session, set its cookie."""
    state = request.app[STATE]
    fields = string_fields(await read_json_object(request), LOGIN_LIMITS)
    account = await state.store.check_login(fields["username"], fields["password"])
    if account is None:
        raise ApiError(401, "invalid_credentials", "invalid username or password")
    now = state.now()
    session = state.signer.mint()
    await state.store.create_session(
        session.sid_hash, account.username, now=now, expires_at=now + state.session_ttl
    )
    response = web.json_response(_account_json(account))
    nonce = login_nonce(request.headers.getall(LOGIN_NONCE_HEADER, []))
    if state.login_asserter is not None and nonce is not None:
        response.headers[LOGIN_HEADER] = state.login_asserter.assertion(
            username=account.username, roles=account.roles, nonce=nonce, now=now
        )
    response.set_cookie(
        COOKIE_NAME,
        session.cookie,
        max_age=state.session_ttl,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=state.cookie_secure,
    )
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    """End the session server-side and clear the cookie; fine without a session."""
    state = request.app[STATE]
    cookie = request.cookies.get(COOKIE_NAME)
    sid_hash = None if cookie is None else state.signer.verify(cookie)
    if sid_hash is not None:
        await state.store.delete_session(sid_hash)
    response = web.Response(status=204)
    if state.login_asserter is not None:
        response.headers[LOGOUT_HEADER] = "1"
    _clear_cookie(response, state)
    return response


def _clear_cookie(response: web.Response, state: DemoState) -> None:
    response.del_cookie(
        COOKIE_NAME, path="/", httponly=True, samesite="Lax", secure=state.cookie_secure
    )


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    """Who the session belongs to (the page uses it to know whether to show the login form)."""
    return web.json_response(_account_json(await _require_account(request)))


@routes.post("/api/users")
async def create_user(request: web.Request) -> web.Response:
    """Create a record owned by the caller: 201 with the record."""
    state = request.app[STATE]
    account = await _require_account(request)
    fields = string_fields(await read_json_object(request), RECORD_LIMITS)
    record = await state.store.create_record(fields, owner=account.username, now=state.now())
    response = web.json_response(record.to_json(), status=201)
    response.headers["Location"] = f"/api/users/{record.id}"
    return response


@routes.get("/api/users")
async def list_users(request: web.Request) -> web.Response:
    """The newest records first, at most ``limit`` (default 100, at most 1000)."""
    state = request.app[STATE]
    await _require_account(request)
    raw_limit = request.query.get("limit", str(DEFAULT_LIST_LIMIT))
    if not _LIMIT_RE.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIST_LIMIT:
        raise ApiError(
            400,
            "invalid_query",
            f"query parameter 'limit' must be an integer from 1 to {MAX_LIST_LIMIT}",
        )
    records = await state.store.list_records(limit=int(raw_limit))
    return web.json_response({"users": [r.to_json() for r in records]})


@routes.get(r"/api/users/{id:[0-9]{1,18}}")
async def get_user(request: web.Request) -> web.Response:
    """One record by id: 404 when there is none."""
    state = request.app[STATE]
    await _require_account(request)
    record = await state.store.get_record(_record_id(request))
    if record is None:
        raise not_found()
    return web.json_response(record.to_json())


@routes.put(r"/api/users/{id:[0-9]{1,18}}")
async def update_user(request: web.Request) -> web.Response:
    """Replace a record's four fields; only its owner or support may (403 otherwise)."""
    state = request.app[STATE]
    account = await _require_account(request)
    fields = string_fields(await read_json_object(request), RECORD_LIMITS)
    record = await state.store.update_record(
        _record_id(request), fields, actor=account, now=state.now()
    )
    return web.json_response(record.to_json())
