"""Typed application state and per-request keys.

The live settings sit behind one mutable reference that reload swaps whole; a
request reads it once at the start and uses that snapshot throughout, so it
never sees half of an old config and half of a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from kms_client import KeyManager
from proxy.authn.gate import Gate
from proxy.fieldsetup import FieldRuntime
from proxy.settings import Settings
from proxy.upstreams import UpstreamPool


@dataclass(slots=True)
class Live:
    """The current settings; replaced as a whole by reload."""

    settings: Settings


LIVE = web.AppKey("live", Live)
UPSTREAMS = web.AppKey("upstreams", UpstreamPool)
KEYS = web.AppKey("keys", KeyManager)
GATE = web.AppKey("gate", Gate)
FIELDS = web.AppKey("fields", FieldRuntime)  # absent: field-rule routes answer 503

# Per-request keys (request[KEY]).
REQUEST_ID = web.RequestKey("request_id", str)
ROUTE_NAME = web.RequestKey("route", str)
STARTED = web.RequestKey("started", float)
# Applied to whatever response the request ends with (refreshed session cookies).
FINISH: web.RequestKey[Callable[[web.StreamResponse], None]] = web.RequestKey("finish")
