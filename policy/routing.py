"""Route matching, compiled once per config load.

Precedence, from first to last rule (the first rule that differs decides):
1. ``priority``: higher wins.
2. host: an exact host beats a wildcard host (longer suffix first), which
   beats a route without host.
3. kind: exact path > template > prefix > regex.
4. within a kind: templates with more literal segments first (then the
   literal leftmost difference); longer prefixes first.
5. declaration order (files sorted by name, routes in file order).
Two routes whose match is identical and that no rule separates are refused at
load, so the table never depends on an accident of order.

Cost: a segment trie per host bucket; a lookup walks the path's segments once
(with bounded backtracking between a literal and a parameter child), so its
cost depends on the path depth and on the number of host buckets a request's
host falls in, not on the number of routes. Regex routes are tried only when
their precedence could beat the best trie match, in precedence order. The
gateway asks :meth:`Router.match_memo`, which also remembers recent answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from policy.model import Route
from policy.templates import compile_regex, parse_prefix, parse_template, split_path

_KIND_EXACT, _KIND_TEMPLATE, _KIND_PREFIX, _KIND_REGEX = 3, 2, 1, 0
MEMO_SIZE = 4096  # answers Router.match_memo keeps (per compiled table)


@dataclass(frozen=True, slots=True)
class Match:
    """A matched route and the template parameters it captured."""

    route: Route
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class NoRoute:
    """Nothing matched: 404. ``allowed`` is set when the path matched but no method did (405)."""

    allowed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Entry:
    route: Route
    rank: tuple[int, ...]  # larger is better
    methods: frozenset[str] | None
    param_names: tuple[str, ...] = ()


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    full: list[_Entry] = field(default_factory=list)  # exact and template routes ending here
    prefix: list[_Entry] = field(default_factory=list)  # prefix routes ending here


@dataclass(frozen=True, slots=True)
class _RegexEntry:
    entry: _Entry
    pattern: re.Pattern[str]
    host: str | None


def _host_rank(host: str | None) -> tuple[int, int]:
    if host is None:
        return (0, 0)
    if host.startswith("*."):
        return (1, len(host))
    return (2, len(host))


def _entry(route: Route, order: int) -> tuple[_Entry, tuple[object, ...]]:
    """Build the trie entry and an identity key used to detect duplicate matches."""
    m = route.match
    methods = frozenset(m.methods) if m.methods else None
    host = _host_rank(m.host)
    if m.path is not None:
        segs = parse_template(m.path)
        literals = tuple(1 if s.literal is not None else 0 for s in segs)
        kind = _KIND_EXACT if all(literals) else _KIND_TEMPLATE
        spec: tuple[int, ...] = (sum(literals), *literals)
        names = tuple(s.param for s in segs if s.param is not None)
    elif m.prefix is not None:
        kind, spec, names = _KIND_PREFIX, (len(parse_prefix(m.prefix)),), ()
    else:
        kind, spec, names = _KIND_REGEX, (), ()
    rank = (route.priority, *host, kind, *spec, -order)
    shape = m.path if m.path is None else re.sub(r"\{[^}]*\}", "{}", m.path)
    identity = (route.priority, m.host, shape, m.prefix, m.regex, methods)
    return _Entry(route, rank, methods, names), identity


class Router:
    """Compiled route table; build with :meth:`compile`, query with :meth:`match`."""

    def __init__(self) -> None:
        self._exact_hosts: dict[str, _Node] = {}
        self._wild_hosts: list[tuple[str, _Node]] = []  # (".example.com", trie), longest first
        self._any_host = _Node()
        self._regexes: list[_RegexEntry] = []
        self.routes: tuple[Route, ...] = ()
        self._memo: dict[tuple[str, str, str], Match | NoRoute] = {}

    @classmethod
    def compile(cls, routes: Sequence[Route]) -> Router:
        """Compile ``routes`` (in declaration order); raise ValueError on ambiguity."""
        router = cls()
        router.routes = tuple(routes)
        seen: dict[tuple[object, ...], str] = {}
        for order, route in enumerate(routes):
            entry, identity = _entry(route, order)
            if identity in seen:
                raise ValueError(
                    f"routes '{seen[identity]}' and '{route.name}' match the same requests; "
                    "give one a higher priority or remove it"
                )
            seen[identity] = route.name
            router._add(entry)
        router._wild_hosts.sort(key=lambda item: len(item[0]), reverse=True)
        router._regexes.sort(key=lambda r: r.entry.rank, reverse=True)
        return router

    def _trie_for(self, host: str | None) -> _Node:
        if host is None:
            return self._any_host
        if host.startswith("*."):
            suffix = host[1:]
            for existing, node in self._wild_hosts:
                if existing == suffix:
                    return node
            node = _Node()
            self._wild_hosts.append((suffix, node))
            return node
        return self._exact_hosts.setdefault(host, _Node())

    def _add(self, entry: _Entry) -> None:
        m = entry.route.match
        if m.regex is not None:
            self._regexes.append(_RegexEntry(entry, compile_regex(m.regex), m.host))
            return
        node = self._trie_for(m.host)
        if m.prefix is not None:
            for literal in parse_prefix(m.prefix):
                node = node.literal.setdefault(literal, _Node())
            node.prefix.append(entry)
            return
        if m.path is None:
            raise ValueError(f"route '{entry.route.name}' has no path, prefix or regex")
        for seg in parse_template(m.path):
            if seg.literal is not None:
                node = node.literal.setdefault(seg.literal, _Node())
            else:
                node.param = node.param or _Node()
                node = node.param
        node.full.append(entry)

    def match(self, host: str, method: str, path: str) -> Match | NoRoute:
        """Best route for (host, method, decoded path), or why there is none."""
        host = host.lower()
        segments = split_path(path) if path.startswith("/") else None
        candidates: list[tuple[_Entry, tuple[str, ...]]] = []
        if segments is not None:
            for trie in self._tries_for_host(host):
                _walk(trie, segments, 0, (), candidates)
        best = _best(candidates, method)
        wrong_method: list[_Entry] = []  # regexes that matched all but the method
        for rx in self._regexes:
            if best is not None and rx.entry.rank < best[0].rank:
                break
            if not _host_matches(rx.host, host) or not rx.pattern.fullmatch(path):
                continue
            if rx.entry.methods is None or method in rx.entry.methods:
                best = (rx.entry, ())
                break
            wrong_method.append(rx.entry)
        if best is None:  # only now: what would have matched with another method (405)
            allowed: set[str] = set()
            for entry in (*(e for e, _ in candidates), *wrong_method):
                allowed |= entry.methods or set()
            return NoRoute(frozenset(allowed))
        entry, values = best
        return Match(entry.route, dict(zip(entry.param_names, values, strict=True)))

    def match_memo(self, host: str, method: str, path: str) -> Match | NoRoute:
        """:meth:`match`, remembering the last ``MEMO_SIZE`` distinct answers.

        The table never changes after compile, so an answer stays right for the
        router's life (a reload compiles a new router). Oldest entries go first;
        a flood of distinct paths costs one dict insert each on top of a match.
        The answer is shared: callers must not modify ``Match.params``.
        """
        key = (host, method, path)
        found = self._memo.get(key)
        if found is None:
            found = self.match(host, method, path)
            if len(self._memo) >= MEMO_SIZE:
                del self._memo[next(iter(self._memo))]
            self._memo[key] = found
        return found

    def _tries_for_host(self, host: str) -> list[_Node]:
        tries = []
        if (exact := self._exact_hosts.get(host)) is not None:
            tries.append(exact)
        if self._wild_hosts:
            tries.extend(node for suffix, node in self._wild_hosts if host.endswith(suffix))
        tries.append(self._any_host)
        return tries


def _host_matches(pattern: str | None, host: str) -> bool:
    if pattern is None:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _walk(
    node: _Node,
    segments: list[str],
    depth: int,
    values: tuple[str, ...],
    out: list[tuple[_Entry, tuple[str, ...]]],
) -> None:
    """Collect every prefix entry on the way and every full entry at the end."""
    out.extend((e, ()) for e in node.prefix)
    if depth == len(segments):
        out.extend((e, values) for e in node.full)
        return
    seg = segments[depth]
    if (child := node.literal.get(seg)) is not None:
        _walk(child, segments, depth + 1, values, out)
    if node.param is not None and seg:
        _walk(node.param, segments, depth + 1, (*values, seg), out)


def _best(
    candidates: list[tuple[_Entry, tuple[str, ...]]], method: str
) -> tuple[_Entry, tuple[str, ...]] | None:
    best: tuple[_Entry, tuple[str, ...]] | None = None
    for entry, values in candidates:
        if entry.methods is not None and method not in entry.methods:
            continue
        if best is None or entry.rank > best[0].rank:
            best = (entry, values)
    return best
