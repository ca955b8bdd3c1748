"""The compiled field rules of one route and direction, applied to one message at a time.

Rules (the order of work for every message):
1. Read: headers always; the query string when a query rule exists; the body
   when a body rule exists (see :mod:`policy.reading` for limits, content
   types and codings).
2. Select, rule by rule in declaration order. A location belongs to the first
   rule that selects it; later rules do not see it. JSON nulls are left alone.
   Selecting an object, an array or a file part fails the message (400 naming
   the rule): rules transform scalar values only.
3. Call each rule's action once with all its values as one batch; rules with
   values run concurrently. If any action raises, the others are cancelled
   and the message fails with that exception (fail closed).
4. Decide: any ``deny`` -> 403 naming the first denying rule; otherwise any
   ``invalid`` -> 400 naming the first such rule. Reasons are the action's
   fixed words; values never appear in an error.
5. Write back replace / remove results and re-encode only what changed.
Decisions depend on which locations rules select, never on member order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from plugins.base import (
    ActionContext,
    Direction,
    FieldAction,
    FieldResult,
    FieldValue,
    Outcome,
    Scalar,
)
from policy.bodies.jsondoc import JsonDocument
from policy.bodies.mediatype import BodyKind
from policy.bodies.multipart import FilePart, MultipartDocument
from policy.bodies.urlencoded import FormPairs
from policy.message import (
    BadField,
    Denied,
    Message,
    MessageError,
    TransformedMessage,
)
from policy.reading import Documents, HeaderLines, read_body, read_query, write_body
from policy.selectors import JsonPath, Selector, Slot


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One field rule ready to run: its label (``request[0]``), selector and configured action."""

    label: str
    selector: Selector
    action: FieldAction

    @property
    def title(self) -> str:
        """How errors name the rule: ``request[0] $.ssn``."""
        return f"{self.label} {self.selector}"


type _Doc = JsonDocument | FormPairs | MultipartDocument | HeaderLines
type _Place = Slot | int  # a JSON slot, or an index into form pairs, query pairs or header lines
type _Hit = tuple[_Doc, _Place, FieldValue]
type _Found = tuple[JsonPath | int, str, _Place, object]  # claim key, location text, place, value
_REFUSALS = frozenset({Outcome.DENY, Outcome.INVALID})
_SCALAR = (str, int, float)  # bool is an int, JsonFloat a float


_KINDS: dict[str, frozenset[BodyKind]] = {
    "json": frozenset({"json"}),
    "form": frozenset({"urlencoded", "multipart"}),
}


class MessageTransformer:
    """Field rules of one route and direction, built once at load, shared by every request."""

    def __init__(self, *, route: str, direction: Direction, rules: Sequence[CompiledRule]) -> None:
        if not rules:
            raise ValueError("a transformer needs at least one rule")
        self.route = route
        self.direction: Direction = direction
        self.rules = tuple(rules)
        self._upstream = direction == "response"
        body_rules = [r for r in self.rules if r.selector.targets_body]
        self.body_kinds = frozenset(k for r in body_rules for k in _KINDS[r.selector.kind])
        self._body_label = body_rules[0].title if body_rules else ""
        query_rules = [r for r in self.rules if r.selector.kind == "query"]
        self._query_label = query_rules[0].title if query_rules else ""

    @property
    def needs_body(self) -> bool:
        """Whether the body must be buffered for this transformer (a body rule exists)."""
        return bool(self.body_kinds)

    async def apply(self, message: Message, ctx: ActionContext) -> TransformedMessage:
        """Transform ``message``; raise a MessageError (or an action's error) to refuse it.

        ``ctx`` is the per-request context; its ``route``, ``rule`` and
        ``direction`` are set here for each rule.
        """
        docs = self._read(message)
        hits = self._select(docs)
        results = await self._run(hits, ctx)
        self._decide(hits, results)
        written = self._write(hits, results)
        return self._finish(message, docs, written)

    def _read(self, message: Message) -> Documents:
        docs = Documents(HeaderLines(message.headers))
        if self._query_label:
            docs.query = read_query(message.query, self._query_label, upstream=self._upstream)
        if self.needs_body:
            docs.body, docs.codings = read_body(
                message, self.body_kinds, self._body_label, upstream=self._upstream
            )
        return docs

    def _select(self, docs: Documents) -> list[list[_Hit]]:
        claimed: set[tuple[int, JsonPath | int]] = set()
        out: list[list[_Hit]] = []
        for rule in self.rules:
            hits: list[_Hit] = []
            wrong: list[tuple[str, object]] = []
            doc, found = _find(rule.selector, docs)
            for key, where, place, value in found:
                if doc is None or value is None or (id(doc), key) in claimed:
                    continue
                claimed.add((id(doc), key))
                if not isinstance(value, _SCALAR):
                    wrong.append((str(where), value))
                    continue
                hits.append((doc, place, FieldValue(value, where)))
            if wrong:  # name the first by path, so the error never depends on member order
                raise self._not_scalar(rule, min(wrong, key=lambda w: w[0])[1])
            out.append(hits)
        return out

    def _not_scalar(self, rule: CompiledRule, value: object) -> BadField:
        what = {dict: "an object", list: "an array", FilePart: "a file part"}.get(
            type(value), "a value"
        )
        return BadField(
            f"policy: {rule.title}: selects {what}; rules transform scalar values only",
            upstream=self._upstream,
        )

    async def _run(self, hits: list[list[_Hit]], ctx: ActionContext) -> list[list[FieldResult]]:
        jobs = [(i, rule) for i, rule in enumerate(self.rules) if hits[i]]
        results: list[list[FieldResult]] = [[] for _ in self.rules]
        if len(jobs) == 1:  # the common case needs no task
            i, rule = jobs[0]
            results[i] = await rule.action.apply([h[2] for h in hits[i]], self._ctx(ctx, rule))
            return results
        try:
            async with asyncio.TaskGroup() as group:
                tasks = {
                    i: group.create_task(
                        rule.action.apply([h[2] for h in hits[i]], self._ctx(ctx, rule)),
                        name=f"tokengate-field-{self.route}-{rule.label}",
                    )
                    for i, rule in jobs
                }
        except BaseExceptionGroup as group_error:
            raise _first(group_error) from None
        for i, task in tasks.items():
            results[i] = task.result()
        return results

    def _ctx(self, ctx: ActionContext, rule: CompiledRule) -> ActionContext:
        return dataclasses.replace(ctx, route=self.route, rule=rule.label, direction=self.direction)

    def _decide(self, hits: list[list[_Hit]], results: list[list[FieldResult]]) -> None:
        for rule, rule_hits, rule_results in zip(self.rules, hits, results, strict=True):
            if len(rule_results) != len(rule_hits):
                raise MessageError(
                    f"policy: {rule.title}: action returned {len(rule_results)} results "
                    f"for {len(rule_hits)} values"
                )
        if not any(r.outcome in _REFUSALS for rule_results in results for r in rule_results):
            return
        for outcome, error in ((Outcome.DENY, Denied), (Outcome.INVALID, BadField)):
            for rule, rule_results in zip(self.rules, results, strict=True):
                if bad := next((r for r in rule_results if r.outcome is outcome), None):
                    word = "denied" if outcome is Outcome.DENY else "invalid value"
                    raise error(
                        f"policy: {rule.title}: {word} ({_reason(bad.reason)})",
                        upstream=self._upstream,
                    )

    def _write(self, hits: list[list[_Hit]], results: list[list[FieldResult]]) -> int:
        written = 0
        for rule, rule_hits, rule_results in zip(self.rules, hits, results, strict=True):
            for hit, result in zip(rule_hits, rule_results, strict=True):
                if result.outcome not in (Outcome.REMOVE, Outcome.REPLACE):
                    continue
                value = result.value
                if isinstance(value, float) and not math.isfinite(value):
                    raise MessageError(f"policy: {rule.title}: action returned a non-finite number")
                try:
                    _write_one(hit, None if result.outcome is Outcome.REMOVE else (value,))
                except (ValueError, TypeError) as e:
                    raise MessageError(
                        f"policy: {rule.title}: action returned a value this field cannot hold"
                    ) from e
                written += 1
        return written

    def _finish(self, message: Message, docs: Documents, written: int) -> TransformedMessage:
        headers = docs.headers.result() if docs.headers.changed else message.headers
        query = docs.query.encode() if docs.query and docs.query.changed else message.query
        body, changed = message.body, bool(docs.body and docs.body.changed)
        if docs.body is not None and changed:
            body, headers = write_body(docs.body, docs.codings, headers)
        return TransformedMessage(
            headers=headers, body=body, query=query, body_changed=changed, fields=written
        )


def _write_one(hit: _Hit, new: tuple[Scalar] | None) -> None:
    """Remove (``new`` is None) or replace the value at ``hit``."""
    doc, place, _ = hit
    if isinstance(doc, JsonDocument):
        if isinstance(place, int):
            raise TypeError("json locations are slots")
        if new is None:
            doc.remove_slot(place)
        else:
            doc.replace_slot(place, new[0])
        return
    if not isinstance(place, int):
        raise TypeError("form, query and header locations are indexes")
    if new is None:
        doc.remove(place)
    else:
        doc.replace(place, _text(new[0]))


def _find(selector: Selector, docs: Documents) -> tuple[_Doc | None, list[_Found]]:
    """The document a selector reads and what it finds there (nothing if that part is absent).

    Each find is (claim key, location text, write-back place, value).
    """
    kind, body = selector.kind, docs.body
    if kind == "json":
        if not isinstance(body, JsonDocument):
            return None, []
        return body, [(s[0], s[1], s, s[4]) for s in body.locate(selector.steps)]
    doc: FormPairs | MultipartDocument | HeaderLines | None = None
    if kind == "header":
        doc = docs.headers
    elif kind == "query":
        doc = docs.query
    elif kind == "form" and not isinstance(body, JsonDocument):
        doc = body
    if doc is None:
        return None, []
    where = str(selector)
    return doc, [(i, where, i, value) for i, value in doc.select(selector.name)]


def _text(value: Scalar) -> str:
    """How a replacement is written where only text fits (form, query, header)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _reason(reason: str) -> str:
    """An action's reason as errors show it: printable, short."""
    clean = "".join(ch for ch in reason if ch.isprintable())[:80]
    return clean or "no reason given"


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf exception of a (nested) group."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
