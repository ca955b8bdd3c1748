"""CachingDataKeys: age, use and byte bounds, LRU capacity, metrics, no secrets in labels."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import Mapping

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from kms_client.datakey_cache import CachingDataKeys, DataKey, DataKeyCacheMetrics
from tokengate.errors import ConfigError


class LocalDataKeys:
    """A real DataKeySource in process: keys wrapped by AES-GCM with the context as AAD."""

    def __init__(self) -> None:
        self._kek = AESGCM(AESGCM.generate_key(256))
        self.generated = 0
        self.decrypted = 0

    @staticmethod
    def _aad(context: Mapping[str, str]) -> bytes:
        return repr(sorted(context.items())).encode()

    async def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
        self.generated += 1
        key, nonce = os.urandom(32), os.urandom(12)
        blob = nonce + self._kek.encrypt(nonce, key, self._aad(context))
        return DataKey(plaintext=key, ciphertext=blob, key_id="local")

    async def decrypt_data_key(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        self.decrypted += 1
        return self._kek.decrypt(ciphertext[:12], ciphertext[12:], self._aad(context))


class Clock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


class Harness:
    def __init__(self, **bounds: int | float) -> None:
        self.source = LocalDataKeys()
        self.clock = Clock()
        self.registry = CollectorRegistry()
        self.cache = CachingDataKeys(
            self.source,
            name="t",
            now=self.clock,
            metrics=DataKeyCacheMetrics(self.registry),
            **bounds,  # type: ignore[arg-type]
        )

    def value(self, metric: str, **labels: str) -> float:
        v = self.registry.get_sample_value(metric, {"cache": "t", **labels})
        return 0.0 if v is None else v

    def hits(self, op: str = "encrypt") -> float:
        return self.value("tokengate_datakey_cache_hits_total", op=op)

    def misses(self, op: str = "encrypt") -> float:
        return self.value("tokengate_datakey_cache_misses_total", op=op)

    def evictions(self, reason: str) -> float:
        return self.value("tokengate_datakey_cache_evictions_total", reason=reason)

    def entries(self) -> float:
        return self.value("tokengate_datakey_cache_entries")


CTX = {"tenant": "acme", "purpose": "backup"}


async def test_reuse_within_bounds() -> None:
    h = Harness()
    a = await h.cache.for_encrypt(CTX, 100)
    b = await h.cache.for_encrypt(CTX, 100)
    assert a == b
    assert h.source.generated == 1
    assert (h.hits(), h.misses(), h.entries()) == (1, 1, 1)


async def test_context_order_does_not_matter_but_values_do() -> None:
    h = Harness()
    a = await h.cache.for_encrypt({"a": "1", "b": "2"}, 1)
    assert await h.cache.for_encrypt({"b": "2", "a": "1"}, 1) == a
    assert await h.cache.for_encrypt({"a": "1", "b": "3"}, 1) != a
    assert h.source.generated == 2


async def test_age_bound() -> None:
    h = Harness(max_age=60)
    a = await h.cache.for_encrypt(CTX, 1)
    h.clock.t += 59.9
    assert await h.cache.for_encrypt(CTX, 1) == a
    h.clock.t += 0.1
    assert await h.cache.for_encrypt(CTX, 1) != a
    assert h.evictions("age") == 1
    assert (h.hits(), h.misses()) == (1, 2)


async def test_use_bound() -> None:
    h = Harness(max_uses=3)
    first = [await h.cache.for_encrypt(CTX, 1) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    fourth = await h.cache.for_encrypt(CTX, 1)
    assert fourth != first[0]
    assert h.evictions("uses") == 1
    assert (h.hits(), h.misses()) == (2, 2)


async def test_byte_bound() -> None:
    h = Harness(max_bytes=100)
    a = await h.cache.for_encrypt(CTX, 60)
    assert await h.cache.for_encrypt(CTX, 40) == a  # exactly 100 bytes
    assert await h.cache.for_encrypt(CTX, 1) != a
    assert h.evictions("bytes") == 1


async def test_oversized_message_gets_a_fresh_uncached_key() -> None:
    h = Harness(max_bytes=100)
    a = await h.cache.for_encrypt(CTX, 10)
    big = await h.cache.for_encrypt(CTX, 101)
    assert big != a
    assert await h.cache.for_encrypt(CTX, 10) == a
    assert h.evictions("bytes") == 0
    assert h.entries() == 1


async def test_capacity_evicts_least_recently_used() -> None:
    h = Harness(capacity=2)
    a = await h.cache.for_encrypt({"k": "a"}, 1)
    b = await h.cache.for_encrypt({"k": "b"}, 1)
    assert await h.cache.for_encrypt({"k": "a"}, 1) == a  # a is now most recent
    await h.cache.for_encrypt({"k": "c"}, 1)  # evicts b
    assert h.evictions("capacity") == 1
    assert await h.cache.for_encrypt({"k": "a"}, 1) == a
    assert await h.cache.for_encrypt({"k": "b"}, 1) != b
    assert h.entries() == 2


async def test_decrypt_cache_by_ciphertext_context_and_age() -> None:
    h = Harness(max_age=60)
    dk = await h.source.generate_data_key(CTX)
    assert await h.cache.for_decrypt(dk.ciphertext, CTX) == dk.plaintext
    assert await h.cache.for_decrypt(dk.ciphertext, CTX) == dk.plaintext
    assert h.source.decrypted == 1
    assert (h.hits("decrypt"), h.misses("decrypt")) == (1, 1)
    h.clock.t += 60
    assert await h.cache.for_decrypt(dk.ciphertext, CTX) == dk.plaintext
    assert h.source.decrypted == 2
    assert h.evictions("age") == 1


async def test_decrypt_under_another_context_is_not_served_from_cache() -> None:
    h = Harness()
    dk = await h.source.generate_data_key(CTX)
    await h.cache.for_decrypt(dk.ciphertext, CTX)
    with pytest.raises(InvalidTag):
        await h.cache.for_decrypt(dk.ciphertext, {"tenant": "other"})
    assert h.hits("decrypt") == 0


async def test_failed_generate_caches_nothing() -> None:
    class Down(LocalDataKeys):
        async def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
            raise ConnectionError("kms down")

    cache = CachingDataKeys(Down(), metrics=DataKeyCacheMetrics(CollectorRegistry()))
    with pytest.raises(ConnectionError):
        await cache.for_encrypt(CTX, 1)
    assert len(cache) == 0


async def test_clear_drops_everything() -> None:
    h = Harness()
    await h.cache.for_encrypt(CTX, 1)
    dk = await h.source.generate_data_key(CTX)
    await h.cache.for_decrypt(dk.ciphertext, CTX)
    assert h.entries() == 2
    h.cache.clear()
    assert (h.entries(), h.evictions("clear"), len(h.cache)) == (0, 2, 0)


async def test_no_secret_or_context_in_metric_labels() -> None:
    h = Harness(max_uses=1, capacity=1)
    keys = [await h.cache.for_encrypt({"tenant": f"secret-tenant-{i}"}, 5) for i in range(3)]
    dk = await h.source.generate_data_key(CTX)
    await h.cache.for_decrypt(dk.ciphertext, CTX)
    values = {v for m in h.registry.collect() for s in m.samples for v in s.labels.values()}
    assert values <= {"t", "encrypt", "decrypt", "age", "uses", "bytes", "capacity", "clear"}
    assert keys


@pytest.mark.parametrize(
    "bounds", [{"max_age": 0}, {"max_uses": 0}, {"max_bytes": 0}, {"capacity": 0}]
)
def test_bounds_validated(bounds: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="datakey cache"):
        CachingDataKeys(LocalDataKeys(), **bounds)  # type: ignore[arg-type]


async def test_negative_size_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        await Harness().cache.for_encrypt(CTX, -1)


ops = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=0, max_value=150),
        st.floats(min_value=0, max_value=40),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(ops=ops)
def test_no_key_ever_exceeds_its_bounds(ops: list[tuple[str, int, float]]) -> None:
    async def run() -> None:
        h = Harness(max_age=60, max_uses=4, max_bytes=200, capacity=2)
        uses: dict[bytes, int] = defaultdict(int)
        nbytes: dict[bytes, int] = defaultdict(int)
        born: dict[bytes, float] = {}
        for tenant, size, dt in ops:
            h.clock.t += dt
            key = await h.cache.for_encrypt({"tenant": tenant}, size)
            born.setdefault(key.plaintext, h.clock.t)
            uses[key.plaintext] += 1
            nbytes[key.plaintext] += size
            assert uses[key.plaintext] <= 4
            assert nbytes[key.plaintext] <= 200 or uses[key.plaintext] == 1
            assert h.clock.t - born[key.plaintext] < 60
        assert h.hits() + h.misses() == len(ops)
        assert h.misses() == h.source.generated

    asyncio.run(run())
