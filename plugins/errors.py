"""Errors of the plugins package: one base and two cases.

Per-value problems are :class:`~plugins.base.FieldResult` values, never
exceptions. An exception from this package means the message (or start-up)
cannot go on and fails closed. Messages never carry a value or a token.
"""

from __future__ import annotations

from tokengate.errors import GatewayError


class PluginError(GatewayError):
    """Base of plugin errors: the message cannot be served (503)."""

    status = 503
    code = "plugin_unavailable"


class PluginLoadError(PluginError):
    """A plugin or authorizer cannot be loaded (duplicate name, bad entry point): start-up stops."""

    status = 500
    code = "config_error"
    public = True


class RateLimiterUnavailable(PluginError):
    """The detokenize rate limiter did not answer: fail closed."""
