"""The demo app's one error type and the JSON shape every failure is answered with.

Every error body is ``{"error": code, "message": text}``. Messages are fixed
strings or name a field; they never carry a value the client sent, because with
tokengate in front those values may be tokens and without it they are plaintext.
"""

from __future__ import annotations

from aiohttp import web


class ApiError(Exception):
    """A request the app refuses on purpose; ``status`` and ``code`` reach the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> web.Response:
    """The JSON answer for a refused request."""
    response = web.json_response({"error": code, "message": message}, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def unauthorized() -> ApiError:
    """No valid session: the caller must log in."""
    return ApiError(401, "unauthorized", "login required")


def forbidden() -> ApiError:
    """Logged in, but not allowed to do this."""
    return ApiError(403, "forbidden", "only the owner or support may update this record")


def not_found() -> ApiError:
    """Nothing at this path (or no record with this id)."""
    return ApiError(404, "not_found", "not found")
