"""The root of every error tokengate raises on purpose.

Each package has one base error under :class:`GatewayError` and a handful of
subclasses. ``status`` is the HTTP status a request that fails this way gets;
``code`` is the stable machine-readable ``error`` field of the JSON body. The
message is for logs and operators and never goes to a client verbatim unless
``public`` says it is safe to.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of all deliberate tokengate errors."""

    status: int = 500
    code: str = "internal_error"
    public: bool = False

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class ConfigError(GatewayError):
    """Configuration that cannot be loaded; the message names file, YAML path and problem."""

    code = "config_error"
    public = True
