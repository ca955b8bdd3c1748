"""What the admin token routes need from the running gateway: the vault, by class name.

:class:`TokenService` is the boundary: tokenize, detokenize and delete whole
batches of one field class named as policy files declare it. The worker
provides one over its :class:`~vault.api.TokenVault` and its current field
classes (:class:`VaultTokenService`; ``classes`` is a callable so that a
policy reload that adds or removes a class applies on the next request).

Rules: an undeclared class is :class:`UnknownClass` (404) before the vault
is touched; per-item outcomes are values (a mismatched format, a refused
token), whole-call failures raise the vault's errors (503, fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from proxy.adminapi.errors import AdminApiError
from vault.api import (
    ClassSpec,
    DetokenizeItem,
    FormatMismatch,
    Refused,
    Revealed,
    TokenizeItem,
    TokenVault,
)


class UnknownClass(AdminApiError):
    """The body names a field class no policy file declares (404)."""

    status = 404
    code = "unknown_class"

    def __init__(self) -> None:
        super().__init__("admin: no policy file declares this field class")


class TokenService(Protocol):
    """The vault by field class name, as the admin token routes use it."""

    async def tokenize(
        self, field_class: str, values: Sequence[str], *, owner: str | None, tenant: str
    ) -> list[str | FormatMismatch]:
        """Tokens for ``values`` (same order), each returned only once its record is committed."""
        ...

    async def detokenize(self, field_class: str, tokens: Sequence[str]) -> list[Revealed | Refused]:
        """Values for ``tokens`` (same order); refusals are values."""
        ...

    async def delete(self, field_class: str, tokens: Sequence[str]) -> int:
        """Erase the records behind ``tokens``; how many existed."""
        ...


class VaultTokenService:
    """A :class:`TokenService` over a TokenVault and the declared classes."""

    def __init__(self, vault: TokenVault, classes: Callable[[], Mapping[str, ClassSpec]]) -> None:
        self._vault = vault
        self._classes = classes

    async def tokenize(
        self, field_class: str, values: Sequence[str], *, owner: str | None, tenant: str
    ) -> list[str | FormatMismatch]:
        """Tokens for ``values`` of ``field_class``, bound to ``owner`` and ``tenant``."""
        spec = self._spec(field_class)
        return await self._vault.tokenize([TokenizeItem(v, spec, owner, tenant) for v in values])

    async def detokenize(self, field_class: str, tokens: Sequence[str]) -> list[Revealed | Refused]:
        """Values for ``tokens`` of ``field_class``."""
        spec = self._spec(field_class)
        return await self._vault.detokenize([DetokenizeItem(t, spec) for t in tokens])

    async def delete(self, field_class: str, tokens: Sequence[str]) -> int:
        """Erase the records behind ``tokens`` of ``field_class``."""
        spec = self._spec(field_class)
        return await self._vault.delete([DetokenizeItem(t, spec) for t in tokens])

    def _spec(self, name: str) -> ClassSpec:
        spec = self._classes().get(name)
        if spec is None:
            raise UnknownClass()
        return spec
