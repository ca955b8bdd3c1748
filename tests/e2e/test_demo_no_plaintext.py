"""No plaintext at rest or in logs after a demo run (DESIGN.md principle 4, issue 5 item 10).

``tokengate demo`` runs as a user starts it (gateway and demo app as
subprocesses, fresh data dir, output captured). Alice creates records with
distinctive SSNs and card numbers (with and without separators), reads them
back (the owner: values), Bob reads them (masks only), Carol (support) reads
them without a second factor (masks) and after passing TOTP (values); Alice
passes TOTP and changes one record. After the demo stops, every file under the
data dir (SQLite files and their WAL, audit log, keyring, sessions, config) and
the captured output are searched, as bytes, for every value in every spelling:
nothing may match. So that the test cannot pass by storing nothing, the app's
database must hold token-shaped values in the sensitive columns and the vault
must hold records.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.demo_session import (
    DemoProcess,
    enrol_and_pass_totp,
    login,
    start_demo,
    stop_demo,
)

pytestmark = pytest.mark.slow

# (ssn, card) as the users type them: separators or not; valid shapes, distinct last 4.
CREATED = [
    ("078-05-1120", "4111 1111 1111 1111"),
    ("219099999", "4242424242424242"),
    ("536-22-8145", "4012-8888-8888-1881"),
    ("601-73-2468", "4000056655665556"),
]
UPDATED = ("432-71-5093", "5555 5555 5555 4444")
ALL_VALUES = [v for pair in [*CREATED, UPDATED] for v in pair]
EXPECTED = [CREATED[0], UPDATED, *CREATED[2:]]  # after the update of the second record


def spellings(value: str) -> set[bytes]:
    """Every way the value may be written: as typed, digits only, grouped by space or dash."""
    digits = re.sub(r"\D", "", value)
    groups = (
        [digits[:3], digits[3:5], digits[5:]]
        if len(digits) == 9
        else [digits[i : i + 4] for i in range(0, len(digits), 4)]
    )
    forms = {value, digits, " ".join(groups), "-".join(groups), "".join(groups)}
    return {f.encode() for f in forms}


def mask_of(value: str) -> str:
    last4 = re.sub(r"\D", "", value)[-4:]
    return f"***-**-{last4}" if len(re.sub(r"\D", "", value)) == 9 else f"**** **** **** {last4}"


def assert_no_plaintext(blob: bytes, where: str) -> None:
    for value in ALL_VALUES:
        for form in spellings(value):
            assert form not in blob, f"{where}: holds {value!r} as {form!r}"


@dataclass
class Demo:
    proc: DemoProcess
    data: Path


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    data = tmp_path / "demo"
    proc = await start_demo(data, tmp_path / "demo.out", tmp_path / "demo.err")
    try:
        yield Demo(proc, data)
    finally:
        stop_demo(proc.proc)


def _session(base: str) -> aiohttp.ClientSession:
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=base)
    return aiohttp.ClientSession(
        cookie_jar=jar, headers={"Origin": base}, timeout=aiohttp.ClientTimeout(total=15)
    )


async def _users(s: aiohttp.ClientSession, base: str) -> tuple[list[dict[str, object]], bytes]:
    async with s.get(f"{base}/api/users") as r:
        assert r.status == 200
        raw = await r.read()
        users = (await r.json())["users"]
    return sorted(users, key=lambda u: int(u["id"])), raw


def _record(i: int, ssn: str, card: str) -> dict[str, str]:
    return {"name": f"Person {i}", "email": f"p{i}@example.com", "ssn": ssn, "card_number": card}


def _pairs(users: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(u["ssn"], u["card_number"]) for u in users]


async def _alice(base: str) -> list[int]:
    """The owner creates records, reads values back and, after TOTP, changes one."""
    ids: list[int] = []
    async with _session(base) as alice:
        await login(alice, base, "alice")
        for i, (ssn, card) in enumerate(CREATED):
            async with alice.post(f"{base}/api/users", json=_record(i, ssn, card)) as r:
                assert r.status == 201
                created = await r.json()
            assert (created["ssn"], created["card_number"]) == (ssn, card)  # the owner's answer
            ids.append(int(created["id"]))
        async with alice.get(f"{base}/api/users/{ids[0]}") as r:
            assert (await r.json())["card_number"] == CREATED[0][1]
        assert _pairs((await _users(alice, base))[0]) == CREATED
        update = _record(9, *UPDATED)
        async with alice.put(f"{base}/api/users/{ids[1]}", json=update) as r:
            assert r.status == 401  # changing a record needs a second factor
        await enrol_and_pass_totp(alice, base)
        async with alice.put(f"{base}/api/users/{ids[1]}", json=update) as r:
            assert r.status == 200
            assert (await r.json())["ssn"] == UPDATED[0]
    return ids


async def _others(base: str, ids: list[int]) -> None:
    """Bob sees masks only; Carol (support) sees masks, then values after passing TOTP."""
    masks = [(mask_of(ssn), mask_of(card)) for ssn, card in EXPECTED]
    async with _session(base) as bob:
        await login(bob, base, "bob")
        users, raw = await _users(bob, base)
        assert _pairs(users) == masks
        assert_no_plaintext(raw, "bob's list")
        for rid in ids:
            async with bob.get(f"{base}/api/users/{rid}") as r:
                assert r.status == 200
                assert_no_plaintext(await r.read(), "bob's record")
    async with _session(base) as carol:
        await login(carol, base, "carol")
        users, raw = await _users(carol, base)
        assert _pairs(users) == masks
        assert_no_plaintext(raw, "carol's list before MFA")
        await enrol_and_pass_totp(carol, base)
        assert _pairs((await _users(carol, base))[0]) == EXPECTED


@pytest.mark.parametrize(
    "spelling",
    ["078-05-1120", "078051120", "078 05 1120", "4012 8888 8888 1881", "4012888888881881"],
)
def test_the_search_finds_a_value_in_a_sqlite_file(tmp_path: Path, spelling: str) -> None:
    """The deny twin of the search: any spelling stored in a SQLite file is found."""
    db = tmp_path / "leak.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (f"x{spelling}y",))
    conn.close()
    with pytest.raises(AssertionError, match="holds"):
        assert_no_plaintext(db.read_bytes(), str(db))


def _search_all(demo: Demo) -> list[str]:
    """Search every file under the data dir and the captured output; returns the file names."""
    files = [p for p in demo.data.rglob("*") if p.is_file()]
    for path in [*files, demo.proc.stdout, demo.proc.stderr]:
        assert_no_plaintext(path.read_bytes(), str(path))
    return [p.relative_to(demo.data).as_posix() for p in files]


def _token_columns(data: Path) -> list[tuple[str, str]]:
    (db,) = [p for p in (data / "app").glob("*.sqlite3")]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [
            (str(a), str(b))
            for a, b in conn.execute("SELECT ssn, card_number FROM users ORDER BY id")
        ]


def _vault_rows(data: Path) -> int:
    with sqlite3.connect(f"file:{data / 'vault' / 'vault.db'}?mode=ro", uri=True) as conn:
        (count,) = conn.execute("SELECT count(*) FROM tg_vault").fetchone()
    return int(count)


async def test_no_plaintext_under_the_data_dir_or_in_the_output(demo: Demo) -> None:
    ids = await _alice(demo.proc.base)
    await _others(demo.proc.base, ids)
    # While it runs: the SQLite write-ahead logs are still there.
    live = _search_all(demo)
    assert any(n.endswith("-wal") for n in live), live
    assert stop_demo(demo.proc.proc) == 0
    files = _search_all(demo)
    names = set(files)
    # The places a leak would land all exist: app and vault databases, audit, keys.
    assert any(n.startswith("app/") for n in names), names
    assert "vault/vault.db" in names, names
    assert any(n.startswith("audit/") for n in names), names
    assert any(n.startswith("keys/") for n in names), names
    assert "kms/keyring.json" in names, names
    assert b"worker listening" in demo.proc.stderr.read_bytes()  # the output was captured

    columns = _token_columns(demo.data)
    assert len(columns) == len(ids)
    for (ssn, card), (plain_ssn, plain_card) in zip(columns, EXPECTED, strict=True):
        assert re.fullmatch(r"9\d{2}-?\d{2}-?\d{4}", ssn), ssn  # ssn tokens: area 9xx
        assert ssn[-4:] == plain_ssn[-4:]
        digits, plain = re.sub(r"\D", "", card), re.sub(r"\D", "", plain_card)
        assert len(digits) == 16
        assert digits[-4:] == plain[-4:]
        assert not _luhn_ok(digits), card  # a card token is never a real card number
    assert _vault_rows(demo.data) >= 2 * len(EXPECTED)  # ssn and card of every record


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0
