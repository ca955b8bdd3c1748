"""The migration loop: read a batch, tokenize its plaintext, audit, write it back.

Rules (the "nothing lost" principle applied to data that already exists):
- Per batch, in this order: read rows in key order; leave alone NULL and
  empty values, non-text values, and values that already are tokens of the
  class (``TokenVault.are_tokens``: shape-preserving tokens look like values,
  so only the vault can tell); tokenize the rest, which returns only once
  their vault records are committed; write a ``migrate.batch`` audit entry;
  then update the rows in ONE transaction, each by compare-and-set on the
  plaintext read. A crash anywhere leaves each row either plaintext or a
  token whose record exists (at worst an orphan record no row names).
- Idempotent and resumable: a re-run starts from the first key and skips
  every row already tokenized, so after a crash one simply runs it again.
  Each row ends tokenized exactly once (its token detokenizes to the original).
- A row the application changed between read and write is a ``conflict``:
  not overwritten, left for the next run.
- A value that does not fit the class's format (``on_mismatch: error``) is
  ``mismatched`` and left as it is.
- ``dry_run`` reads and classifies (including the format check and the
  token check) but writes nothing: no vault record, no audit batch, no row.
- Audited: ``migrate.start`` before anything is read, ``migrate.batch``
  before rows change (an audit failure stops the run, those rows untouched),
  ``migrate.finish`` with the totals. Counts and names only, never values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from audit.errors import AuditError
from audit.schema import AuditValue
from proxy.migrate.source import Change, Row, Source, Target
from tokengate.errors import GatewayError
from vault.api import ClassSpec, DetokenizeItem, TokenizeItem, TokenVault
from vault.formats import SHAPED, fits

log = logging.getLogger("tokengate.migrate")


class Auditor(Protocol):
    """Where the migration's audit entries go (the gateway's audit log)."""

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        """Persist one entry; raise if it cannot be."""
        ...


@dataclass
class Counts:
    """What a migration (or one batch) saw and did."""

    scanned: int = 0
    tokenized: int = 0  # dry run: would be tokenized
    already_tokens: int = 0
    empty: int = 0
    not_text: int = 0
    mismatched: int = 0
    conflicts: int = 0

    def add(self, other: Counts) -> None:
        """Add ``other`` into these counts."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True, slots=True)
class Plan:
    """How to migrate: the class, the record tenant, batch size, dry run, who acts."""

    spec: ClassSpec
    tenant: str = ""
    batch_size: int = 500
    dry_run: bool = False
    actor: str = "cli"

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError("migrate: batch size must be 1..10000")


class Migration:
    """One run over ``source`` with ``vault``, audited to ``auditor``."""

    def __init__(
        self, source: Source, target: Target, vault: TokenVault, auditor: Auditor, plan: Plan
    ) -> None:
        self._source = source
        self._target = target
        self._vault = vault
        self._auditor = auditor
        self._plan = plan

    async def run(self, on_batch: Callable[[Counts], None] | None = None) -> Counts:
        """Migrate every matching row; ``on_batch`` sees each batch's counts."""
        t, p = self._target, self._plan
        await self._emit(
            "migrate.start",
            filtered=t.where is not None,
            batch_size=p.batch_size,
            owner_column=t.owner_column,
            tenant=p.tenant or None,
        )
        total = Counts()
        after: object | None = None
        try:
            while True:
                rows = await self._source.fetch(after, p.batch_size)
                if not rows:
                    break
                batch = await self._batch(rows)
                total.add(batch)
                if on_batch is not None:
                    on_batch(batch)
                after = rows[-1].key
                if len(rows) < p.batch_size:
                    break
        except GatewayError as e:
            try:
                await self._finish(total, "failed", e.code)
            except AuditError as audit_error:
                log.warning("migrate: failure not recorded: %s", audit_error)
            raise
        await self._finish(total, "ok", None)
        return total

    async def _batch(self, rows: list[Row]) -> Counts:
        counts = Counts(scanned=len(rows))
        texts: list[Row] = []
        for row in rows:
            if row.value is None or row.value == "":
                counts.empty += 1
            elif not isinstance(row.value, str):
                counts.not_text += 1
            else:
                texts.append(row)
        spec = self._plan.spec
        known = await self._vault.are_tokens([DetokenizeItem(str(r.value), spec) for r in texts])
        plain = [r for r, is_token in zip(texts, known, strict=True) if not is_token]
        counts.already_tokens = len(texts) - len(plain)
        if self._plan.dry_run:
            fitting = [r for r in plain if self._fits(str(r.value))]
            counts.mismatched = len(plain) - len(fitting)
            counts.tokenized = len(fitting)
            return counts
        changes = await self._tokenize(plain)
        counts.mismatched = len(plain) - len(changes)
        if not changes:
            return counts
        await self._emit("migrate.batch", **_fields(counts, tokenized=len(changes)))
        written = await self._source.apply(changes)
        counts.tokenized = written
        counts.conflicts = len(changes) - written
        return counts

    async def _tokenize(self, plain: list[Row]) -> list[Change]:
        """Tokens for ``plain`` (records committed); the rows to change, mismatches left out."""
        if not plain:
            return []
        p = self._plan
        items = [TokenizeItem(str(r.value), p.spec, r.owner, p.tenant) for r in plain]
        tokens = await self._vault.tokenize(items)
        return [
            Change(r.key, str(r.value), t)
            for r, t in zip(plain, tokens, strict=True)
            if isinstance(t, str)
        ]

    def _fits(self, value: str) -> bool:
        """Whether tokenize would accept ``value`` (the vault's own format check)."""
        fmt = self._plan.spec.format
        return fmt.kind not in SHAPED or fmt.on_mismatch == "opaque" or fits(value, fmt)

    async def _finish(self, total: Counts, result: str, error: str | None) -> None:
        await self._emit("migrate.finish", **_fields(total), result=result, error=error)

    async def _emit(self, event: str, **fields: AuditValue) -> None:
        t, p = self._target, self._plan
        base: dict[str, AuditValue] = {
            "actor": p.actor,
            "database": self._source.engine,
            "table": t.table,
            "column": t.column,
            "field_class": p.spec.name,
            "dry_run": p.dry_run,
        }
        merged = {**base, **fields}
        await self._auditor.emit(event, **{k: v for k, v in merged.items() if v is not None})


def _fields(counts: Counts, **override: int) -> dict[str, AuditValue]:
    out: dict[str, AuditValue] = dict(asdict(counts))
    out.update(override)
    return out
