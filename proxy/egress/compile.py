"""Loading and compiling the egress routes: the allow list, the route table, the field rules.

Rules (each problem is reported as ``FILE: egress[i]...: problem``, all at once):
- Field rules compile with the gateway's compiler
  (:func:`policy.compile.compile_route_rules`) and the gateway's actions;
  only the actions :mod:`proxy.egress.model` allows per direction exist here.
- A ``detokenize`` rule must name a class its route releases
  (``release.classes``) and refuses what it cannot release: ``otherwise`` is
  ``deny`` (the default here; any other value is an error), so a value the
  rule may not reveal fails the call instead of going out masked, redacted or
  as the token. Each such rule runs behind a
  :class:`~proxy.egress.release.ReleaseGate`.
- Hosts: an exact name, or a wildcard ``*.example.com`` that matches exactly
  one more label (``api.example.com``, not ``a.b.example.com``, not
  ``example.com``). A wildcard is allowed but logged as a warning at load: it
  releases to hosts nobody listed one by one.
- Route names are unique across files; routes of one port are matched by the
  gateway's router (:class:`policy.routing.Router`: same precedence, same
  refusal of two routes that match the same calls).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from plugins import registry as default_registry
from plugins.base import FieldAction, FieldClass
from policy.compile import ActionRegistry, compile_route_rules
from policy.errors import PolicyError
from policy.model import Route
from policy.routing import Match, Router
from policy.transform import MessageTransformer
from policy.yamlio import load_model
from proxy.egress.config import EgressConfig
from proxy.egress.model import REQUEST_ACTIONS, RESPONSE_ACTIONS, EgressPolicyFile, EgressRoute
from proxy.egress.release import ReleaseGate

log = logging.getLogger("tokengate.egress")


@dataclass(frozen=True, slots=True)
class EgressRules:
    """One compiled egress route."""

    name: str
    host: str  # as configured: exact, or *.example.com
    port: int
    request: MessageTransformer | None
    response: MessageTransformer | None
    max_values: int  # values one request may release; 0 when the route releases nothing
    tenant: str  # tenant of the records response rules make
    max_body: int


class EgressTable:
    """The allow list and the route table, compiled once per load."""

    def __init__(self, routes: Sequence[EgressRules], routers: Mapping[int, Router]) -> None:
        self.routes = {r.name: r for r in routes}
        self._routers = dict(routers)
        self._exact = {(r.host, r.port) for r in routes if not r.host.startswith("*.")}
        self._wild = {(r.host[1:], r.port) for r in routes if r.host.startswith("*.")}

    def __len__(self) -> int:
        return len(self.routes)

    def host_allowed(self, host: str, port: int) -> bool:
        """Whether some route names ``host:port`` (case-insensitive)."""
        host = host.lower().rstrip(".")
        if (host, port) in self._exact:
            return True
        label, dot, rest = host.partition(".")
        return bool(label and dot) and (f".{rest}", port) in self._wild

    def match(self, host: str, port: int, method: str, path: str) -> EgressRules | None:
        """The route for this call, or None (the call is refused)."""
        router = self._routers.get(port)
        if router is None or not self.host_allowed(host, port):
            return None
        found = router.match(host.lower().rstrip("."), method, path)
        return self.routes[found.route.name] if isinstance(found, Match) else None


def load_egress(
    config: EgressConfig,
    base: Path,
    classes: Mapping[str, FieldClass],
    *,
    env: Mapping[str, str] | None = None,
) -> EgressTable:
    """Read the files ``config.policies`` names (relative to ``base``) and compile them."""
    problems: list[str] = []
    files: list[tuple[str, EgressPolicyFile]] = []
    for path in policy_paths_for(config, base):
        label = _label(path, base)
        try:
            files.append((label, load_model(EgressPolicyFile, path, label=label, env=env)))
        except PolicyError as e:
            problems.extend(e.problems)
    if problems:
        raise PolicyError(problems)
    return compile_egress(files, classes, max_body=int(config.max_body))


def policy_paths_for(config: EgressConfig, base: Path) -> list[Path]:
    """The files the egress globs name, sorted, without duplicates (as the gateway's globs)."""
    found: set[Path] = set()
    for pattern in config.policies:
        if Path(pattern).is_absolute():
            matches = Path("/").glob(pattern.lstrip("/"))
        else:
            matches = base.glob(pattern)
        found.update(p.absolute() for p in matches if p.is_file())
    return sorted(found)


def compile_egress(
    files: Sequence[tuple[str, EgressPolicyFile]],
    classes: Mapping[str, FieldClass],
    *,
    max_body: int,
    registry: ActionRegistry | None = None,
) -> EgressTable:
    """Compile validated egress files; PolicyError listing every problem."""
    base: ActionRegistry = registry if registry is not None else default_registry
    problems: list[str] = []
    compiled: list[EgressRules] = []
    by_port: dict[int, list[Route]] = {}
    owner: dict[str, str] = {}
    for label, policy in files:
        for i, route in enumerate(policy.egress):
            where = f"{label}: egress[{i}]"
            if route.name in owner:
                problems.append(
                    f"{where}.name: route '{route.name}' is already declared in {owner[route.name]}"
                )
                continue
            owner[route.name] = label
            rules, found = _compile_route(route, where, classes, base, max_body)
            problems.extend(found)
            compiled.append(rules)
            by_port.setdefault(route.port, []).append(_routable(route))
    routers: dict[int, Router] = {}
    for port, routes in sorted(by_port.items()):
        try:
            routers[port] = Router.compile(routes)
        except ValueError as e:
            problems.append(f"egress (port {port}): {e}")
    if problems:
        raise PolicyError(problems)
    for rules in compiled:
        if rules.host.startswith("*."):
            log.warning(
                "egress: route '%s' releases to every host matching %s", rules.name, rules.host
            )
    return EgressTable(compiled, routers)


def _compile_route(
    route: EgressRoute,
    where: str,
    classes: Mapping[str, FieldClass],
    base: ActionRegistry,
    max_body: int,
) -> tuple[EgressRules, list[str]]:
    request, response, problems = compile_route_rules(
        route, where, classes, _EgressRegistry(base, route)
    )
    host = route.match.host or ""  # EgressRoute refuses a route without host
    rules = EgressRules(
        name=route.name,
        host=host,
        port=route.port,
        request=request,
        response=response,
        max_values=route.release.max_values if route.release is not None else 0,
        tenant=route.tenant or "",
        max_body=int(route.max_body) if route.max_body is not None else max_body,
    )
    return rules, problems


def _routable(route: EgressRoute) -> Route:
    """The route as the gateway's router reads it (name, match, priority; nothing else)."""
    return Route(
        name=route.name, match=route.match, priority=route.priority, allow_unauthenticated=True
    )


class _EgressRegistry:
    """The gateway's actions as egress rules may use them: detokenize gated and deny-only."""

    def __init__(self, base: ActionRegistry, route: EgressRoute) -> None:
        self._base = base
        self._route = route

    def action_names(self) -> frozenset[str]:
        return self._base.action_names() & (REQUEST_ACTIONS | RESPONSE_ACTIONS)

    def create_action(self, name: str, options: Mapping[str, object]) -> FieldAction:
        cls = options.get("class")
        if name != "detokenize" or not isinstance(cls, FieldClass):
            return self._base.create_action(name, options)
        if options.get("otherwise", "deny") != "deny":
            raise ValueError(
                "egress detokenize rules refuse what they cannot release: otherwise must be deny"
            )
        release, rate = self._route.release, self._route.rate_limit
        if release is None or rate is None or cls.name not in release.classes:
            raise ValueError(
                f"class '{cls.name}' is not released to this route (list it in release.classes)"
            )
        inner = self._base.create_action(name, {**options, "otherwise": "deny"})
        return ReleaseGate(inner, field_class=cls.name, rate=rate)


def _label(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
