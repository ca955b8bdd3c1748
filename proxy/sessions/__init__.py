"""Session state and its stores: sessions, refresh-token families, revocation, replay guards.

IO lives here (SQLite on a thread, Redis over the network); the rules live in
:mod:`proxy.sessions.rules` and :mod:`proxy.sessions.refresh`. Build a store
from the ``sessions:`` config with :meth:`SessionStoreConfig.open` (or
:func:`open_session_store`), then ``await store.open()``.
"""

from __future__ import annotations

from proxy.sessions.config import SessionStoreConfig
from proxy.sessions.errors import RefreshRejected, RefreshReuseDetected, SessionStoreUnavailable
from proxy.sessions.factory import open_session_store
from proxy.sessions.model import NewSession, RefreshResult, Session, SessionGrant
from proxy.sessions.store import SessionStore, StoreSettings

__all__ = [
    "NewSession",
    "RefreshRejected",
    "RefreshResult",
    "RefreshReuseDetected",
    "Session",
    "SessionGrant",
    "SessionStore",
    "SessionStoreConfig",
    "SessionStoreUnavailable",
    "StoreSettings",
    "open_session_store",
]
