"""A root backend wrapper that counts every call and audits every failure.

The counter proves the request path makes no root call once unsealed (the
benchmark reads it). Any exception from the backend becomes a
:class:`~kms_client.errors.RootError` (a backend's own RootError passes
through unchanged) and is written to the audit log as ``kms.root_error``
with the operation and error code, never with secrets.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

from kms_client.audit_port import Auditor
from kms_client.errors import RootError
from kms_client.root import RootBackend

log = logging.getLogger(__name__)


class CountingRoot:
    """Delegates to a :class:`RootBackend`, counting calls per operation."""

    def __init__(self, inner: RootBackend, *, auditor: Auditor) -> None:
        self.inner = inner
        self._auditor = auditor
        self._calls: Counter[str] = Counter()

    @property
    def description(self) -> str:
        """The backend's safe description."""
        return self.inner.description

    @property
    def calls(self) -> int:
        """Root-backend calls made so far (all operations)."""
        return sum(self._calls.values())

    def calls_by_operation(self) -> Mapping[str, int]:
        """Root-backend calls per operation name."""
        return dict(self._calls)

    async def open(self) -> None:
        """Connect and authenticate."""
        await self._call("open", self.inner.open)

    async def close(self) -> None:
        """Release the backend."""
        await self._call("close", self.inner.close)

    async def create_kwk(self, version: int) -> tuple[bytes, bytes]:
        """Make a KWK through the root."""
        return await self._call("create_kwk", lambda: self.inner.create_kwk(version))

    async def open_kwk(self, version: int, reference: bytes) -> bytes:
        """Reopen a KWK through the root."""
        return await self._call("open_kwk", lambda: self.inner.open_kwk(version, reference))

    async def destroy_kwk(self, version: int, reference: bytes) -> None:
        """Destroy a KWK in the root."""
        await self._call("destroy_kwk", lambda: self.inner.destroy_kwk(version, reference))

    async def random(self, n: int) -> bytes | None:
        """Root RNG output, if the root has an RNG."""
        return await self._call("random", lambda: self.inner.random(n))

    async def _call[T](self, operation: str, op: Callable[[], Awaitable[T]]) -> T:
        self._calls[operation] += 1
        try:
            return await op()
        except RootError as e:
            await self._report(operation, e)
            raise
        except Exception as e:
            wrapped = RootError(f"kms: root {self.description} failed in {operation}")
            await self._report(operation, wrapped)
            raise wrapped from e

    async def _report(self, operation: str, error: RootError) -> None:
        log.warning("%s", error)
        try:
            await self._auditor.emit(
                "kms.root_error",
                root=self.description[:256],
                operation=operation,
                error=error.code,
                reason=str(error)[:256],
            )
        except Exception as e:  # the root error is the one to raise; this one is logged
            log.error("kms: could not audit a root error: %s", type(e).__name__)
