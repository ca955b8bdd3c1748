"""The vault engine: :class:`~vault.api.TokenVault` over a VaultStore and the keyring.

Rules:
- One store call per ``tokenize`` / ``detokenize`` / ``delete`` / ``are_tokens``
  call, never one per item; ``tokenize`` adds one call per collision retry
  round (at most ``max_attempts`` rounds, then :class:`TokenSpaceExhausted`).
  Concurrent ``tokenize`` (and ``detokenize``) calls of one loop turn, such as
  the field rules of one message, are joined into one store call
  (:mod:`vault.coalesce`): one round trip per message.
- A token is returned only after ``put_new`` reported its record inserted,
  or, for a deterministic token, already there (the same value's shared
  record). Items of one batch that produce the same deterministic token share
  one record; random tokens that collide inside a batch are retried.
- Per-item outcomes are values: ``FormatMismatch`` (tokenize, only with
  ``on_mismatch: error``) and ``Refused`` (detokenize): ``malformed`` when the
  text is not a token of the class, ``unknown`` when no live record has its
  id, ``refused`` for everything else (unusable index or tokenize key
  version, tampered or moved record, edited metadata, another class's record,
  expired) so a caller learns nothing from the reason.
- Whole-call failures raise: ``Sealed`` and other keyring errors,
  ``VaultUnavailable`` from the store, ``VaultConfigError`` for a class that
  cannot work. The message fails closed.
- A record has expired once ``now >= expires`` (its authenticated metadata
  decides, whatever the store says); ``now`` is read once per batch, after
  the store answered.
- Each class of a batch is checked (:func:`check_class`) before any item of
  it is worked on, once per distinct class per engine.
- Tagged tokens (opaque, deterministic) name the primary index version;
  uuid and shape-preserving tokens cannot, so both tokenize and detokenize
  use ``untagged_index_version`` (configuration: change it only together
  with re-tokenizing, old tokens would no longer resolve).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from kms_client.errors import DecryptionError
from kms_client.rng import random_bytes
from vault.api import (
    ClassSpec,
    DetokenizeItem,
    FormatKind,
    RecordInfo,
    Refused,
    Revealed,
    TokenizeItem,
    audit_id,
)
from vault.coalesce import Coalescer
from vault.codec import check_class, mint, parse
from vault.crypto import RecordRefused, convergent_secret, open_record, record_id, seal
from vault.errors import FormatMismatch, VaultError
from vault.formats import SHAPED, fits
from vault.keys import PURPOSE_INDEX, VaultKeys
from vault.record import RECORD_VERSION, MetaError, decode_meta
from vault.store import StoredRecord, VaultStore

__all__ = ["TokenSpaceExhausted", "Vault", "check_class"]

MAX_JOINED = 2000  # most items in one joined store call


class TokenSpaceExhausted(VaultError):
    """Every retry collided: the class's token space is nearly full (shape-preserving formats)."""


# Per-item carriers are plain tuples: built once per token, never leave this module, never logged.
# A parsed token: record id, the format it was made by (its record must say the same), the
# secret its inner key comes from (None: carried data key), the class that reads it.
type _Located = tuple[bytes, FormatKind, bytes | None, str]
# A drafted record: the token, its record, and whether it is a deterministic token's shared
# record (an existing record with this id is this value's record).
type _Draft = tuple[str, StoredRecord, bool]


class Vault:
    """Tokenize, detokenize and erase whole batches, one store round trip each."""

    def __init__(
        self,
        store: VaultStore,
        keys: VaultKeys,
        *,
        now: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = random_bytes,
        untagged_index_version: int = 1,
        max_attempts: int = 8,
    ) -> None:
        if untagged_index_version < 1 or max_attempts < 1:
            raise ValueError("vault: untagged_index_version and max_attempts must be >= 1")
        self._store = store
        self._keys = keys
        self._now = now
        self._rng = rng
        self._untagged = untagged_index_version
        self._max_attempts = max_attempts
        self._checked: set[ClassSpec] = set()
        self._tokenizer = Coalescer(self._tokenize_now, max_items=MAX_JOINED)
        self._detokenizer = Coalescer(self._detokenize_now, max_items=MAX_JOINED)

    async def tokenize(self, items: Sequence[TokenizeItem]) -> list[str | FormatMismatch]:
        """Tokens for ``items``, same order; each returned only once its record is committed."""
        return await self._tokenizer.submit(items)

    async def detokenize(self, items: Sequence[DetokenizeItem]) -> list[Revealed | Refused]:
        """Values for ``items``, same order; refusals are values."""
        return await self._detokenizer.submit(items)

    async def _tokenize_now(self, items: Sequence[TokenizeItem]) -> list[str | FormatMismatch]:
        self._check_all(item.spec for item in items)
        out: list[str | FormatMismatch] = [""] * len(items)
        kinds: dict[int, FormatKind] = {}
        for i, item in enumerate(items):
            kind = self._kind(item)
            if isinstance(kind, FormatMismatch):
                out[i] = kind
            else:
                kinds[i] = kind
        created = int(self._now())
        index_version = self._keys.primary_version(PURPOSE_INDEX) if kinds else 0
        pending = list(kinds)
        for _ in range(self._max_attempts):
            if not pending:
                return out
            drafts = {i: self._draft(items[i], kinds[i], created, index_version) for i in pending}
            pending = await self._commit(drafts, out)
        if pending:
            names = sorted({items[i].spec.name for i in pending})
            raise TokenSpaceExhausted(
                f"vault: no free token in class '{names[0]}' after {self._max_attempts} attempts"
            )
        return out

    async def _detokenize_now(self, items: Sequence[DetokenizeItem]) -> list[Revealed | Refused]:
        self._check_all(item.spec for item in items)
        located = [self._locate(item) for item in items]
        records = await self._fetch(located)
        now = self._now()
        return [
            loc if isinstance(loc, Refused) else self._reveal(loc, records.get(loc[0]), now)
            for loc in located
        ]

    async def delete(self, items: Sequence[DetokenizeItem]) -> int:
        """Erase the records behind these tokens (per-value erasure); how many existed."""
        self._check_all(item.spec for item in items)
        ids = {loc[0] for item in items if not isinstance(loc := self._locate(item), Refused)}
        return await self._store.delete_many(sorted(ids)) if ids else 0

    async def are_tokens(self, items: Sequence[DetokenizeItem]) -> list[bool]:
        """True where the text is a token of its class whose live record opens."""
        return [isinstance(r, Revealed) for r in await self.detokenize(items)]

    def _kind(self, item: TokenizeItem) -> FormatKind | FormatMismatch:
        spec = item.spec
        kind = spec.format.kind
        if kind in SHAPED and not fits(item.value, spec.format):
            if spec.format.on_mismatch == "opaque":
                return FormatKind.OPAQUE
            return FormatMismatch(
                f"vault: value does not fit the {kind.value} format of class '{spec.name}'"
            )
        return kind

    def _draft(
        self, item: TokenizeItem, kind: FormatKind, created: int, index_version: int
    ) -> _Draft:
        spec = item.spec
        shared = kind is FormatKind.DETERMINISTIC
        secret = (
            convergent_secret(self._keys, item.tenant, spec.name, item.value) if shared else None
        )
        minted = mint(
            kind,
            spec.format,
            item.value,
            self._rng,
            tagged_version=index_version,
            untagged_version=self._untagged,
            convergent=secret,
        )
        rid = record_id(self._keys, minted.index_version, minted.token)
        expires = None if spec.ttl is None else created + spec.ttl
        owner = None if shared else item.owner
        info = RecordInfo(
            spec.name, kind.value, owner, item.tenant, created, expires, RECORD_VERSION
        )
        record = seal(
            self._keys, self._rng, rid=rid, info=info, value=item.value, secret=minted.secret
        )
        return minted.token, record, shared

    async def _commit(
        self, drafts: dict[int, _Draft], out: list[str | FormatMismatch]
    ) -> list[int]:
        """One ``put_new`` for ``drafts``; fills ``out`` and returns the items to retry."""
        owners: dict[bytes, list[int]] = {}
        retry: list[int] = []
        for i, (_, record, shared) in drafts.items():
            rid = record.id
            if rid not in owners:
                owners[rid] = [i]
            elif shared and drafts[owners[rid][0]][2]:
                owners[rid].append(i)
            else:
                retry.append(i)  # a random token collided inside this batch
        records = [drafts[ids[0]][1] for ids in owners.values()]
        inserted = await self._store.put_new(records)
        if len(inserted) != len(records):
            raise VaultError("vault: store answered put_new with the wrong number of results")
        for ids, ok in zip(owners.values(), inserted, strict=True):
            for i in ids:
                if ok or drafts[i][2]:
                    out[i] = drafts[i][0]
                else:
                    retry.append(i)
        return sorted(retry)

    def _locate(self, item: DetokenizeItem) -> _Located | Refused:
        """The record id and secret of ``item``'s token (its class is already checked)."""
        parsed = parse(item.token, item.spec.format, self._untagged)
        if parsed is None:
            return Refused("malformed")
        try:
            rid = record_id(self._keys, parsed.index_version, parsed.text)
        except DecryptionError:
            return Refused("refused")
        return rid, parsed.kind, parsed.secret, item.spec.name

    async def _fetch(self, located: Sequence[_Located | Refused]) -> dict[bytes, StoredRecord]:
        ids = sorted({loc[0] for loc in located if not isinstance(loc, Refused)})
        return await self._store.get_many(ids) if ids else {}

    def _reveal(self, loc: _Located, record: StoredRecord | None, now: float) -> Revealed | Refused:
        rid, kind, secret, field_class = loc
        h = audit_id(rid)
        if record is None:
            return Refused("unknown", h)
        try:
            info = decode_meta(record.meta)
            if (
                record.id != rid
                or info.field_class != field_class
                or info.format != kind.value
                or (info.expires is not None and info.expires <= now)
            ):
                return Refused("refused", h)
            value = open_record(self._keys, record, field_class=field_class, secret=secret)
        except (MetaError, RecordRefused):
            return Refused("refused", h)
        return Revealed(value, info, h)

    def _check_all(self, specs: Iterable[ClassSpec]) -> None:
        """Check each class of a batch once; neighbours usually share one spec object."""
        last: ClassSpec | None = None
        for spec in specs:
            if spec is not last:
                if spec not in self._checked:
                    check_class(spec)
                    self._checked.add(spec)
                last = spec
