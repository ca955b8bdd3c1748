"""What a body codec can say about a body it cannot use.

These stay inside the policy package: the transformer turns each into a
public :class:`policy.message.MessageError` that names the rule. Reasons are
fixed phrases and never quote the body.
"""

from __future__ import annotations


class BodyError(Exception):
    """Base: the body cannot be transformed; ``reason`` is a short fixed phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Malformed(BodyError):
    """The body does not parse as its media type says (400)."""


class TooLarge(BodyError):
    """The body, received or decoded, is over the limit (413)."""


class Unsupported(BodyError):
    """No codec reads this media type, charset or content encoding (415)."""
