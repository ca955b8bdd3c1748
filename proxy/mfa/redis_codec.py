"""Lua scripts and field encodings of the Redis MFA store.

Each script runs atomically on the server; its KEYS and ARGV are noted above
it. Hash fields are raw bytes or decimal text; times
are Unix seconds.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from proxy.auth.totp import TotpAlgorithm, TotpParams
from proxy.mfa.records import TotpEnrolment, WebAuthnCredential

# KEYS: pending, active. ARGV: confirmed time, accepted step.
ACTIVATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PERSIST', KEYS[2])
redis.call('HSET', KEYS[2], 'confirmed', ARGV[1], 'last_step', ARGV[2])
return 1
"""

# KEYS: active. ARGV: step (must exceed last_step).
ADVANCE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last = redis.call('HGET', KEYS[1], 'last_step')
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'last_step', ARGV[1])
return 1
"""

# KEYS: credential hash. ARGV: expected count, new count, use time.
SIGN_COUNT = """
if redis.call('HGET', KEYS[1], 'count') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'count', ARGV[2], 'used', ARGV[3])
return 1
"""

# KEYS: id index, credential hash. ARGV: credential id (hex).
DELETE_CREDENTIAL = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
return 1
"""


def subject_hash(subject: str) -> str:
    return hashlib.sha256(b"tokengate/mfa/sub/v1\x00" + subject.encode("utf-8")).hexdigest()[:32]


def ts(at: datetime) -> float:
    if at.tzinfo is None:
        raise ValueError("mfa: times must be timezone-aware")
    return at.timestamp()


def dt(raw: bytes) -> datetime:
    return datetime.fromtimestamp(float(raw), UTC)


def totp_fields(e: TotpEnrolment) -> dict[str, bytes | str | int | float]:
    return {
        "ct": e.ciphertext,
        "alg": e.params.algorithm.value,
        "digits": e.params.digits,
        "period": e.params.period,
        "created": ts(e.created_at),
    }


def totp(subject: str, raw: dict[bytes, bytes]) -> TotpEnrolment:
    params = TotpParams(
        TotpAlgorithm(raw[b"alg"].decode()), int(raw[b"digits"]), int(raw[b"period"])
    )
    confirmed = raw.get(b"confirmed")
    last_step = raw.get(b"last_step")
    return TotpEnrolment(
        subject=subject,
        ciphertext=raw[b"ct"],
        params=params,
        created_at=dt(raw[b"created"]),
        confirmed_at=None if confirmed is None else dt(confirmed),
        last_step=None if last_step is None else int(last_step),
    )


def credential(subject: str, raw: dict[bytes, bytes]) -> WebAuthnCredential:
    used = raw.get(b"used")
    return WebAuthnCredential(
        subject=subject,
        credential_id=raw[b"id"],
        public_key=raw[b"pk"],
        sign_count=int(raw[b"count"]),
        user_handle=raw[b"handle"],
        aaguid=raw[b"aaguid"].decode(),
        created_at=dt(raw[b"created"]),
        last_used_at=None if used is None else dt(used),
    )
