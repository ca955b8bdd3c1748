"""Verification of audit chains: the first bad entry of every writer, and what happened to it.

Pure core: it is fed lines (bytes plus where they came from), second-sink
checkpoint records and public keys, and does no IO itself (see
:mod:`audit.sources` for reading files and PostgreSQL). It streams: memory
stays bounded whatever the log's size.

Checks, per writer, in log order:
1. every line is a well-formed canonical entry (:mod:`audit.entry`) whose
   ``hash`` matches its content, of this writer;
2. ``seq`` runs 0, 1, 2, ... and ``prev`` is the hash of the entry before
   (``GENESIS`` first), across rotated files;
3. every checkpoint entry covers the entry before it and carries a valid
   signature by a known key (:mod:`audit.checkpoint`);
4. nothing follows the closing checkpoint, and there is one (else the log
   was truncated or its writer crashed; ``allow_unclosed`` accepts live logs);
5. with a second sink: every record there is validly signed, matches the
   chain, and none lies beyond the chain's end; every chain checkpoint is there.

The first break is classified with one line of lookahead (or a bounded scan
for gaps): a line that does not match its hash or is malformed is
``edited``, unless the next line continues the chain as if it were absent
(``inserted``); a link that breaks behind an intact entry blames that entry
(``edited``: changed and re-hashed); a seq jump is ``reordered`` when the
missing entries or the jumping entry's predecessor show up later, else
``deleted``; a repeated seq is ``inserted``. Checkpoint failures are
``bad_signature``; a chain that the signed checkpoints contradict was
rewritten (``edited``); disagreement with the second sink is
``sink_mismatch`` or ``truncated``. Findings carry positions and seq numbers
only, never field values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.checkpoint import (
    CHECKPOINT_EVENT,
    Checkpoint,
    checkpoint_from_entry,
    parse_checkpoint_record,
)
from audit.entry import GENESIS, Entry, parse_entry
from audit.errors import AuditFormatError
from audit.report import Finding, Kind, Line, Location, Report, WriterResult

__all__ = ["Finding", "Kind", "Line", "Location", "Report", "WriterResult", "verify_log"]


@dataclass(frozen=True, slots=True)
class _Item:
    location: Location
    entry: Entry | None
    problem: str | None
    incomplete: bool

    @property
    def good(self) -> bool:
        return self.entry is not None and self.problem is None


def _parse(line: Line) -> _Item:
    incomplete = not line.data.endswith(b"\n")
    try:
        entry = parse_entry(line.data)
    except AuditFormatError as e:
        return _Item(line.location, None, str(e).removeprefix("audit: "), incomplete)
    if not entry.intact:
        return _Item(line.location, entry, "content does not match its hash", incomplete)
    if incomplete:
        return _Item(line.location, entry, "line has no terminating newline", incomplete)
    return _Item(line.location, entry, None, incomplete)


@dataclass(slots=True)
class _Gap:
    """A seq jump being classified by scanning ahead."""

    item: _Item
    scanned: int = 0
    predecessor_later: bool = False
    missing_at: int | None = None


@dataclass(slots=True)
class _Chain:
    """The streaming check of one writer's chain."""

    writer: str
    keys: Mapping[str, Ed25519PublicKey]
    sink: Mapping[int, _SinkRecord] | None
    allow_unclosed: bool
    lookahead: int
    expected: int = 0
    prev_hash: str = GENESIS
    prev: _Item | None = None
    last_checkpoint: int | None = None
    closed: bool = False
    checkpoints: int = 0
    finding: Finding | None = None
    pending: tuple[str, _Item] | None = None
    gap: _Gap | None = None
    unconfirmed: Finding | None = None

    @property
    def done(self) -> bool:
        """True once a finding is decided: later lines cannot change it."""
        return self.finding is not None

    def feed(self, line: Line) -> None:
        if self.finding is not None:
            return
        item = _parse(line)
        if self.pending is not None:
            how, held = self.pending
            self.pending = None
            self._decide(how, held, item)
        elif self.gap is not None:
            self._scan(item)
        else:
            self._step(item)

    def finish(self) -> WriterResult:
        if self.pending is not None:
            how, held = self.pending
            self.pending = None
            self._decide(how, held, None)
        if self.gap is not None:
            self._decide_gap()
        if self.finding is None:
            self._final_checks()
        return WriterResult(self.writer, self.expected, self.checkpoints, self.closed, self.finding)

    # -- the walk ---------------------------------------------------------

    def _step(self, item: _Item) -> None:
        e = item.entry
        if e is None or not item.good:
            self.pending = ("bad", item)
            return
        if e.writer != self.writer:
            self._found(Kind.INSERTED, item, f"entry of writer {e.writer} in this log", e.seq)
        elif self.closed:
            self._found(Kind.INSERTED, item, "entry after the closing checkpoint", e.seq)
        elif e.seq == self.expected:
            if e.prev == self.prev_hash:
                self._accept(item, e)
            else:
                self.pending = ("link", item)
        elif e.seq > self.expected:
            if e.prev == self.prev_hash:
                self._found(Kind.EDITED, item, f"seq altered (expected {self.expected})", e.seq)
            else:
                self.gap = _Gap(item)
        elif self.prev is not None and e.seq == self.expected - 1:
            self.pending = ("dup", item)
        else:
            self._found(Kind.INSERTED, item, f"seq {e.seq} again after seq {self.expected - 1}")

    def _accept(self, item: _Item, e: Entry) -> None:
        if self.sink is not None and self._contradicts_sink(self.sink, item, e):
            return
        if e.event == CHECKPOINT_EVENT and not self._checkpoint(item, e):
            return
        self.expected = e.seq + 1
        self.prev_hash = e.hash
        self.prev = item

    def _contradicts_sink(self, sink: Mapping[int, _SinkRecord], item: _Item, e: Entry) -> bool:
        signed = sink.get(e.seq)
        if signed is not None and signed.checkpoint.hash != e.hash:
            self._found(Kind.EDITED, item, "entry differs from the one the second sink signed")
            return True
        covering = sink.get(e.seq - 1)
        if covering is not None and e.event != CHECKPOINT_EVENT:
            self._found(
                Kind.DELETED, item, f"checkpoint over seq {e.seq - 1} missing from the chain"
            )
            return True
        return False

    def _checkpoint(self, item: _Item, e: Entry) -> bool:
        try:
            cp = checkpoint_from_entry(e)
        except AuditFormatError as err:
            self._found(Kind.EDITED, item, str(err).removeprefix("audit: "))
            return False
        if cp.seq != e.seq - 1 or cp.hash != e.prev or cp.count != cp.seq + 1:
            since = 0 if self.last_checkpoint is None else self.last_checkpoint + 1
            self._found(
                Kind.EDITED,
                item,
                f"entries seq {since}..{e.seq - 1} were rewritten after this checkpoint was signed",
            )
            return False
        reason = cp.verify(self.keys)
        if reason is not None:
            self._found(Kind.BAD_SIGNATURE, item, f"checkpoint {reason}")
            return False
        if self.sink is not None:
            self._compare_sink(self.sink, item, cp)
            if self.finding is not None:
                return False
        self.closed = cp.final
        self.checkpoints += 1
        self.last_checkpoint = e.seq
        return True

    def _compare_sink(self, sink: Mapping[int, _SinkRecord], item: _Item, cp: Checkpoint) -> None:
        record = sink.get(cp.seq)
        if record is None:
            if self.unconfirmed is None:
                self.unconfirmed = self._finding(
                    Kind.SINK_MISMATCH, item, "checkpoint missing from the second sink"
                )
        elif record.checkpoint != cp:
            self._found(Kind.SINK_MISMATCH, item, "checkpoint differs from the second sink's")

    # -- classifying the first break ---------------------------------------

    def _continues(self, item: _Item | None) -> bool:
        """True when ``item`` is exactly the entry the chain expects next."""
        return (
            item is not None
            and item.good
            and item.entry is not None
            and item.entry.writer == self.writer
            and item.entry.seq == self.expected
            and item.entry.prev == self.prev_hash
        )

    def _decide(self, how: str, item: _Item, nxt: _Item | None) -> None:
        e = item.entry
        if how == "bad":
            if nxt is None and item.incomplete:
                self._found(Kind.TRUNCATED, item, "last line is incomplete")
            elif self._continues(nxt):
                self._found(Kind.INSERTED, item, "line is not part of the chain")
            else:
                self._found(Kind.EDITED, item, item.problem or "malformed line")
        elif how == "link" and e is not None:
            if self._continues(nxt) and nxt is not None and nxt.entry is not None:
                self._found(Kind.INSERTED, item, "entry does not link to the one before")
            elif self.prev is None:
                self._found(Kind.EDITED, item, "first entry does not start the chain")
            else:
                self._found(
                    Kind.EDITED,
                    self.prev,
                    "entry was changed and re-hashed: the next one links to a different hash",
                )
        elif how == "dup" and e is not None and self.prev is not None and self.prev.entry:
            before = self.prev.entry
            nxt_links_here = (
                nxt is not None
                and nxt.good
                and nxt.entry is not None
                and nxt.entry.seq == self.expected
                and nxt.entry.prev == e.hash
            )
            if e.hash == before.hash:
                self._found(Kind.INSERTED, item, "duplicate of the entry before")
            elif nxt_links_here and e.prev == before.prev:
                self._found(Kind.INSERTED, self.prev, "entry is not part of the chain")
            else:
                self._found(Kind.INSERTED, item, f"second entry with seq {e.seq}")

    def _scan(self, item: _Item) -> None:
        gap = self.gap
        if gap is None or gap.item.entry is None:
            return
        gap.scanned += 1
        if item.good and item.entry is not None:
            if item.entry.hash == gap.item.entry.prev:
                gap.predecessor_later = True
            if item.entry.seq == self.expected and gap.missing_at is None:
                gap.missing_at = gap.scanned
        if gap.predecessor_later or gap.scanned >= self.lookahead:
            self._decide_gap()

    def _decide_gap(self) -> None:
        gap, self.gap = self.gap, None
        if gap is None or gap.item.entry is None:
            return
        seq = gap.item.entry.seq
        if gap.predecessor_later:
            self._found(Kind.REORDERED, gap.item, "entry appears before its predecessor")
        elif gap.missing_at == 1:
            self._found(Kind.INSERTED, gap.item, "line is not part of the chain")
        elif gap.missing_at is not None:
            self._found(Kind.REORDERED, gap.item, f"seq {self.expected} appears later")
        else:
            missing = f"seq {self.expected}" + (f"..{seq - 1}" if seq - 1 > self.expected else "")
            self._found(
                Kind.DELETED, gap.item, f"{missing} missing before this entry", self.expected
            )

    def _final_checks(self) -> None:
        last = self.prev.location if self.prev is not None else None
        if self.sink is not None:
            beyond = [s for s in self.sink if s + 1 >= self.expected]
            if beyond:
                end = "has no entries" if self.prev is None else f"ends at seq {self.expected - 1}"
                self.finding = Finding(
                    Kind.TRUNCATED,
                    self.writer,
                    self.expected,
                    last,
                    f"log {end}; the second sink holds a checkpoint over seq {min(beyond)}",
                )
                return
            if self.unconfirmed is not None:
                self.finding = self.unconfirmed
                return
        if not self.closed and not self.allow_unclosed:
            end = (
                "no entries"
                if self.prev is None
                else f"no closing checkpoint after seq {self.expected - 1}"
            )
            self.finding = Finding(
                Kind.TRUNCATED,
                self.writer,
                self.expected,
                last,
                f"{end}: the log was truncated or its writer crashed",
            )

    def _finding(self, kind: Kind, item: _Item, detail: str, seq: int | None = None) -> Finding:
        if seq is None:
            seq = item.entry.seq if item.entry is not None else self.expected
        return Finding(kind, self.writer, seq, item.location, detail)

    def _found(self, kind: Kind, item: _Item, detail: str, seq: int | None = None) -> None:
        if self.finding is None:
            self.finding = self._finding(kind, item, detail, seq)


@dataclass(frozen=True, slots=True)
class _SinkRecord:
    checkpoint: Checkpoint
    location: Location


def _load_sink(
    lines: Iterable[Line], keys: Mapping[str, Ed25519PublicKey]
) -> tuple[dict[str, dict[int, _SinkRecord]], list[Finding]]:
    """Second-sink records by writer and covered seq; bad records become findings."""
    records: dict[str, dict[int, _SinkRecord]] = {}
    findings: list[Finding] = []
    for line in lines:
        try:
            cp = parse_checkpoint_record(line.data)
        except AuditFormatError as e:
            findings.append(
                Finding(Kind.EDITED, None, None, line.location, str(e).removeprefix("audit: "))
            )
            continue
        reason = cp.verify(keys)
        if reason is not None:
            findings.append(
                Finding(
                    Kind.BAD_SIGNATURE,
                    cp.writer,
                    cp.seq,
                    line.location,
                    f"second-sink checkpoint {reason}",
                )
            )
            continue
        mine = records.setdefault(cp.writer, {})
        known = mine.get(cp.seq)
        if known is not None and known.checkpoint != cp:
            findings.append(
                Finding(
                    Kind.SINK_MISMATCH,
                    cp.writer,
                    cp.seq,
                    line.location,
                    f"second sink holds two different checkpoints (other at {known.location})",
                )
            )
            continue
        mine[cp.seq] = _SinkRecord(cp, line.location)
    return records, findings


def verify_log(
    streams: Iterable[tuple[str, Iterable[Line]]],
    *,
    keys: Mapping[str, Ed25519PublicKey],
    checkpoints: Iterable[Line] | None = None,
    complete: bool = False,
    allow_unclosed: bool = False,
    lookahead: int = 10_000,
) -> Report:
    """Verify each writer's chain (``streams``: writer -> its lines in order).

    ``checkpoints`` are the second sink's records (None: no second sink).
    ``complete`` says the streams hold every writer (a directory, a database),
    so a writer known only to the second sink means its log was deleted.
    """
    sink, sink_findings = _load_sink(checkpoints, keys) if checkpoints is not None else (None, [])
    results: list[WriterResult] = []
    for writer, lines in streams:
        chain = _Chain(
            writer,
            keys,
            sink.get(writer, {}) if sink is not None else None,
            allow_unclosed,
            max(1, lookahead),
        )
        iterator = iter(lines)
        try:
            for line in iterator:
                chain.feed(line)
                if chain.done:
                    break
        finally:
            if isinstance(iterator, Iterator) and hasattr(iterator, "close"):
                iterator.close()
        results.append(chain.finish())
    if complete and sink is not None:
        seen = {r.writer for r in results}
        for writer, records in sorted(sink.items()):
            if writer not in seen and records:
                first = min(records.values(), key=lambda r: r.checkpoint.seq)
                detail = f"no log for this writer; the second sink holds {len(records)} checkpoints"
                finding = Finding(Kind.DELETED, writer, 0, first.location, detail)
                results.append(WriterResult(writer, 0, 0, False, finding))
    return Report(tuple(results), tuple(sink_findings))
