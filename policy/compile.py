"""Compiling the field rules of every loaded policy file, once per config load.

Rules (each problem is reported as ``FILE: YAML.PATH: problem``, all of them
at once, and nothing is compiled when there is any):
- A field class is declared once across all files; a rule may name a class
  from any file, and naming an undeclared one is an error.
- A rule's action must be registered; its options (with ``class`` resolved
  to a :class:`~plugins.base.FieldClass`) are validated by the action itself,
  and each rule gets its own action instance.
- Responses have no query string, so ``query:`` rules are request-only.
- Two rules of one direction may not name the same field: the second could
  never see a value (a location belongs to the first rule selecting it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from plugins import registry as default_registry
from plugins.base import Direction, FieldAction, FieldClass
from policy.errors import PolicyError
from policy.fields import FieldRule
from policy.model import PolicyFile
from policy.selectors import parse_selector
from policy.transform import CompiledRule, MessageTransformer


class ActionRegistry(Protocol):
    """Where actions come from (:mod:`plugins.registry` in production)."""

    def create_action(self, name: str, options: Mapping[str, object]) -> FieldAction:
        """A new configured action; ValueError for an unknown name or bad options."""
        ...

    def action_names(self) -> frozenset[str]:
        """Every registered action name."""
        ...


class RuleSource(Protocol):
    """What field rules are compiled from: a gateway route, or another kind (egress routes)."""

    @property
    def name(self) -> str:
        """The route name (transformers and audit entries carry it)."""
        ...

    @property
    def request(self) -> Sequence[FieldRule]:
        """Rules applied to requests, in order."""
        ...

    @property
    def response(self) -> Sequence[FieldRule]:
        """Rules applied to responses, in order."""
        ...


@dataclass(frozen=True, slots=True)
class RouteFields:
    """The compiled field rules of one route; None where a direction has no rules."""

    request: MessageTransformer | None = None
    response: MessageTransformer | None = None
    tenant: str | None = None  # tenant of records made on this (unauthenticated) route

    @property
    def needs_request_body(self) -> bool:
        """Whether the request body must be buffered (a request body rule exists)."""
        return self.request is not None and self.request.needs_body

    @property
    def needs_response_body(self) -> bool:
        """Whether the response body must be buffered (a response body rule exists)."""
        return self.response is not None and self.response.needs_body


def compile_classes(policies: Sequence[tuple[str, PolicyFile]]) -> dict[str, FieldClass]:
    """Every declared field class by name; PolicyError if one is declared twice."""
    classes, problems = _classes(policies)
    if problems:
        raise PolicyError(problems)
    return classes


def _classes(
    policies: Sequence[tuple[str, PolicyFile]],
) -> tuple[dict[str, FieldClass], list[str]]:
    classes: dict[str, FieldClass] = {}
    owner: dict[str, str] = {}
    problems: list[str] = []
    for label, policy in policies:
        for name, decl in policy.classes.items():
            if name in owner:
                problems.append(
                    f"{label}: classes.{name}: class '{name}' is already declared in {owner[name]}"
                )
                continue
            owner[name] = label
            classes[name] = decl.field_class(name)
    return classes, problems


def compile_fields(
    policies: Sequence[tuple[str, PolicyFile]], *, registry: ActionRegistry | None = None
) -> dict[str, RouteFields]:
    """Compile every route's field rules: ``{route name: RouteFields}`` for every route.

    ``policies`` are (label used in errors, validated file) in load order.
    Raises PolicyError (a ConfigError) listing every problem.
    """
    reg: ActionRegistry = registry if registry is not None else default_registry
    classes, problems = _classes(policies)
    names = reg.action_names()
    out: dict[str, RouteFields] = {}
    for label, policy in policies:
        for i, route in enumerate(policy.routes):
            where = f"{label}: routes[{i}]"
            if route.name in out:
                problems.append(f"{where}.name: route '{route.name}' is already declared")
                continue
            compiler = _RouteCompiler(route, where, classes, names, reg)
            out[route.name] = RouteFields(
                request=compiler.transformer("request"),
                response=compiler.transformer("response"),
                tenant=route.tenant,
            )
            problems.extend(compiler.problems)
    if problems:
        raise PolicyError(problems)
    return out


def compile_route_rules(
    source: RuleSource,
    where: str,
    classes: Mapping[str, FieldClass],
    registry: ActionRegistry,
) -> tuple[MessageTransformer | None, MessageTransformer | None, list[str]]:
    """One rule source's (request, response) transformers and its problems, with the same rules.

    ``where`` prefixes every problem (``FILE: egress[0]``); a direction with a
    problem or without rules compiles to None. For sources other than
    ``routes:`` (the egress relay's routes), which bring their own registry.
    """
    compiler = _RouteCompiler(source, where, classes, registry.action_names(), registry)
    request, response = compiler.transformer("request"), compiler.transformer("response")
    return request, response, compiler.problems


class _RouteCompiler:
    """Builds one route's transformers, collecting problems instead of stopping at the first."""

    def __init__(
        self,
        route: RuleSource,
        where: str,
        classes: Mapping[str, FieldClass],
        names: frozenset[str],
        registry: ActionRegistry,
    ) -> None:
        self.route, self.where, self.classes = route, where, classes
        self.names, self.registry = names, registry
        self.problems: list[str] = []

    def transformer(self, direction: Direction) -> MessageTransformer | None:
        rules = self.route.request if direction == "request" else self.route.response
        compiled: list[CompiledRule] = []
        first_of: dict[str, int] = {}
        for j, rule in enumerate(rules):
            at = f"{self.where}.{direction}[{j}]"
            if rule.field.startswith("query:") and direction == "response":
                self.problems.append(f"{at}.field: responses have no query string")
                continue
            if rule.field in first_of:
                self.problems.append(
                    f"{at}.field: same field as {direction}[{first_of[rule.field]}], "
                    "which takes every value it selects"
                )
                continue
            first_of[rule.field] = j
            if (action := self._action(rule, at)) is not None:
                compiled.append(
                    CompiledRule(f"{direction}[{j}]", parse_selector(rule.field), action)
                )
        if not compiled or len(compiled) != len(rules):
            return None
        return MessageTransformer(route=self.route.name, direction=direction, rules=compiled)

    def _action(self, rule: FieldRule, at: str) -> FieldAction | None:
        options = rule.options
        if rule.field_class is not None:
            cls = self.classes.get(rule.field_class)
            if cls is None:
                self.problems.append(
                    f"{at}.class: unknown field class '{rule.field_class}' "
                    "(declare it under classes:)"
                )
                return None
            options["class"] = cls
        if rule.action not in self.names:
            known = ", ".join(sorted(self.names))
            self.problems.append(f"{at}.action: unknown action '{rule.action}' (known: {known})")
            return None
        try:
            return self.registry.create_action(rule.action, options)
        except (ValueError, TypeError) as e:
            self.problems.append(f"{at}: {e}")
            return None
