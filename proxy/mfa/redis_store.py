"""RedisMfaStore: MFA records in Redis, shared by gateway replicas.

Keys (``<h>`` = a hash of the subject, so no e-mail address is in a key name,
and one hash tag per subject keeps its keys on one Cluster slot):
``<prefix>{<h>}:totp:pending`` / ``:totp:active`` (hashes), ``:rc`` (hash:
key version, created) and ``:rc:codes`` (set of digests), ``:wa:ids``
(sorted set of credential ids by creation) and ``:wa:<id hex>`` (hash per
credential), ``:ch:<ceremony>`` (string: expiry || challenge). The global
``<prefix>cred:<id hex>`` claims a credential id for one subject.

Read-modify-write steps are single commands (SREM, GETDEL, SET NX) or Lua
scripts, so they are atomic on the server. Every call has a timeout; a
failure raises MfaStoreUnavailable. Expiry decisions use the caller's clock;
Redis TTLs only sweep what nobody came back for.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import cast

import redis.asyncio as redis
from redis.exceptions import RedisError

from proxy.mfa import redis_codec as codec
from proxy.mfa.errors import MfaStoreUnavailable
from proxy.mfa.records import Ceremony, RecoveryCodeSet, TotpEnrolment, WebAuthnCredential

_TIMEOUT = 2.0
_SWEEP = 86_400  # seconds before Redis drops pending enrolments and challenges


class RedisMfaStore:
    """MFA records for replicas (``redis://``, ``rediss://``)."""

    def __init__(self, url: str, *, prefix: str = "tokengate:mfa:") -> None:
        self._url = url
        self._prefix = prefix
        self._client: redis.Redis | None = None

    async def open(self) -> None:
        """Connect and ping."""
        self._client = redis.Redis.from_url(
            self._url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT
        )
        await self._call(lambda c: c.ping())

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---- TOTP ----

    async def put_pending_totp(self, enrolment: TotpEnrolment) -> None:
        """Replace the pending hash (swept after a day if never confirmed)."""
        key = self._key(enrolment.subject, "totp:pending")
        fields = codec.totp_fields(enrolment)

        async def run(c: redis.Redis) -> object:
            async with c.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
                pipe.expire(key, _SWEEP)
                return await pipe.execute()

        await self._call(run)

    async def get_totp(self, subject: str, *, pending: bool) -> TotpEnrolment | None:
        """HGETALL of one slot."""
        key = self._key(subject, "totp:pending" if pending else "totp:active")
        raw = cast(dict[bytes, bytes], await self._call(lambda c: c.hgetall(key)))
        return codec.totp(subject, raw) if raw else None

    async def activate_totp(self, subject: str, *, step: int, at: datetime) -> bool:
        """RENAME pending to active in Lua, setting confirmed and last_step."""
        keys = (self._key(subject, "totp:pending"), self._key(subject, "totp:active"))
        done = await self._call(lambda c: c.eval(codec.ACTIVATE, 2, *keys, codec.ts(at), step))
        return bool(done == 1)

    async def advance_totp_step(self, subject: str, step: int) -> bool:
        """Raise last_step in Lua if ``step`` is greater."""
        key = self._key(subject, "totp:active")
        return bool(await self._call(lambda c: c.eval(codec.ADVANCE, 1, key, step)) == 1)

    async def delete_totp(self, subject: str) -> bool:
        """DEL both slots."""
        keys = (self._key(subject, "totp:pending"), self._key(subject, "totp:active"))
        return int(cast(int, await self._call(lambda c: c.delete(*keys)))) > 0

    # ---- recovery codes ----

    async def replace_recovery_codes(
        self, subject: str, *, key_version: int, digests: Sequence[bytes], at: datetime
    ) -> None:
        """MULTI: drop the old set, write the header and the new digests."""
        head, codes = self._key(subject, "rc"), self._key(subject, "rc:codes")

        async def run(c: redis.Redis) -> object:
            async with c.pipeline(transaction=True) as pipe:
                pipe.delete(codes)
                pipe.hset(head, mapping={"version": key_version, "created": codec.ts(at)})
                if digests:
                    pipe.sadd(codes, *digests)
                return await pipe.execute()

        await self._call(run)

    async def recovery_codes(self, subject: str) -> RecoveryCodeSet | None:
        """HGETALL of the header and SMEMBERS of the digests in one MULTI."""
        head, codes = self._key(subject, "rc"), self._key(subject, "rc:codes")

        async def run(c: redis.Redis) -> list[object]:
            async with c.pipeline(transaction=True) as pipe:
                pipe.hgetall(head)
                pipe.smembers(codes)
                return cast(list[object], await pipe.execute())

        raw_head, raw_codes = await self._call(run)
        header = cast(dict[bytes, bytes], raw_head)
        if not header:
            return None
        digests = tuple(sorted(cast(set[bytes], raw_codes)))
        return RecoveryCodeSet(
            subject, int(header[b"version"]), digests, codec.dt(header[b"created"])
        )

    async def consume_recovery_code(self, subject: str, digest: bytes) -> bool:
        """SREM of exactly that digest."""
        key = self._key(subject, "rc:codes")
        return int(cast(int, await self._call(lambda c: c.srem(key, digest)))) == 1

    async def delete_recovery_codes(self, subject: str) -> bool:
        """DEL the header and the digests."""
        keys = (self._key(subject, "rc"), self._key(subject, "rc:codes"))
        return int(cast(int, await self._call(lambda c: c.delete(*keys)))) > 0

    # ---- WebAuthn ----

    async def add_webauthn_credential(self, credential: WebAuthnCredential) -> bool:
        """Claim the id globally (SET NX), then write the credential and index it."""
        c = credential
        claim = f"{self._prefix}cred:{c.credential_id.hex()}"
        owner = codec.subject_hash(c.subject)
        claimed = await self._call(lambda r: r.set(claim, owner, nx=True))
        if not claimed:
            return False
        key, ids = (
            self._key(c.subject, f"wa:{c.credential_id.hex()}"),
            self._key(c.subject, "wa:ids"),
        )
        fields: dict[str, str | bytes | int | float] = {
            "id": c.credential_id,
            "pk": c.public_key,
            "count": c.sign_count,
            "handle": c.user_handle,
            "aaguid": c.aaguid,
            "created": codec.ts(c.created_at),
        }
        if c.last_used_at is not None:
            fields["used"] = codec.ts(c.last_used_at)

        async def run(r: redis.Redis) -> object:
            async with r.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
                pipe.zadd(ids, {c.credential_id.hex(): codec.ts(c.created_at)})
                return await pipe.execute()

        await self._call(run)
        return True

    async def webauthn_credentials(self, subject: str) -> list[WebAuthnCredential]:
        """ZRANGE of the index, then HGETALL of each credential in one pipeline."""
        ids_key = self._key(subject, "wa:ids")
        ids = cast(list[bytes], await self._call(lambda c: c.zrange(ids_key, 0, -1)))
        if not ids:
            return []

        async def run(c: redis.Redis) -> list[object]:
            async with c.pipeline(transaction=False) as pipe:
                for hex_id in ids:
                    pipe.hgetall(self._key(subject, f"wa:{hex_id.decode()}"))
                return cast(list[object], await pipe.execute())

        rows = await self._call(run)
        return [codec.credential(subject, cast(dict[bytes, bytes], r)) for r in rows if r]

    async def update_sign_count(
        self, subject: str, credential_id: bytes, *, expected: int, new: int, at: datetime
    ) -> bool:
        """Compare-and-set of the counter in Lua."""
        key = self._key(subject, f"wa:{credential_id.hex()}")
        done = await self._call(
            lambda c: c.eval(codec.SIGN_COUNT, 1, key, expected, new, codec.ts(at))
        )
        return bool(done == 1)

    async def delete_webauthn_credential(self, subject: str, credential_id: bytes) -> bool:
        """Remove from the index and delete (Lua), then release the global claim."""
        hex_id = credential_id.hex()
        keys = (self._key(subject, "wa:ids"), self._key(subject, f"wa:{hex_id}"))
        done = await self._call(lambda c: c.eval(codec.DELETE_CREDENTIAL, 2, *keys, hex_id))
        if done != 1:
            return False
        claim = f"{self._prefix}cred:{hex_id}"
        await self._call(lambda c: c.delete(claim))
        return True

    # ---- challenges ----

    async def put_challenge(
        self, subject: str, ceremony: Ceremony, challenge: bytes, *, expires_at: datetime
    ) -> None:
        """SET of expiry || challenge (swept by Redis after a day)."""
        key = self._key(subject, f"ch:{ceremony.value}")
        value = struct.pack(">d", codec.ts(expires_at)) + challenge
        await self._call(lambda c: c.set(key, value, ex=_SWEEP))

    async def take_challenge(
        self, subject: str, ceremony: Ceremony, *, now: datetime
    ) -> bytes | None:
        """GETDEL: at most one caller gets the challenge; expired ones are dropped."""
        key = self._key(subject, f"ch:{ceremony.value}")
        raw = cast(bytes | None, await self._call(lambda c: c.getdel(key)))
        if raw is None or len(raw) < 8:
            return None
        (expires,) = struct.unpack(">d", raw[:8])
        return raw[8:] if expires > codec.ts(now) else None

    # ---- plumbing ----

    def _key(self, subject: str, suffix: str) -> str:
        return f"{self._prefix}{{{codec.subject_hash(subject)}}}:{suffix}"

    async def _call[T](self, fn: Callable[[redis.Redis], Awaitable[T]]) -> T:
        if self._client is None:
            raise MfaStoreUnavailable("mfa: redis store is not open")
        try:
            return await fn(self._client)
        except (RedisError, OSError) as e:
            raise MfaStoreUnavailable(f"mfa: redis store failed ({type(e).__name__})") from e
