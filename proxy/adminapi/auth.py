"""Who is calling: the ``Authorization: Bearer tga_...`` header checked against the key table.

Pure: no IO, no aiohttp. Exactly one ``Authorization`` header with the
``Bearer`` scheme (any case, RFC 9110) and one token of the admin key shape is
accepted; anything else is ``malformed``, a well-shaped key that is not
configured is ``unknown_key``. The presented key never leaves this function:
errors carry the reason only.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.adminapi.errors import AuthFailed, RoleTooWeak
from proxy.adminapi.keys import ApiKey, KeyTable, Role, is_api_key


def authenticate(headers: Sequence[str], table: KeyTable) -> ApiKey:
    """The key the ``Authorization`` header values present; AuthFailed otherwise."""
    if not headers:
        raise AuthFailed("missing")
    if len(headers) > 1:
        raise AuthFailed("malformed")
    scheme, _, token = headers[0].strip().partition(" ")
    if scheme.lower() != "bearer" or not is_api_key(token.strip(" ")):
        raise AuthFailed("malformed")
    key = table.lookup(token.strip(" "))
    if key is None:
        raise AuthFailed("unknown_key")
    return key


def authorize(key: ApiKey, required: Role) -> None:
    """RoleTooWeak unless ``key``'s role includes ``required``."""
    if not key.role.allows(required):
        raise RoleTooWeak(required.value)
