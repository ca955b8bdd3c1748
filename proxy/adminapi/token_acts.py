"""Audited token administration: tokenize, detokenize and delete by field class.

The rules (those of :mod:`proxy.adminapi.acts`, plus one for reveals):

- every act is recorded with ``result: "requested"`` BEFORE the vault is
  touched; if that entry cannot be persisted the AuditError propagates and
  nothing happens (the caller answers 503);
- once the vault has answered, ``"ok"`` (with counts) or ``"failed"`` (with
  the error code) is recorded. A tokenize or delete that happened stays
  reported as done even if that entry cannot be written (the first entry
  already names it);
- a detokenize hands values out only once its ``"ok"`` entry, naming every
  record by :func:`vault.api.audit_id`, is written: no entry, no values;
- a delete names its records before it acts: the tokens are first resolved
  (values dropped at once) to learn their record ids.

Entries carry class, counts, actor and record id hashes: never a value or a token.
"""

from __future__ import annotations

from collections.abc import Sequence

from audit.auditor import Auditor
from audit.schema import AuditValue
from proxy.adminapi.acts import Actor
from proxy.adminapi.recorder import ActRecorder
from proxy.adminapi.token_service import TokenService
from tokengate.errors import GatewayError
from vault.api import FormatMismatch, Refused, Revealed


class TokenAdmin:
    """A :class:`TokenService` behind an audit trail."""

    def __init__(self, service: TokenService, auditor: Auditor) -> None:
        self._service = service
        self._auditor = auditor
        self._record = ActRecorder(auditor)

    async def tokenize(
        self,
        actor: Actor,
        field_class: str,
        values: Sequence[str],
        *,
        owner: str | None,
        tenant: str,
    ) -> list[str | FormatMismatch]:
        """Tokens for ``values`` once the request is recorded."""
        fields: dict[str, AuditValue] = {
            **actor.fields(),
            "field_class": field_class,
            "count": len(values),
            "owner": owner,
            "tenant": tenant or None,
        }
        event = "admin.token_tokenize"
        await self._record.emit(event, result="requested", **fields)
        try:
            out = await self._service.tokenize(field_class, values, owner=owner, tenant=tenant)
        except GatewayError as e:
            await self._record.failed(event, fields, e)
            raise
        made = sum(1 for t in out if isinstance(t, str))
        await self._record.done(event, {**fields, "tokenized": made, "mismatched": len(out) - made})
        return out

    async def detokenize(
        self, actor: Actor, field_class: str, tokens: Sequence[str]
    ) -> list[Revealed | Refused]:
        """Values for ``tokens``, returned only once the reveal is recorded with its record ids."""
        fields: dict[str, AuditValue] = {
            **actor.fields(),
            "field_class": field_class,
            "count": len(tokens),
        }
        event = "admin.token_detokenize"
        await self._record.emit(event, result="requested", **fields)
        try:
            out = await self._service.detokenize(field_class, tokens)
        except GatewayError as e:
            await self._record.failed(event, fields, e)
            raise
        revealed = sum(1 for r in out if isinstance(r, Revealed))
        await self._record.emit(  # no entry, no values: an AuditError here withholds them
            event,
            result="ok",
            revealed=revealed,
            refused=len(out) - revealed,
            record_ids=_ids(out),
            **fields,
        )
        return out

    async def delete(self, actor: Actor, field_class: str, tokens: Sequence[str]) -> int:
        """Erase the records behind ``tokens`` once the request, naming them, is recorded."""
        fields: dict[str, AuditValue] = {
            **actor.fields(),
            "field_class": field_class,
            "count": len(tokens),
        }
        event = "admin.token_delete"
        found = await self._service.detokenize(field_class, tokens)  # ids only; values dropped
        fields["record_ids"] = _ids(found)
        del found
        await self._record.emit(event, result="requested", **fields)
        try:
            deleted = await self._service.delete(field_class, tokens)
        except GatewayError as e:
            await self._record.failed(event, fields, e)
            raise
        await self._record.done(event, {**fields, "deleted": deleted})
        return deleted


def _ids(results: Sequence[Revealed | Refused]) -> list[str]:
    """The audit ids of the records the tokens name, in order (tokens that parsed only)."""
    return [r.id_hash for r in results if r.id_hash is not None]
