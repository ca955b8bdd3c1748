"""The pure core of sessions: JOSE, claims, access tokens, login assertions, DPoP, MFA.

Nothing here does IO or imports aiohttp; clocks are injected as ``now``.
"""
