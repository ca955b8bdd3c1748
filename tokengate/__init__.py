"""tokengate: a sidecar gateway that keeps sensitive fields out of an existing app."""

__version__ = "0.1.0"
