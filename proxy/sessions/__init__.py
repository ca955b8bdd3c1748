"""Session state and its stores: sessions, refresh-token families, revocation, replay guards.

IO lives here (SQLite on a thread, Redis over the network); the rules live in
:mod:`proxy.sessions.rules` and :mod:`proxy.sessions.refresh`. Build a store
with :func:`proxy.sessions.factory.open_session_store` from a
:class:`proxy.sessions.config.SessionStoreConfig`.
"""
