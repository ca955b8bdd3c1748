"""The egress policy file model: ``egress/*.yaml``, a list of ``egress:`` routes.

An egress route names one third party (host, port) and the requests to it
it takes (methods; exactly one of path / prefix / regex, as gateway routes),
what it may release (``release``: which field classes, how many values per
request), how fast per client (``rate_limit``), and its field rules:
``request`` rules detokenize tokens the backend sends (JSON, form fields,
query, headers), ``response`` rules tokenize what the third party answers.

Refused here, each with its own message:
- a bare ``*`` host (the route model's host check), or a route without host;
- detokenize in ``response`` rules (the backend must only ever hold tokens)
  and tokenize in ``request`` rules (the third party gets values, not ours);
- actions beyond the built-ins whose effect is known (a third-party action
  could reveal anything);
- release classes without a rate limit.
Checks that need the field classes (a detokenize rule's class must be one the
route releases) run when the routes are compiled (:mod:`proxy.egress.compile`).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from policy.fields import CLASS_NAME, FieldRule
from policy.model import RouteMatch, check_route_name, check_tenant
from policy.types import Bytes, Duration, StrictModel

REQUEST_ACTIONS = frozenset({"detokenize", "redact", "mask", "hash"})
RESPONSE_ACTIONS = frozenset({"tokenize", "redact", "mask", "hash"})


class Release(StrictModel):
    """What one route may release to its host."""

    classes: list[str] = Field(
        min_length=1, description="field classes whose values may go to this host"
    )
    max_values: int = Field(
        ge=1, le=10_000, description="most values one request may release (403 above)"
    )

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: list[str]) -> list[str]:
        if bad := [c for c in v if not CLASS_NAME.match(c)]:
            raise ValueError(f"class '{bad[0]}' must be 1-32 of a-z 0-9 _ starting with a letter")
        if len(set(v)) != len(v):
            raise ValueError("a class is listed twice")
        return v


class ReleaseRateLimit(StrictModel):
    """At most ``values`` released values per client per ``window`` on this route."""

    values: int = Field(ge=1, description="values released per client per window (429 above)")
    window: Duration = Field(description="the fixed window")

    @field_validator("window")
    @classmethod
    def _window(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("window must be longer than 0s")
        return v


class EgressRoute(StrictModel):
    """One third party's endpoint, what may be released to it, and the rules that do it."""

    name: str = Field(description="unique route name, used in the audit log and errors")
    match: RouteMatch = Field(description="host (required), methods and path of the calls taken")
    port: int = Field(443, ge=1, le=65535, description="the third party's TLS port")
    priority: int = Field(0, description="higher wins before any specificity rule")
    release: Release | None = Field(
        None, description="classes and values per request this route may release; none: nothing"
    )
    rate_limit: ReleaseRateLimit | None = Field(
        None, description="released values per client per window (required with release)"
    )
    tenant: str | None = Field(
        None, description="tenant of the records response rules make (no owner)"
    )
    max_body: Bytes | None = Field(
        None, description="body limit of this route's calls; default: egress.max_body"
    )
    request: list[FieldRule] = Field(
        default_factory=list, description="field rules applied to the backend's requests"
    )
    response: list[FieldRule] = Field(
        default_factory=list, description="field rules applied to the third party's answers"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_route_name(v)

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, v: str | None) -> str | None:
        return check_tenant(v)

    @field_validator("match")
    @classmethod
    def _host(cls, v: RouteMatch) -> RouteMatch:
        if v.host is None:
            raise ValueError("an egress route names its host (exact, or *.example.com)")
        return v

    @field_validator("request")
    @classmethod
    def _request_actions(cls, v: list[FieldRule]) -> list[FieldRule]:
        return _actions(v, REQUEST_ACTIONS, "request")

    @field_validator("response")
    @classmethod
    def _response_actions(cls, v: list[FieldRule]) -> list[FieldRule]:
        return _actions(v, RESPONSE_ACTIONS, "response")

    @model_validator(mode="after")
    def _limited(self) -> EgressRoute:
        if self.release is not None and self.rate_limit is None:
            raise ValueError(f"egress route '{self.name}' releases values: give it a rate_limit")
        return self


def _actions(rules: list[FieldRule], allowed: frozenset[str], direction: str) -> list[FieldRule]:
    for j, rule in enumerate(rules):
        if rule.action not in allowed:
            known = ", ".join(sorted(allowed))
            raise ValueError(
                f"{direction}[{j}]: egress {direction} rules use {known}, not '{rule.action}'"
            )
    return rules


class EgressPolicyFile(StrictModel):
    """An ``egress/*.yaml`` file (field classes come from the gateway's policy files)."""

    egress: list[EgressRoute] = Field(
        default_factory=list, description="egress routes, any order; precedence is explicit"
    )
