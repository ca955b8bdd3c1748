"""S3Vault (``s3://``): one object per vault record, for deployments that keep state in S3.

Rules:
- Object ``<prefix><hex id>`` holds one :mod:`vault.store_blob` value; its
  expiry is also in the object metadata (``tg-expires``) and is enforced on
  every read by the caller's clock. Hex keys list in the ids' byte order, so
  ``scan`` is ``ListObjectsV2`` with ``StartAfter``.
- S3 cannot batch: a message's records go out as concurrent requests, at most
  ``max_concurrency`` at a time (a semaphore, and a thread pool of that size
  for the blocking boto3 calls; never the event loop).
- ``put_new`` never overwrites: ``PutObject`` with ``If-None-Match: *``. On a
  412 the object is read back: the same bytes mean an earlier attempt of this
  very write landed (a retried request), an expired record is replaced with
  ``If-Match: <ETag>``, and a live one is reported as existing.
  ``replace_outer`` is ``If-Match`` on the ETag of the record compared.
- S3 has no multi-object transaction: a batch that fails part-way leaves some
  records stored. That is safe, since no token leaves the gateway unless the
  whole call succeeds, and such records are unreachable without a token.
- Every request has connect/read timeouts and at most ``max-attempts``
  attempts; any failure is :class:`~vault.errors.VaultUnavailable` naming the
  AWS error code only.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from vault.errors import VaultConfigError, VaultUnavailable
from vault.s3_uri import S3Target, make_client
from vault.store import Durability, StoredRecord
from vault.store_blob import check_rewrap, first_occurrences, is_live, pack, unpack

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_PREFIX: Final = "tokengate/vault/"
_HEX: Final = re.compile(r"^(?:[0-9a-f]{2})+$")
_CONFLICT: Final = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING: Final = frozenset({"NoSuchKey", "404", "NotFound"})
_ATTEMPTS: Final = 3  # rounds of put / read back / replace under contention


class S3Vault:
    """Vault records as S3 objects under a prefix."""

    def __init__(
        self,
        target: S3Target,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 5.0,
        max_concurrency: int = 16,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._target = target
        self._prefix = prefix
        self._timeout = timeout
        self._deadline = timeout * target.max_attempts * 2 + 1  # backstop over boto's own limits
        self._max = max_concurrency
        self._now = now
        self._client: S3Client | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._slots = asyncio.Semaphore(max_concurrency)

    @property
    def name(self) -> str:
        """``s3``."""
        return "s3"

    async def open(self) -> None:
        """Build the client and check that the bucket answers."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._max, thread_name_prefix="tg-vault-s3")
            self._client = make_client(self._target, timeout=self._timeout, pool_size=self._max)
        try:
            await self._call("open", lambda c: c.head_bucket(Bucket=self._target.bucket))
        except VaultUnavailable as e:
            cause = e.__cause__
            code = _code(cause) if isinstance(cause, ClientError) else type(cause).__name__
            if code in ("404", "NoSuchBucket", "403", "AccessDenied") or isinstance(
                cause, NoCredentialsError | PartialCredentialsError
            ):
                await self.close()
                raise VaultConfigError(f"vault: s3: bucket {self._target.bucket} ({code})") from e
            raise

    async def close(self) -> None:
        """Stop the thread pool and close the client; idempotent."""
        executor, client = self._executor, self._client
        self._executor = self._client = None
        if executor is not None:
            executor.shutdown(wait=False)
        if client is not None:
            client.close()

    async def put_new(self, records: Sequence[StoredRecord]) -> list[bool]:
        """One conditional PutObject per distinct id, at most ``max_concurrency`` at a time."""
        batch = list(records)
        first = first_occurrences(batch)
        now = self._now()
        unique = [batch[i] for i in first.values()]
        done = await asyncio.gather(*(self._call("put_new", self._put_one, r, now) for r in unique))
        inserted = {r.id for r, ok in zip(unique, done, strict=True) if ok}
        return [first[r.id] == i and r.id in inserted for i, r in enumerate(batch)]

    async def get_many(self, ids: Sequence[bytes]) -> dict[bytes, StoredRecord]:
        """Concurrent GetObject calls; the live records among ``ids``."""
        wanted = list(dict.fromkeys(ids))
        found = await asyncio.gather(*(self._call("get_many", self._get_one, i) for i in wanted))
        now = self._now()
        return {r.id: r for r in found if r is not None and is_live(r.expires, now)}

    async def delete_many(self, ids: Sequence[bytes]) -> int:
        """HeadObject each id (to count the live ones), then DeleteObjects per 1000 keys."""
        wanted = list(dict.fromkeys(ids))
        now = self._now()
        live = await asyncio.gather(
            *(self._call("delete_many", self._live, i, now) for i in wanted)
        )
        for start in range(0, len(wanted), 1000):
            chunk = [self._key(i) for i in wanted[start : start + 1000]]
            await self._call("delete_many", self._delete_keys, chunk)
        return sum(live)

    async def scan(self, *, after: bytes | None, limit: int) -> list[StoredRecord]:
        """ListObjectsV2 from ``after`` in key (= id) order; records fetched concurrently."""
        start = self._prefix if after is None else self._key(after)
        found: list[StoredRecord] = []
        while len(found) < limit:
            want = min(1000, limit - len(found))
            keys, more = await self._call("scan", self._list, start, want)
            ids = [bytes.fromhex(k[len(self._prefix) :]) for k in keys]
            records = await asyncio.gather(*(self._call("scan", self._get_one, i) for i in ids))
            now = self._now()
            found += [r for r in records if r is not None and is_live(r.expires, now)]
            if not more or not keys:
                break
            start = keys[-1]
        return found[:limit]

    async def replace_outer(self, old: StoredRecord, new: StoredRecord) -> bool:
        """Compare the object with ``old``, then PutObject with ``If-Match`` on its ETag."""
        check_rewrap(old, new)
        if not is_live(old.expires, self._now()):
            return False
        swapped = StoredRecord(old.id, new.key_version, new.outer, old.meta, old.expires)
        return await self._call("replace_outer", self._swap, old, swapped)

    async def durability(self) -> Durability:
        """S3 acknowledges a PUT only once the object is stored redundantly."""
        return Durability(True, "s3: objects are durable once the put is acknowledged")

    # --- blocking parts, run on the pool ---

    def _put_one(self, client: S3Client, record: StoredRecord, now: float) -> bool:
        key, body = self._key(record.id), pack(record)
        for _ in range(_ATTEMPTS):
            if self._put(client, key, body, record.expires, etag=None):
                return True
            current = self._read(client, key)
            if current is None:
                continue  # deleted meanwhile: try the conditional put again
            etag, data = current
            if is_live(unpack(record.id, data, where="s3").expires, now):
                return False
            if self._put(client, key, body, record.expires, etag=etag):
                return True
        raise VaultUnavailable("vault: s3: put_new: the object kept changing (contention)")

    def _swap(self, client: S3Client, old: StoredRecord, new: StoredRecord) -> bool:
        key = self._key(old.id)
        current = self._read(client, key)
        if current is None or current[1] != pack(old):
            return False
        return self._put(client, key, pack(new), new.expires, etag=current[0])

    def _put(
        self, client: S3Client, key: str, body: bytes, expires: int | None, *, etag: str | None
    ) -> bool:
        """PutObject if absent (``etag`` None) or if its ETag is still ``etag``; False if not."""
        meta = {"tg-expires": "-" if expires is None else str(expires)}
        bucket = self._target.bucket
        try:
            if etag is None:
                client.put_object(Bucket=bucket, Key=key, Body=body, Metadata=meta, IfNoneMatch="*")
            else:
                client.put_object(Bucket=bucket, Key=key, Body=body, Metadata=meta, IfMatch=etag)
        except ClientError as e:
            if _code(e) in _CONFLICT:
                return False
            raise
        return True

    def _read(self, client: S3Client, key: str) -> tuple[str, bytes] | None:
        try:
            reply = client.get_object(Bucket=self._target.bucket, Key=key)
        except ClientError as e:
            if _code(e) in _MISSING:
                return None
            raise
        with reply["Body"] as body:
            return reply["ETag"], body.read()

    def _get_one(self, client: S3Client, record_id: bytes) -> StoredRecord | None:
        current = self._read(client, self._key(record_id))
        return None if current is None else unpack(record_id, current[1], where="s3")

    def _live(self, client: S3Client, record_id: bytes, now: float) -> bool:
        """Whether a live record is stored under ``record_id`` (HeadObject, metadata expiry)."""
        try:
            reply = client.head_object(Bucket=self._target.bucket, Key=self._key(record_id))
        except ClientError as e:
            if _code(e) in _MISSING:
                return False
            raise
        expires = reply.get("Metadata", {}).get("tg-expires", "-")
        return expires == "-" or not expires.isdigit() or is_live(int(expires), now)

    def _delete_keys(self, client: S3Client, keys: list[str]) -> None:
        reply = client.delete_objects(
            Bucket=self._target.bucket,
            Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
        )
        errors = reply.get("Errors", [])
        if errors:
            code = str(errors[0].get("Code", "unknown"))
            raise VaultUnavailable(f"vault: s3: delete_many: {len(errors)} not deleted ({code})")

    def _list(self, client: S3Client, start_after: str, limit: int) -> tuple[list[str], bool]:
        reply = client.list_objects_v2(
            Bucket=self._target.bucket, Prefix=self._prefix, StartAfter=start_after, MaxKeys=limit
        )
        keys = [str(o.get("Key", "")) for o in reply.get("Contents", [])]
        ours = [k for k in keys if _HEX.match(k[len(self._prefix) :])]
        return ours, bool(reply.get("IsTruncated")) and bool(keys)

    def _key(self, record_id: bytes) -> str:
        return self._prefix + record_id.hex()

    async def _call[T](self, what: str, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(client, *args)`` on the pool under the semaphore; failures fail closed."""
        if self._executor is None or self._client is None:
            raise VaultUnavailable("vault: s3: store is not open")
        call = functools.partial(fn, self._client, *args)
        loop = asyncio.get_running_loop()
        async with self._slots:
            try:
                async with asyncio.timeout(self._deadline):
                    return await loop.run_in_executor(self._executor, call)
            except TimeoutError:
                raise VaultUnavailable(f"vault: s3: {what} timed out") from None
            except ClientError as e:
                raise VaultUnavailable(f"vault: s3: {what} failed ({_code(e)})") from e
            except BotoCoreError as e:
                where = self._target.description
                raise VaultUnavailable(
                    f"vault: s3: {what} failed at {where} ({type(e).__name__})"
                ) from e


def _code(e: ClientError) -> str:
    code = str(e.response.get("Error", {}).get("Code", ""))
    if not re.fullmatch(r"[A-Za-z0-9.]{1,64}", code):
        code = str(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "unknown"))
    return code
