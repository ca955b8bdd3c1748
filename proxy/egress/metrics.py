"""Prometheus metrics of the egress relay, in a registry of its own.

Rules:
- Labels are bounded and carry no request data: route and class names come
  from the egress files, error codes from the relay's fixed table
  (:data:`proxy.egress.errors.ERRORS`), outcomes from :data:`OUTCOMES`. No
  label ever holds a host, a path, a header, a client name, a token or a value.
  A call no route took is labelled :data:`NO_ROUTE`.
- Each relay owns one :class:`EgressMetrics` (its own registry): the relay is
  one process, and the gateway's metrics (served by the gateway's admin
  listener) stay out of its exposition.
- A release is counted once its call is sent on: values whose release was
  allowed and audited on a call that was then refused are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, generate_latest

Outcome = Literal["sent", "refused", "failed", "tunnelled"]
OUTCOMES: frozenset[str] = frozenset(("sent", "refused", "failed", "tunnelled"))
NO_ROUTE = "_none"


class EgressMetrics:
    """The relay's counters: calls by route and outcome, releases by class, refusals by code."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._calls = Counter(
            "tokengate_egress_calls",
            "Calls through the relay, by egress route and outcome "
            "(sent, refused, failed on the way, tunnelled untouched).",
            ("route", "outcome"),
            registry=self.registry,
        )
        self._released = Counter(
            "tokengate_egress_released_values",
            "Values released to third parties on calls sent on, by route and field class.",
            ("route", "field_class"),
            registry=self.registry,
        )
        self._refusals = Counter(
            "tokengate_egress_refusals",
            "Calls the relay refused, by error code.",
            ("code",),
            registry=self.registry,
        )

    def call(self, route: str | None, outcome: Outcome) -> None:
        """Count one call's outcome (``route`` None: no route took it)."""
        self._calls.labels(route or NO_ROUTE, outcome).inc()

    def refused(self, route: str | None, code: str) -> None:
        """Count one refusal: its code, and the call as refused."""
        self._refusals.labels(code).inc()
        self.call(route, "refused")

    def released(self, route: str, by_class: Mapping[str, int]) -> None:
        """Count the values one sent call released, per field class."""
        for field_class, count in by_class.items():
            if count > 0:
                self._released.labels(route, field_class).inc(count)

    def render(self) -> bytes:
        """The Prometheus exposition text of this relay."""
        return generate_latest(self.registry)
