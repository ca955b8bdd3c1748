"""The Vault engine over the real key manager (dev root, file keyring) and the in-memory store."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms_client.errors import Sealed
from kms_client.manager import KeyManager
from tests.kms_client.support import open_manager
from tests.vault.support import Clock, CountingStore, DownStore, StreamRng
from vault.api import (
    ClassSpec,
    DetokenizeItem,
    FormatKind,
    Refused,
    Revealed,
    TokenFormat,
    TokenizeItem,
    TokenVault,
)
from vault.engine import TokenSpaceExhausted, Vault
from vault.errors import FormatMismatch, VaultConfigError, VaultUnavailable
from vault.formats import luhn_ok
from vault.store import StoredRecord

EMAIL = ClassSpec("email")
UUID = ClassSpec("user-id", TokenFormat(FormatKind.UUID))
NUMERIC = ClassSpec("account", TokenFormat(FormatKind.NUMERIC))
PAN = ClassSpec("card", TokenFormat(FormatKind.PAN, keep_first=6, keep_last=4))
SSN = ClassSpec("ssn", TokenFormat(FormatKind.SSN, keep_last=4))
DET = ClassSpec("email-eq", TokenFormat(FormatKind.DETERMINISTIC, prefix="eq"))
ALL = {
    EMAIL: "alice@example.com",
    UUID: "user 42",
    NUMERIC: "9876543210",
    PAN: "4111 1111 1111 1111",
    SSN: "123-45-6789",
    DET: "bob@example.com",
}


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[KeyManager]:
    m = await open_manager(tmp_path)
    yield m
    await m.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> CountingStore:
    return CountingStore(now=clock)


@pytest.fixture
def vault(manager: KeyManager, store: CountingStore, clock: Clock) -> Vault:
    return Vault(store, manager, now=clock)


def items(
    values: dict[ClassSpec, str], owner: str | None = "alice", tenant: str = "acme"
) -> list[TokenizeItem]:
    return [TokenizeItem(v, spec, owner, tenant) for spec, v in values.items()]


async def test_it_is_a_token_vault(vault: Vault) -> None:
    as_protocol: TokenVault = vault
    assert as_protocol is vault


async def test_every_format_round_trips_in_one_store_call_each(
    vault: Vault, store: CountingStore
) -> None:
    tokens = await vault.tokenize(items(ALL))
    assert store.calls == ["put_new"]
    assert all(isinstance(t, str) for t in tokens)
    out = await vault.detokenize(
        [DetokenizeItem(str(t), spec) for t, spec in zip(tokens, ALL, strict=True)]
    )
    assert store.calls == ["put_new", "get_many"]
    assert store.sizes == [6, 6]
    for (spec, value), r in zip(ALL.items(), out, strict=True):
        assert isinstance(r, Revealed)
        assert r.value == value
        assert r.record.field_class == spec.name
        assert r.record.format == spec.format.kind.value
        assert r.record.owner == (None if spec is DET else "alice")
        assert r.record.tenant == "acme"
        assert len(r.id_hash) == 32


async def test_tokens_have_their_format(vault: Vault) -> None:
    t = dict(zip(ALL, await vault.tokenize(items(ALL)), strict=True))
    assert str(t[EMAIL]).startswith("tok_a")
    assert str(t[DET]).startswith("eq_a")
    assert len(str(t[UUID])) == 36
    assert str(t[PAN])[:7] == "4111 11"
    assert str(t[PAN])[-4:] == "1111"
    assert not luhn_ok(str(t[PAN]).replace(" ", ""))
    assert str(t[SSN]).startswith("9")
    assert str(t[SSN]).endswith("-6789")


async def test_deterministic_tokens_repeat_per_tenant_and_share_one_record(
    vault: Vault, store: CountingStore
) -> None:
    batch = [
        TokenizeItem("x@y.z", DET, "alice", "acme"),
        TokenizeItem("x@y.z", DET, "bob", "acme"),
        TokenizeItem("x@y.z", DET, "alice", "other"),
    ]
    a, b, c = await vault.tokenize(batch)
    assert a == b
    assert a != c  # tenants never share tokens
    assert store.sizes == [2]  # one shared record for a and b
    again = await vault.tokenize([TokenizeItem("x@y.z", DET, "carol", "acme")])
    assert again == [a]
    assert len(store) == 2
    (r,) = await vault.detokenize([DetokenizeItem(str(a), DET)])
    assert isinstance(r, Revealed)
    assert r.record.owner is None


async def test_random_formats_give_fresh_tokens(vault: Vault) -> None:
    for spec in (EMAIL, UUID, NUMERIC, PAN, SSN):
        a, b = await vault.tokenize(items({spec: ALL[spec]}) * 2)
        assert a != b


async def test_a_collision_is_retried_with_one_store_call_per_round(
    manager: KeyManager, store: CountingStore, clock: Clock
) -> None:
    seed = b"collide"
    first = Vault(store, manager, now=clock, rng=StreamRng(seed))
    (a,) = await first.tokenize(items({NUMERIC: "12345678"}))
    again = Vault(store, manager, now=clock, rng=StreamRng(seed))  # replays the same draws first
    (b,) = await again.tokenize(items({NUMERIC: "12345678"}))
    assert b != a  # the replayed draw collided and was retried
    assert store.calls == ["put_new", "put_new", "put_new"]
    out = await again.detokenize([DetokenizeItem(str(a), NUMERIC), DetokenizeItem(str(b), NUMERIC)])
    assert [r.value for r in out if isinstance(r, Revealed)] == ["12345678", "12345678"]


async def test_a_full_token_space_fails_clearly(
    manager: KeyManager, store: CountingStore, clock: Clock
) -> None:
    def stuck(n: int) -> bytes:
        return bytes([7]) * n  # every draw the same digits

    v = Vault(store, manager, now=clock, rng=stuck, max_attempts=3)
    (first,) = await v.tokenize(items({NUMERIC: "12345678"}))
    assert isinstance(first, str)
    with pytest.raises(
        TokenSpaceExhausted, match="no free token in class 'account' after 3 attempts"
    ):
        await v.tokenize(items({NUMERIC: "12345678"}))
    assert store.calls == ["put_new"] * 4


async def test_collisions_inside_one_batch_are_retried(
    manager: KeyManager, store: CountingStore, clock: Clock
) -> None:
    # Digit draws of a 7-digit value ask for 11 bytes, its nonzero first digit for 5: the
    # first two of each are constant, so both items of the batch draw the same token.
    constant = {11: 2, 5: 2}

    def rng(n: int) -> bytes:
        if constant.get(n, 0):
            constant[n] -= 1
            return bytes([3]) * n
        return os.urandom(n)

    v = Vault(store, manager, now=clock, rng=rng)
    a, b = await v.tokenize(items({NUMERIC: "1234567"}) * 2)
    assert a != b
    assert store.calls == ["put_new", "put_new"]


@pytest.mark.parametrize(
    ("spec", "value"),
    [(PAN, "4111"), (SSN, "123 45 6789"), (NUMERIC, "12ab"), (NUMERIC, "")],
)
async def test_values_that_do_not_fit_are_per_item_errors(
    vault: Vault, store: CountingStore, spec: ClassSpec, value: str
) -> None:
    out = await vault.tokenize([TokenizeItem(value, spec, "alice", "acme"), *items({EMAIL: "ok"})])
    assert isinstance(out[0], FormatMismatch)
    assert out[0].status == 400
    assert value not in str(out[0]) or not value
    assert f"class '{spec.name}'" in str(out[0])
    assert isinstance(out[1], str)
    assert store.sizes == [1]


async def test_values_that_do_not_fit_fall_back_to_opaque_when_configured(vault: Vault) -> None:
    spec = ClassSpec("card", TokenFormat(FormatKind.PAN, prefix="card", on_mismatch="opaque"))
    short, card = await vault.tokenize(
        [TokenizeItem("4111", spec, "a", ""), TokenizeItem("4111111111111111", spec, "a", "")]
    )
    assert str(short).startswith("card_a")
    assert str(card).isdigit()
    out = await vault.detokenize(
        [DetokenizeItem(str(short), spec), DetokenizeItem(str(card), spec)]
    )
    assert [r.value for r in out if isinstance(r, Revealed)] == ["4111", "4111111111111111"]
    assert isinstance(out[0], Revealed)
    assert out[0].record.format == "opaque"


async def test_refusals(vault: Vault, store: CountingStore) -> None:
    (email, pan) = await vault.tokenize(items({EMAIL: "e", PAN: "4111111111111111"}))
    other_class = dataclasses.replace(EMAIL, name="phone")
    unknown = "tok_a" + "a" * 32
    out = await vault.detokenize(
        [
            DetokenizeItem("garbage", EMAIL),
            DetokenizeItem(unknown, EMAIL),
            DetokenizeItem(str(email), other_class),  # a token of another class
            DetokenizeItem(str(pan), dataclasses.replace(PAN, name="other-card")),
            DetokenizeItem(str(email), EMAIL),  # the allow twin
        ]
    )
    assert out[0] == Refused("malformed")
    assert isinstance(out[1], Refused)
    assert out[1].reason == "unknown"
    assert out[1].id_hash
    assert isinstance(out[2], Refused)
    assert out[2].reason == "refused"
    assert isinstance(out[3], Refused)
    assert out[3].reason == "refused"
    assert isinstance(out[4], Revealed)
    assert store.calls == ["put_new", "get_many"]


async def test_tampered_records_are_refused(vault: Vault, store: CountingStore) -> None:
    (token,) = await vault.tokenize(items({EMAIL: "e"}))
    (record,) = [r for r in store._records.values()]
    edited = dataclasses.replace(record, outer=record.outer[:-1] + bytes([record.outer[-1] ^ 1]))
    store._records[record.id] = edited
    (r,) = await vault.detokenize([DetokenizeItem(str(token), EMAIL)])
    assert isinstance(r, Refused)
    assert r.reason == "refused"


@pytest.mark.parametrize("spec", [EMAIL, PAN], ids=["token-secret", "carried-key"])
async def test_records_swapped_between_ids_are_refused(
    vault: Vault, store: CountingStore, spec: ClassSpec
) -> None:
    tokens = await vault.tokenize(items({spec: ALL[spec]}) * 2)
    a, b = store._records.values()
    store._records[a.id] = dataclasses.replace(b, id=a.id)
    store._records[b.id] = dataclasses.replace(a, id=b.id)
    out = await vault.detokenize([DetokenizeItem(str(t), spec) for t in tokens])
    assert [r.reason for r in out if isinstance(r, Refused)] == ["refused", "refused"]


async def test_ttl_records_expire(vault: Vault, clock: Clock) -> None:
    spec = ClassSpec("otp", ttl=60)
    (token,) = await vault.tokenize([TokenizeItem("123456", spec, "a", "t")])
    (r,) = await vault.detokenize([DetokenizeItem(str(token), spec)])
    assert isinstance(r, Revealed)
    assert r.record.expires == r.record.created + 60
    clock.now += 59
    assert isinstance((await vault.detokenize([DetokenizeItem(str(token), spec)]))[0], Revealed)
    clock.now += 1
    (gone,) = await vault.detokenize([DetokenizeItem(str(token), spec)])
    assert isinstance(gone, Refused)
    assert gone.reason == "unknown"


async def test_the_engine_refuses_expired_records_whatever_the_store_says(
    manager: KeyManager, clock: Clock
) -> None:
    class Forgetful(CountingStore):
        async def get_many(self, ids: Sequence[bytes]) -> dict[bytes, StoredRecord]:
            return {i: self._records[i] for i in ids if i in self._records}

    store = Forgetful(now=clock)
    v = Vault(store, manager, now=clock)
    spec = ClassSpec("otp", ttl=10)
    (token,) = await v.tokenize([TokenizeItem("1", spec, "a", "t")])
    clock.now += 10
    (r,) = await v.detokenize([DetokenizeItem(str(token), spec)])
    assert isinstance(r, Refused)
    assert r.reason == "refused"


async def test_delete_erases_one_value(vault: Vault, store: CountingStore) -> None:
    a, b = await vault.tokenize(items({EMAIL: "a", SSN: "123-45-6789"}))
    gone = [
        DetokenizeItem(str(a), EMAIL),
        DetokenizeItem("garbage", EMAIL),
        DetokenizeItem(str(a), EMAIL),
    ]
    assert await vault.delete(gone) == 1
    assert await vault.delete(gone) == 0
    out = await vault.detokenize([DetokenizeItem(str(a), EMAIL), DetokenizeItem(str(b), SSN)])
    assert isinstance(out[0], Refused)
    assert out[0].reason == "unknown"
    assert isinstance(out[1], Revealed)
    assert store.calls == ["put_new", "delete_many", "delete_many", "get_many"]


async def test_are_tokens(vault: Vault, store: CountingStore) -> None:
    (ssn,) = await vault.tokenize(items({SSN: "123-45-6789"}))
    checks = [
        DetokenizeItem(str(ssn), SSN),
        DetokenizeItem("123-45-6789", SSN),
        DetokenizeItem("x", SSN),
    ]
    assert await vault.are_tokens(checks) == [True, False, False]
    assert store.calls == ["put_new", "get_many"]


async def test_empty_batches_make_no_store_call(vault: Vault, store: CountingStore) -> None:
    assert await vault.tokenize([]) == []
    assert await vault.detokenize([DetokenizeItem("garbage", EMAIL)]) == [Refused("malformed")]
    assert await vault.delete([]) == 0
    assert store.calls == []


async def test_rotated_keys_keep_old_tokens_working(vault: Vault, manager: KeyManager) -> None:
    old = await vault.tokenize(items(ALL))
    await manager.rotate("tokenize")
    await manager.rotate("index")
    new = await vault.tokenize(items(ALL))
    assert str(new[0]).startswith("tok_b")  # the new index version, named in the token
    assert str(new[-1]).startswith("eq_b")
    out = await vault.detokenize(
        [DetokenizeItem(str(t), spec) for t, spec in zip(old + new, [*ALL, *ALL], strict=True)]
    )
    assert [r.value for r in out if isinstance(r, Revealed)] == [*ALL.values(), *ALL.values()]


async def test_revoking_a_version_makes_its_records_refuse(
    vault: Vault, manager: KeyManager
) -> None:
    (old,) = await vault.tokenize(items({EMAIL: "e"}))
    await manager.rotate("tokenize")
    (new,) = await vault.tokenize(items({EMAIL: "f"}))
    await manager.revoke("tokenize", 1)
    out = await vault.detokenize([DetokenizeItem(str(old), EMAIL), DetokenizeItem(str(new), EMAIL)])
    assert isinstance(out[0], Refused)
    assert out[0].reason == "refused"
    assert out[0].id_hash
    assert isinstance(out[1], Revealed)


async def test_revoking_an_index_version_refuses_its_tokens(
    vault: Vault, manager: KeyManager
) -> None:
    (old,) = await vault.tokenize(items({EMAIL: "e"}))
    await manager.rotate("index")
    await manager.revoke("index", 1)
    (r,) = await vault.detokenize([DetokenizeItem(str(old), EMAIL)])
    assert r == Refused("refused")


async def test_a_sealed_keyring_fails_the_whole_call(
    vault: Vault, manager: KeyManager, store: CountingStore
) -> None:
    (token,) = await vault.tokenize(items({EMAIL: "e"}))
    await manager.seal()
    with pytest.raises(Sealed):
        await vault.tokenize(items({EMAIL: "e"}))
    with pytest.raises(Sealed):
        await vault.detokenize([DetokenizeItem(str(token), EMAIL)])
    assert store.calls == ["put_new"]


async def test_an_unreachable_store_fails_the_whole_call(manager: KeyManager) -> None:
    v = Vault(DownStore(), manager)
    with pytest.raises(VaultUnavailable):
        await v.tokenize(items({EMAIL: "e"}))
    with pytest.raises(VaultUnavailable):
        await v.detokenize([DetokenizeItem("tok_a" + "a" * 32, EMAIL)])
    with pytest.raises(VaultUnavailable):
        await v.delete([DetokenizeItem("tok_a" + "a" * 32, EMAIL)])


async def test_tokens_leave_only_after_the_commit(manager: KeyManager, clock: Clock) -> None:
    seen: list[list[bytes]] = []

    class Watching(CountingStore):
        async def put_new(self, records: Sequence[StoredRecord]) -> list[bool]:
            seen.append([r.id for r in records])
            raise VaultUnavailable("vault: commit failed (test)")

    v = Vault(Watching(now=clock), manager, now=clock)
    with pytest.raises(VaultUnavailable):
        await v.tokenize(items(ALL))
    assert len(seen) == 1  # nothing returned, nothing retried silently


async def test_a_store_answering_the_wrong_length_fails_closed(manager: KeyManager) -> None:
    class Short(CountingStore):
        async def put_new(self, records: Sequence[StoredRecord]) -> list[bool]:
            return []

    with pytest.raises(Exception, match="wrong number of results"):
        await Vault(Short(), manager).tokenize(items({EMAIL: "e"}))


async def test_bad_classes_fail_the_call(vault: Vault) -> None:
    bad = ClassSpec("x", TokenFormat(prefix="BAD"))
    with pytest.raises(VaultConfigError):
        await vault.tokenize([TokenizeItem("v", bad, None, "")])
    with pytest.raises(VaultConfigError):
        await vault.detokenize([DetokenizeItem("v", bad)])


async def test_a_bad_class_anywhere_in_a_batch_fails_it_before_any_store_call(
    vault: Vault, store: CountingStore
) -> None:
    """Classes are checked per batch: one bad class among good ones (even between two uses
    of the same good spec object) stops the whole call, and nothing reaches the store."""
    bad = ClassSpec("x", TokenFormat(prefix="BAD"))
    good = [TokenizeItem("a", EMAIL, None, ""), TokenizeItem("b", EMAIL, None, "")]
    with pytest.raises(VaultConfigError):
        await vault.tokenize([good[0], TokenizeItem("v", bad, None, ""), good[1]])
    token = str((await vault.tokenize(good[:1]))[0])
    reads = [DetokenizeItem(token, EMAIL), DetokenizeItem("v", bad), DetokenizeItem(token, EMAIL)]
    with pytest.raises(VaultConfigError):
        await vault.detokenize(reads)
    with pytest.raises(VaultConfigError):
        await vault.delete(reads)
    assert store.calls == ["put_new"]  # only the good call
    assert isinstance((await vault.detokenize(reads[:1]))[0], Revealed)


async def test_an_equal_class_built_anew_is_still_served(vault: Vault) -> None:
    """The per-batch check skips by identity only; equal specs from another batch work."""
    token = str((await vault.tokenize(items({EMAIL: "e"})))[0])
    again = ClassSpec("email")
    assert again == EMAIL
    assert again is not EMAIL
    got = await vault.detokenize([DetokenizeItem(token, again), DetokenizeItem(token, EMAIL)])
    assert [r.value for r in got if isinstance(r, Revealed)] == ["e", "e"]


def test_constructor_checks_its_options() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        Vault(CountingStore(), None, untagged_index_version=0)  # type: ignore[arg-type]


async def test_untagged_formats_use_the_configured_index_version(
    manager: KeyManager, store: CountingStore, clock: Clock
) -> None:
    await manager.rotate("index")
    v2 = Vault(store, manager, now=clock, untagged_index_version=2)
    tokens = await v2.tokenize(items({UUID: "u", PAN: "4111111111111111"}))
    reads = [DetokenizeItem(str(t), s) for t, s in zip(tokens, (UUID, PAN), strict=True)]
    assert all(isinstance(r, Revealed) for r in await v2.detokenize(reads))
    v1 = Vault(store, manager, now=clock, untagged_index_version=1)
    assert [r.reason for r in await v1.detokenize(reads) if isinstance(r, Refused)] == [
        "unknown",
        "unknown",
    ]


async def test_nothing_secret_in_reprs(vault: Vault, store: CountingStore) -> None:
    (token,) = await vault.tokenize(items({EMAIL: "alice@example.com"}))
    (r,) = await vault.detokenize([DetokenizeItem(str(token), EMAIL)])
    text = repr(r) + repr(list(store._records.values())) + repr(DetokenizeItem(str(token), EMAIL))
    assert "alice@example.com" not in text
    assert str(token) not in text


# --- Hypothesis: round trip for every format, against one real key manager -----------------


@pytest.fixture(scope="module")
def shared_manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyManager]:
    m = asyncio.run(open_manager(tmp_path_factory.mktemp("keys")))
    yield m
    asyncio.run(m.close())


digits = st.text("0123456789", min_size=4, max_size=40)
values = st.one_of(
    st.tuples(st.sampled_from([EMAIL, UUID, DET]), st.text(max_size=100)),
    st.tuples(st.just(NUMERIC), digits),
    st.tuples(st.just(PAN), st.text("0123456789", min_size=16, max_size=19)),
    st.tuples(st.just(SSN), st.from_regex(r"[0-9]{3}-[0-9]{2}-[0-9]{4}", fullmatch=True)),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(values, min_size=1, max_size=8), st.none() | st.text(max_size=10), st.text(max_size=10)
)
def test_round_trip_property(
    shared_manager: KeyManager, batch: list[tuple[ClassSpec, str]], owner: str | None, tenant: str
) -> None:
    store = CountingStore()
    v = Vault(store, shared_manager)

    async def run() -> None:
        tokens = await v.tokenize(
            [TokenizeItem(value, spec, owner, tenant) for spec, value in batch]
        )
        out = await v.detokenize(
            [DetokenizeItem(str(t), spec) for t, (spec, _) in zip(tokens, batch, strict=True)]
        )
        for (spec, value), token, r in zip(batch, tokens, out, strict=True):
            assert isinstance(r, Revealed), (spec.name, r)
            assert r.value == value
            assert r.record.owner == (None if spec is DET else owner)
            if spec is PAN:
                assert not luhn_ok(str(token))
                assert str(token)[:6] == value[:6]
                assert str(token)[-4:] == value[-4:]

    asyncio.run(run())
    assert store.calls == ["put_new", "get_many"]


async def test_concurrent_calls_share_one_store_round_trip(
    vault: Vault, store: CountingStore
) -> None:
    """The field rules of one message run concurrently: one put_new, one get_many."""
    batches = [items({spec: value}) for spec, value in ALL.items()]
    tokens = await asyncio.gather(*(vault.tokenize(b) for b in batches))
    assert store.calls == ["put_new"]
    assert store.sizes == [len(ALL)]
    store.calls.clear()
    asks = [[DetokenizeItem(str(t[0]), spec)] for t, spec in zip(tokens, ALL, strict=True)]
    answers = await asyncio.gather(*(vault.detokenize(a) for a in asks))
    assert store.calls == ["get_many"]
    got = [a[0] for a in answers]
    assert all(isinstance(r, Revealed) for r in got)
    assert [r.value for r in got if isinstance(r, Revealed)] == list(ALL.values())


async def test_sequential_calls_are_not_held_back(vault: Vault, store: CountingStore) -> None:
    for spec, value in ALL.items():
        await vault.tokenize(items({spec: value}))
    assert store.calls == ["put_new"] * len(ALL)
