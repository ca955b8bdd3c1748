"""The audit log writer: one hash chain per process, group commit, fail closed.

``emit()`` validates the event against its declared schema, then builds the
next entry of this writer's chain at once (so chain order is call order),
queues it and waits. One named flusher task takes what is queued (at most
``max_batch`` entries), writes it to every entry sink concurrently (files:
one write and one fsync in the sink's own thread; PostgreSQL: one
transaction), then writes the batch's checkpoints to every checkpoint sink,
and only then releases the waiting emits. So ``emit()`` returns only once its
entry is durable everywhere, and many concurrent emits share one fsync.

Every ``checkpoint_every`` entries, and at ``close()``, a checkpoint signed by
the handed-in signer is appended to the chain and to the checkpoint sinks.

Fail closed: if a batch fails or times out, or the signer fails, every waiting
emit and every later one raises :class:`AuditUnavailableError`. The log does
not recover; opening a new one starts a new writer and a new chain (and the
verifier reports the old chain as unclosed, which it is).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from audit.checkpoint import CHECKPOINT_EVENT, Checkpoint, sign_checkpoint
from audit.config import AuditConfig
from audit.entry import GENESIS, WRITER, Entry, build_entry, format_ts
from audit.errors import AuditError, AuditUnavailableError
from audit.events import schema_for
from audit.file_sink import FileCheckpointSink, FileEntrySink
from audit.schema import AuditValue
from audit.signer import CheckpointSigner
from audit.sink import CheckpointSink, EntrySink

log = logging.getLogger("tokengate.audit")


def new_writer_id() -> str:
    """``<host>-<pid>-<random>``: unique per process start, so restarts never share a chain."""
    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()).strip("-")[:64] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


@dataclass(slots=True)
class _Queued:
    entry: Entry
    checkpoint: Checkpoint | None
    waiter: asyncio.Future[None] | None


@dataclass(frozen=True, slots=True)
class AuditReadiness:
    """Readiness probe: the log is usable (not failed, not closed)."""

    log: AuditLog
    name: str = "audit"

    async def check(self) -> bool:
        return self.log.usable


class AuditLog:
    """A writer's audit chain over its sinks; implements ``Auditor``."""

    def __init__(
        self,
        *,
        writer: str,
        signer: CheckpointSigner,
        entry_sinks: Sequence[EntrySink],
        checkpoint_sinks: Sequence[CheckpointSink],
        checkpoint_every: int = 1000,
        max_batch: int = 1024,
        write_timeout: float = 10.0,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if not WRITER.match(writer):
            raise AuditError("audit: writer id must match [A-Za-z0-9][A-Za-z0-9_-]{0,127}")
        if not entry_sinks or not checkpoint_sinks:
            raise AuditError("audit: at least one entry sink and one checkpoint sink are required")
        self._writer = writer
        self._signer = signer
        self._entry_sinks = tuple(entry_sinks)
        self._checkpoint_sinks = tuple(checkpoint_sinks)
        self._every = checkpoint_every
        self._max_batch = max_batch
        self._write_timeout = write_timeout
        self._now = now or (lambda: datetime.now(UTC))
        self._seq = 0
        self._prev = GENESIS
        self._last: Entry | None = None
        self._since_checkpoint = 0
        self._queue: list[_Queued] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failure: str | None = None
        self._closed = False
        self._stopping = False
        self._close_lock = asyncio.Lock()

    @property
    def writer(self) -> str:
        """This process's writer id (named in every entry)."""
        return self._writer

    @property
    def usable(self) -> bool:
        """True while emits can succeed (neither failed nor closed)."""
        return self._failure is None and not self._closed

    def readiness_check(self) -> AuditReadiness:
        """A readiness probe named ``audit``."""
        return AuditReadiness(self)

    def start(self) -> None:
        """Start the flusher task (done by :func:`open_audit_log`; idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._flush_loop(), name=f"audit-flusher-{self._writer}"
            )

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        """Record ``event``; returns once it is durable in every sink, else raises AuditError."""
        self._check_usable()
        values = schema_for(event).validate(fields)
        waiter = self._new_waiter()
        self._enqueue(event, values, waiter)
        await asyncio.shield(waiter)

    async def close(self) -> None:
        """Write the closing checkpoint, flush, close the sinks; raises if the checkpoint fails."""
        async with self._close_lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._failure is None and self._last is not None:
                    waiter = self._new_waiter()
                    self._queue_checkpoint(self._last, final=True, waiter=waiter)
                    await asyncio.shield(waiter)
            finally:
                self._stopping = True
                self._wake.set()
                if self._task is not None:
                    await asyncio.gather(self._task, return_exceptions=True)
                await self._close_sinks()

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise AuditUnavailableError(self._failure)
        if self._closed:
            raise AuditUnavailableError("audit: log is closed")
        self.start()

    def _new_waiter(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # an emitter cancelled while waiting must not leave an unretrieved exception behind
        waiter.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        return waiter

    def _ts(self) -> str:
        return format_ts(self._now())

    def _enqueue(
        self, event: str, values: dict[str, AuditValue], waiter: asyncio.Future[None]
    ) -> None:
        """Append the entry (and a due checkpoint); nothing changes if signing fails."""
        entry = build_entry(
            writer=self._writer,
            seq=self._seq,
            ts=self._ts(),
            event=event,
            fields=values,
            prev=self._prev,
        )
        items = [_Queued(entry, None, waiter)]
        if self._since_checkpoint + 1 >= self._every:
            items.append(self._checkpoint_item(entry, final=False, waiter=None))
        self._commit(items)

    def _queue_checkpoint(
        self, covered: Entry, *, final: bool, waiter: asyncio.Future[None]
    ) -> None:
        self._commit([self._checkpoint_item(covered, final=final, waiter=waiter)])

    def _checkpoint_item(
        self, covered: Entry, *, final: bool, waiter: asyncio.Future[None] | None
    ) -> _Queued:
        """The signed checkpoint entry after ``covered``; a signer failure fails the log."""
        ts = self._ts()
        try:
            cp = sign_checkpoint(
                self._signer, writer=self._writer, covered=covered, ts=ts, final=final
            )
            fields = schema_for(CHECKPOINT_EVENT, internal=True).validate(cp.entry_fields())
        except AuditError as e:
            self._fail(f"audit: checkpoint signing failed ({type(e.__cause__ or e).__name__})")
            raise AuditUnavailableError("audit: checkpoint signing failed") from e
        entry = build_entry(
            writer=self._writer,
            seq=covered.seq + 1,
            ts=ts,
            event=CHECKPOINT_EVENT,
            fields=fields,
            prev=covered.hash,
        )
        return _Queued(entry, cp, waiter)

    def _commit(self, items: list[_Queued]) -> None:
        for item in items:
            self._since_checkpoint = 0 if item.checkpoint else self._since_checkpoint + 1
        self._last = items[-1].entry
        self._seq = self._last.seq + 1
        self._prev = self._last.hash
        self._queue.extend(items)
        self._wake.set()

    async def _flush_loop(self) -> None:
        try:
            while self._failure is None:
                await self._wake.wait()
                self._wake.clear()
                while self._queue and self._failure is None:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: len(batch)]
                    await self._flush(batch)
                if self._stopping and not self._queue:
                    return
        finally:
            if self._queue:
                self._refuse(self._queue, self._failure or "audit: log stopped before writing")
                self._queue.clear()

    async def _flush(self, batch: list[_Queued]) -> None:
        try:
            async with asyncio.timeout(self._write_timeout):
                await self._persist(batch)
        except Exception as e:  # any sink failure or timeout: the act is refused, the log fails
            reason = f"audit: persisting entries failed ({type(e).__name__}); log refuses entries"
            self._fail(reason, cause=e)
            self._refuse(batch, reason, cause=e)
            return
        except BaseException as e:  # cancelled mid-batch: nobody may believe it was persisted
            self._fail("audit: flusher cancelled; log refuses entries", cause=e)
            self._refuse(batch, "audit: flusher cancelled; log refuses entries", cause=e)
            raise
        for item in batch:
            if item.waiter is not None and not item.waiter.done():
                item.waiter.set_result(None)

    async def _persist(self, batch: list[_Queued]) -> None:
        entries = [item.entry for item in batch]
        await _all(self._entry_sinks, lambda s: s.write_entries(entries))
        checkpoints = [item.checkpoint for item in batch if item.checkpoint is not None]
        if checkpoints:  # only after the entries they cover are durable
            await _all(self._checkpoint_sinks, lambda s: s.write_checkpoints(checkpoints))

    def _fail(self, reason: str, *, cause: BaseException | None = None) -> None:
        if self._failure is None:
            self._failure = reason
            log.error("%s", reason, extra={"writer": self._writer, "cause": type(cause).__name__})
            self._wake.set()

    def _refuse(
        self, items: list[_Queued], reason: str, *, cause: BaseException | None = None
    ) -> None:
        for item in items:
            if item.waiter is not None and not item.waiter.done():
                error = AuditUnavailableError(reason)
                error.__cause__ = cause
                item.waiter.set_exception(error)

    async def _close_sinks(self) -> None:
        sinks: list[EntrySink | CheckpointSink] = [*self._entry_sinks]
        sinks += [s for s in self._checkpoint_sinks if s not in sinks]
        for sink in sinks:
            try:
                await sink.close()
            except Exception as e:  # closing is best effort; the data is already durable
                log.warning("audit: closing the %s sink failed (%s)", sink.name, type(e).__name__)


async def _all[S: (EntrySink, CheckpointSink)](
    sinks: Sequence[S], write: Callable[[S], Awaitable[None]]
) -> None:
    """Run ``write`` on every sink concurrently; raise the first failure once all finished."""
    results = await asyncio.gather(*(write(s) for s in sinks), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def open_audit_log(
    config: AuditConfig, *, data_dir: Path, signer: CheckpointSigner, writer: str | None = None
) -> AuditLog:
    """Open this process's audit chain in the configured sinks (files, and PostgreSQL if set)."""
    writer = writer or new_writer_id()
    if not WRITER.match(writer):
        raise AuditError("audit: writer id must match [A-Za-z0-9][A-Za-z0-9_-]{0,127}")
    log_dir, checkpoint_dir = config.log_dir(data_dir), config.checkpoint_path(data_dir)
    if await asyncio.to_thread(_same_dir, log_dir, checkpoint_dir):
        raise AuditError("audit: checkpoint_dir must differ from dir (it is the second sink)")
    timeout = config.write_timeout
    entry_sinks: list[EntrySink] = [
        FileEntrySink(log_dir, writer, rotate_bytes=config.rotate_bytes, close_timeout=timeout)
    ]
    checkpoint_sinks: list[CheckpointSink] = [
        FileCheckpointSink(checkpoint_dir, writer, close_timeout=timeout)
    ]
    if config.postgres is not None:
        from audit.pg_sink import PostgresSink

        try:
            pg = await PostgresSink.open(config.postgres)
        except BaseException:
            await entry_sinks[0].close()
            await checkpoint_sinks[0].close()
            raise
        entry_sinks.append(pg)
        checkpoint_sinks.append(pg)
    audit = AuditLog(
        writer=writer,
        signer=signer,
        entry_sinks=entry_sinks,
        checkpoint_sinks=checkpoint_sinks,
        checkpoint_every=config.checkpoint_every,
        max_batch=config.max_batch,
        write_timeout=config.write_timeout,
    )
    audit.start()
    return audit


def _same_dir(a: Path, b: Path) -> bool:
    """True when two paths name the same directory (after resolving symlinks)."""
    return a.resolve() == b.resolve()
