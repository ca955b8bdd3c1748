"""Prometheus metrics of the gateway.

Labels are bounded: route names come from config, methods from a fixed set,
statuses are numbers. No label ever carries a path, a header or a value from
a request. With several workers, ``PROMETHEUS_MULTIPROC_DIR`` is set by the
supervisor before this module is imported, and the admin listener of any
worker serves the sum over all of them.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
UNMATCHED = "_unmatched"

REQUESTS = Counter(
    "tokengate_requests",
    "Requests answered, by route, method and status.",
    ("route", "method", "status"),
)
LATENCY = Histogram(
    "tokengate_request_duration_seconds",
    "Time from request to response headers sent, by route.",
    ("route",),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPSTREAM_ERRORS = Counter(
    "tokengate_upstream_errors", "Upstream failures, by route and kind.", ("route", "kind")
)
IN_FLIGHT = Gauge(
    "tokengate_in_flight_requests", "Requests being handled now.", multiprocess_mode="livesum"
)
RELOADS = Counter("tokengate_config_reloads", "Configuration reloads, by result.", ("result",))


_CHILDREN: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}


def observe(route: str, method: str, status: str, seconds: float) -> None:
    """Count one request and its latency; label children are looked up once per label set."""
    key = (route, method, status)
    children = _CHILDREN.get(key)
    if children is None:
        children = (REQUESTS.labels(route, method, status), LATENCY.labels(route))
        if len(_CHILDREN) < 10_000:  # label sets are bounded by config; this is a backstop
            _CHILDREN[key] = children
    children[0].inc()
    children[1].observe(seconds)


def method_label(method: str) -> str:
    """The method, or OTHER for anything outside the known set (bounded cardinality)."""
    return method if method in KNOWN_METHODS else "OTHER"


def render() -> bytes:
    """The exposition text: summed over workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(DEFAULT_REGISTRY)
