"""MFA enrolment records, their storage, and the service that enrols and verifies factors.

The pure parts (TOTP, recovery codes, WebAuthn checks) live in ``proxy.auth``;
this package keeps the per-subject state (encrypted TOTP secrets, recovery
code hashes, WebAuthn credentials, pending challenges) and applies replay
protection and lockout. Every verification returns an outcome the caller
audits; a pass yields :class:`~proxy.mfa.outcome.MfaPassed` for the session.
"""
