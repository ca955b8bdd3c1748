"""What verification reports: where a line came from, what went wrong, per writer and overall.

Plain frozen data, shared by the verifier (:mod:`audit.verify`), the readers
(:mod:`audit.sources`) and the CLI. Details name positions and seq numbers,
never field values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What happened at the first bad entry."""

    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    EDITED = "edited"
    TRUNCATED = "truncated"
    BAD_SIGNATURE = "bad_signature"
    SINK_MISMATCH = "sink_mismatch"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a line came from: a file and its 1-based line number, or a table and row id."""

    source: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True, slots=True)
class Line:
    """One raw line (with its ``\\n`` when it had one) and its location."""

    location: Location
    data: bytes


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem: its kind, the writer and seq concerned, where, and a value-free detail."""

    kind: Kind
    writer: str | None
    seq: int | None
    location: Location | None
    detail: str

    def __str__(self) -> str:
        where = str(self.location) if self.location is not None else "-"
        seq = "-" if self.seq is None else str(self.seq)
        return f"{self.kind.value} at {where} writer={self.writer or '-'} seq={seq}: {self.detail}"


@dataclass(frozen=True, slots=True)
class WriterResult:
    """One writer's chain: entries accepted, checkpoints checked, closed or not, first finding."""

    writer: str
    entries: int
    checkpoints: int
    closed: bool
    finding: Finding | None


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of a verification; ``ok`` only when nothing at all was found."""

    writers: tuple[WriterResult, ...]
    sink_findings: tuple[Finding, ...] = ()

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding: second-sink records first, then one per broken writer."""
        return self.sink_findings + tuple(w.finding for w in self.writers if w.finding)

    @property
    def ok(self) -> bool:
        """True when every chain is intact (and closed, unless allowed otherwise)."""
        return not self.findings
