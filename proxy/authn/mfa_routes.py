"""Second factors over HTTP: ``/.tokengate/mfa/...`` (TOTP, recovery codes, WebAuthn).

Rules:
- Every endpoint is a POST with a JSON body of at most 16 KiB (400 malformed,
  413 too large, 415 not JSON), answered with ``Cache-Control: no-store``.
- A live session is required (access/refresh cookies, or a bearer token),
  else 401; cookie-authenticated calls need same-origin evidence (CSRF, 403).
- Enrolling a factor when the subject already has one needs a session that
  has passed MFA: a stolen password-only session cannot add its own factor.
- A passed factor steps the session up (a NEW session id with raised amr,
  acr and auth_time; the old one is revoked) and sets the new cookies. A
  refused one answers 401 with one fixed message, a locked subject 429 with
  ``Retry-After``. Every attempt is audited with its outcome; codes, secrets
  and credentials never reach a log or an audit record.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.auth.access_token import AccessClaims
from proxy.authn.gate import Gate
from proxy.authn.http import bearer_token, check_csrf, set_session_cookies
from proxy.authn.service import IssuedTokens, SessionService, short_hash
from proxy.errors import ProxyError, error_response
from proxy.mfa.errors import MfaStateError
from proxy.mfa.outcome import MfaOutcome, MfaResult
from proxy.mfa.service import MfaService
from proxy.state import REQUEST_ID

log = logging.getLogger("tokengate.proxy.mfa")
MAX_BODY = 16 * 1024
MAX_CODE = 64
_NO_STORE = {"Cache-Control": "no-store"}
_REFUSED = "the second factor was not accepted"


class _Refused(Exception):
    """An MFA answer outside the gateway's public error table (401/409/415/429)."""

    def __init__(
        self, code: str, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(code)
        self.code, self.status, self.message = code, status, message
        self.headers = headers or {}


class _Caller:
    """The authenticated caller of one MFA request."""

    def __init__(
        self,
        service: SessionService,
        mfa: MfaService,
        claims: AccessClaims,
        *,
        bearer: bool,
        refreshed: IssuedTokens | None,
    ) -> None:
        self.service = service
        self.mfa = mfa
        self.claims = claims
        self.bearer = bearer
        self.refreshed = refreshed  # tokens of a refresh that just happened, to deliver
        self.stepped_up = False

    async def audit(self, event: str, **fields: str | int | list[str] | None) -> None:
        await self.service.auditor.emit(event, sub=self.claims.sub, **fields)


Handler = Callable[[web.Request, Gate], Awaitable[web.StreamResponse]]
_Inner = Callable[[web.Request, _Caller, dict[str, object]], Awaitable[web.StreamResponse]]


def _endpoint(inner: _Inner) -> Handler:
    """Session, CSRF, bounded JSON body and MFA-specific error answers around ``inner``."""

    async def handler(request: web.Request, gate: Gate) -> web.StreamResponse:
        if gate.service is None or gate.mfa is None:
            raise ProxyError("not_found")
        caller = await _authenticate(request, gate.service, gate.mfa)
        # A DPoP-bound session proves its key here too: a stolen cookie alone
        # must not be enough to step a session up or change its factors.
        await gate.check_binding(request, caller.claims, bearer=bearer_token(request))
        rid = request[REQUEST_ID]
        resp: web.StreamResponse
        try:
            resp = await inner(request, caller, await _read_json(request))
        except _Refused as e:
            resp = error_response(
                e.code, rid, status=e.status, message=e.message, headers=e.headers
            )
        except ProxyError as e:
            resp = error_response(e.code, rid, headers=e.headers)
        except MfaStateError as e:
            resp = error_response(
                e.code, rid, status=e.status, message=str(e).removeprefix("mfa: ")
            )
        if resp.status >= 400:
            log.info(
                "mfa refused: %s", resp.status, extra={"request_id": rid, "status": resp.status}
            )
        if caller.refreshed is not None and not caller.stepped_up:
            # The refresh token rotated: the client must get the new one, whatever the answer.
            set_session_cookies(resp, caller.refreshed, caller.service.config)
        resp.headers.update(_NO_STORE)
        return resp

    handler.__doc__ = inner.__doc__
    return handler


async def _authenticate(request: web.Request, service: SessionService, mfa: MfaService) -> _Caller:
    """The caller's live session (cookies or bearer), else 401; CSRF for cookie callers."""
    bearer = bearer_token(request)
    if bearer is None:
        check_csrf(request, service.config)
    cookies = service.config.cookies
    found = await service.authenticate(
        bearer or request.cookies.get(cookies.access),
        None if bearer else request.cookies.get(cookies.refresh),
    )
    if found is None:
        raise ProxyError("unauthorized", headers={"WWW-Authenticate": 'Bearer realm="tokengate"'})
    return _Caller(service, mfa, found.claims, bearer=bearer is not None, refreshed=found.issued)


async def _read_json(request: web.Request) -> dict[str, object]:
    """The JSON object body (empty body: ``{}``), at most :data:`MAX_BODY` bytes."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ProxyError("payload_too_large")
    raw = bytearray()
    while len(raw) <= MAX_BODY:
        chunk = await request.content.read(MAX_BODY + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    if len(raw) > MAX_BODY:
        raise ProxyError("payload_too_large")
    if not raw:
        return {}
    if request.content_type != "application/json":
        raise _Refused("unsupported_media_type", 415, "the request body must be application/json")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProxyError("bad_request", "mfa: body is not json") from e
    if not isinstance(value, dict):
        raise ProxyError("bad_request", "mfa: body is not a json object")
    return value


def _code(body: dict[str, object]) -> str:
    code = body.get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > MAX_CODE:
        raise ProxyError("bad_request", "mfa: code missing or malformed")
    return code


def _credential(body: dict[str, object]) -> str:
    credential = body.get("credential")
    if not isinstance(credential, dict):
        raise ProxyError("bad_request", "mfa: credential missing or malformed")
    return json.dumps(credential)


async def _may_enrol(caller: _Caller) -> None:
    """A subject with a factor already adds another only from a session that passed MFA."""
    if "mfa" in caller.claims.amr:
        return
    if (await caller.mfa.factors(caller.claims.sub)).any:
        raise _Refused(
            "insufficient_user_authentication",
            401,
            "pass a second factor before enrolling another one",
            {
                "WWW-Authenticate": 'Bearer error="insufficient_user_authentication", '
                'acr_values="mfa"'
            },
        )


async def _settle(request: web.Request, caller: _Caller, result: MfaResult) -> web.Response:
    """Audit a verification result; on a pass, step the session up and set its cookies."""
    method = result.method
    if result.outcome == MfaOutcome.PASSED and result.passed is not None:
        grant = result.passed
        issued = await caller.service.step_up(
            caller.claims, amr=grant.amr, acr=grant.acr, auth_time=grant.auth_time
        )
        await caller.audit(
            "mfa.pass",
            method=method,
            sid_hash=short_hash(caller.claims.sid),
            acr=grant.acr,
            amr=grant.amr,
            recovery_codes_left=result.recovery_codes_left,
        )
        body: dict[str, object] = {"status": "passed", "acr": grant.acr}
        if result.recovery_codes_left is not None:
            body["recovery_codes_left"] = result.recovery_codes_left
        if caller.bearer:
            body["access_token"] = issued.access
            body["expires_in"] = issued.access_max_age
        resp = web.json_response(body)
        set_session_cookies(resp, issued, caller.service.config)
        caller.stepped_up = True
        return resp
    if result.outcome == MfaOutcome.LOCKED:
        retry = max(1, math.ceil((result.locked_until or time.time()) - time.time()))
        await caller.audit(
            "mfa.lockout",
            method=method,
            reason=result.reason,
            retry_after=retry,
            failures=result.failures or None,
        )
        raise _Refused(
            "mfa_locked",
            429,
            "too many failed attempts; try again later",
            {"Retry-After": str(retry)},
        )
    outcome = "replayed" if result.outcome == MfaOutcome.REPLAYED else "failed"
    await caller.audit(
        "mfa.fail",
        method=method,
        outcome=outcome,
        reason=result.reason,
        failures=result.failures or None,
    )
    raise _Refused("mfa_failed", 401, _REFUSED)


# ---- TOTP and recovery codes ----


async def _totp_enrol(
    request: web.Request, caller: _Caller, body: dict[str, object]
) -> web.Response:
    """Start a TOTP enrolment: the otpauth URI and its QR code, shown once."""
    await _may_enrol(caller)
    setup = await caller.mfa.begin_totp(caller.claims.sub, account=caller.claims.sub)
    await caller.audit("mfa.enrol", method="otp", outcome="begun")
    return web.json_response(
        {"uri": setup.uri, "qr_svg": setup.qr_svg, "expires_at": int(setup.expires_at)}
    )


async def _totp_confirm(
    request: web.Request, caller: _Caller, body: dict[str, object]
) -> web.Response:
    """Activate the pending enrolment with its first code; a fresh set of recovery codes, once."""
    result = await caller.mfa.confirm_totp(caller.claims.sub, _code(body))
    if result.outcome != MfaOutcome.ENROLLED:
        outcome = "replayed" if result.outcome == MfaOutcome.REPLAYED else "failed"
        await caller.audit("mfa.enrol", method="otp", outcome=outcome, reason=result.reason)
        raise _Refused("mfa_failed", 401, _REFUSED)
    codes = await caller.mfa.issue_recovery_codes(caller.claims.sub)
    await caller.audit(
        "mfa.enrol", method="otp", outcome="enrolled", reason="ok", recovery_codes=len(codes)
    )
    return web.json_response({"status": "enrolled", "recovery_codes": codes})


async def _totp_verify(
    request: web.Request, caller: _Caller, body: dict[str, object]
) -> web.Response:
    """Check a TOTP code; a pass steps the session up."""
    return await _settle(
        request, caller, await caller.mfa.verify_totp(caller.claims.sub, _code(body))
    )


async def _recovery_verify(
    request: web.Request, caller: _Caller, body: dict[str, object]
) -> web.Response:
    """Check and consume a recovery code; a pass steps the session up."""
    result = await caller.mfa.verify_recovery_code(caller.claims.sub, _code(body))
    return await _settle(request, caller, result)


# ---- WebAuthn ----


async def _register_options(
    request: web.Request, caller: _Caller, body: dict[str, object]
) -> web.Response:
    """Options for ``navigator.credentials.create()``."""
    await _may_enrol(caller)
    options = await caller.mfa.webauthn_registration_options(
        caller.claims.sub, user_name=caller.claims.sub
    )
    return web.Response(text=options, content_type="application/json")


async def _register_verify(
    request: web.Request, caller: _Caller, body: dict[str, object]
) -> web.Response:
    """Verify a registration response and store the key."""
    await _may_enrol(caller)
    result = await caller.mfa.register_webauthn(caller.claims.sub, _credential(body))
    if result.outcome != MfaOutcome.ENROLLED:
        await caller.audit("mfa.enrol", method="hwk", outcome="failed", reason=result.reason)
        raise _Refused("mfa_failed", 401, _REFUSED)
    await caller.audit("mfa.enrol", method="hwk", outcome="enrolled", reason="ok")
    return web.json_response({"status": "enrolled"})


async def _authenticate_options(
    request: web.Request, caller: _Caller, body: dict[str, object]
) -> web.Response:
    """Options for ``navigator.credentials.get()`` (409 when no key is registered)."""
    options = await caller.mfa.webauthn_authentication_options(caller.claims.sub)
    return web.Response(text=options, content_type="application/json")


async def _authenticate_verify(
    request: web.Request, caller: _Caller, body: dict[str, object]
) -> web.Response:
    """Verify an assertion; a pass steps the session up."""
    result = await caller.mfa.verify_webauthn(caller.claims.sub, _credential(body))
    return await _settle(request, caller, result)


_BASE = "/.tokengate/mfa"
ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", f"{_BASE}/totp/enrol", _endpoint(_totp_enrol)),
    ("POST", f"{_BASE}/totp/confirm", _endpoint(_totp_confirm)),
    ("POST", f"{_BASE}/totp/verify", _endpoint(_totp_verify)),
    ("POST", f"{_BASE}/recovery/verify", _endpoint(_recovery_verify)),
    ("POST", f"{_BASE}/webauthn/register/options", _endpoint(_register_options)),
    ("POST", f"{_BASE}/webauthn/register/verify", _endpoint(_register_verify)),
    ("POST", f"{_BASE}/webauthn/authenticate/options", _endpoint(_authenticate_options)),
    ("POST", f"{_BASE}/webauthn/authenticate/verify", _endpoint(_authenticate_verify)),
]
