"""The migration loop over a real SQLite file and the shared PostgreSQL, a real vault and audit log."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
import pytest

from audit import AuditConfig, AuditLog, Ed25519CheckpointSigner, open_audit_log
from audit.errors import AuditError
from audit.schema import AuditValue
from kms_client.manager import KeyManager
from proxy.migrate.errors import MigrateError
from proxy.migrate.opening import open_source
from proxy.migrate.runner import Counts, Migration, Plan
from proxy.migrate.source import Change, Source, Target, quote
from tests.kms_client.support import open_manager
from tests.proxy.adminapi.conftest import events
from tests.proxy.migrate.support import make_pg, make_sqlite, read_pg, read_sqlite, rows
from vault.api import ClassSpec, DetokenizeItem, FormatKind, Revealed, TokenFormat
from vault.engine import Vault
from vault.sqlite_store import SqliteVault

EMAIL = ClassSpec("email")
SSN = ClassSpec("ssn", TokenFormat(FormatKind.SSN, keep_last=4))
N = 40


@dataclass
class Db:
    """One app database: where it is, its rows as made, and how to read it back."""

    dsn: str
    table: str
    kind: str
    made: dict[int, object]
    path: Path | None = None
    pg: tuple[str, str] | None = None

    def read(self, column: str = "email") -> dict[int, object]:
        if self.path is not None:
            return read_sqlite(self.path, column)
        assert self.pg is not None
        return read_pg(*self.pg, column)

    def execute(self, statement: str, args: tuple[object, ...]) -> None:
        """A write by "the application", on its own connection."""
        if self.path is not None:
            with sqlite3.connect(self.path) as conn:
                conn.execute(statement.replace("%s", "?").format(t="users"), args)
            conn.close()
        else:
            assert self.pg is not None
            with psycopg.connect(self.pg[0], autocommit=True) as pg:
                pg.execute(statement.format(t=f'"{self.pg[1]}".users').encode(), args)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Db:
    if request.param == "sqlite":
        data = rows(N)
        path = tmp_path / "app.db"
        make_sqlite(path, data)
        return Db(f"sqlite:{path}", "users", "sqlite", {r[0]: r[1] for r in data}, path=path)
    url, schema = request.getfixturevalue("pg_schema")
    data = rows(N, sqlite=False)
    make_pg(url, schema, data)
    made: dict[int, object] = {r[0]: None if r[1] is None else str(r[1]) for r in data}
    return Db(url, f"{schema}.users", "postgresql", made, pg=(url, schema))


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[KeyManager]:
    m = await open_manager(tmp_path / "keys")
    yield m
    await m.close()


@pytest.fixture
async def vault(tmp_path: Path, manager: KeyManager) -> AsyncIterator[Vault]:
    store = SqliteVault(tmp_path / "vault.db", timeout=2.0)
    await store.open()
    yield Vault(store, manager)
    await store.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


@pytest.fixture
async def audit_log(data_dir: Path) -> AsyncIterator[AuditLog]:
    log = await open_audit_log(
        AuditConfig(), data_dir=data_dir, signer=Ed25519CheckpointSigner.generate()
    )
    yield log
    if log.usable:
        await log.close()


async def _migrate(
    db: Db,
    vault: Vault,
    auditor: object,
    *,
    column: str = "email",
    spec: ClassSpec = EMAIL,
    batch: int = 7,
    dry_run: bool = False,
    where: str | None = None,
    source_type: type[Source] | None = None,
) -> Counts:
    target = Target(db.table, column, where, owner_column="owner")
    source = await open_source(db.dsn, target)
    if source_type is not None:
        source = source_type(source, db)  # type: ignore[call-arg]
    try:
        plan = Plan(spec, "acme", batch, dry_run, "cli:test")
        return await Migration(source, target, vault, auditor, plan).run()  # type: ignore[arg-type]
    finally:
        await source.close()


async def _revealed(vault: Vault, spec: ClassSpec, values: list[str]) -> list[Revealed]:
    out = await vault.detokenize([DetokenizeItem(v, spec) for v in values])
    assert all(isinstance(r, Revealed) for r in out)
    return [r for r in out if isinstance(r, Revealed)]


def _texts(made: dict[int, object]) -> dict[int, str]:
    return {k: v for k, v in made.items() if isinstance(v, str) and v}


async def test_full_run_tokenizes_every_text_row_and_rerun_is_a_no_op(
    db: Db, vault: Vault, audit_log: AuditLog, data_dir: Path
) -> None:
    counts = await _migrate(db, vault, audit_log)
    texts = _texts(db.made)
    assert counts.scanned == N
    assert counts.tokenized == len(texts)
    assert counts.empty == sum(1 for v in db.made.values() if v in (None, ""))
    assert counts.not_text == (3 if db.kind == "sqlite" else 0)
    assert counts.conflicts == counts.mismatched == counts.already_tokens == 0

    after = db.read()
    tokenized = {k: after[k] for k in texts}
    assert all(isinstance(t, str) and t.startswith("tok_") for t in tokenized.values())
    assert {k: v for k, v in after.items() if k not in texts} == {
        k: v for k, v in db.made.items() if k not in texts
    }
    revealed = await _revealed(vault, EMAIL, [str(t) for t in tokenized.values()])
    assert [r.value for r in revealed] == list(texts.values())
    assert [r.record.owner for r in revealed] == [f"sub-{k}" for k in texts]
    assert {r.record.tenant for r in revealed} == {"acme"}

    again = await _migrate(db, vault, audit_log, batch=5)
    assert again.tokenized == 0
    assert again.already_tokens == len(texts)
    assert db.read() == after

    log = events(data_dir, "migrate.")
    assert [e for e, _ in log].count("migrate.start") == 2
    finish = [f for e, f in log if e == "migrate.finish"]
    assert [f["result"] for f in finish] == ["ok", "ok"]
    assert finish[0]["tokenized"] == len(texts)
    audit_text = "".join(p.read_text() for p in (data_dir / "audit").glob("*.jsonl"))
    for value in [*texts.values(), *map(str, tokenized.values())]:
        assert value not in audit_text


async def test_dry_run_changes_nothing(
    db: Db, vault: Vault, audit_log: AuditLog, data_dir: Path
) -> None:
    counts = await _migrate(db, vault, audit_log, dry_run=True)
    assert counts.tokenized == len(_texts(db.made))
    assert db.read() == db.made
    assert await vault._store.scan(after=None, limit=5) == []
    assert "migrate.batch" not in [e for e, _ in events(data_dir, "migrate.")]
    # its deny twin: the real run does change them
    await _migrate(db, vault, audit_log)
    assert db.read() != db.made


async def test_where_limits_the_rows(db: Db, vault: Vault, audit_log: AuditLog) -> None:
    counts = await _migrate(db, vault, audit_log, where="kind = 'staff' AND email LIKE 'user%'")
    staff = {k for k, v in _texts(db.made).items() if k % 2}
    assert counts.scanned == len(staff)
    after = db.read()
    changed = {k for k in db.made if after[k] != db.made[k]}
    assert changed == staff


async def test_shape_preserving_class_and_mismatches(
    db: Db, vault: Vault, audit_log: AuditLog
) -> None:
    db.execute("UPDATE {t} SET ssn = %s WHERE id = %s", ("n/a", 3))
    dry = await _migrate(db, vault, audit_log, column="ssn", spec=SSN, dry_run=True)
    assert dry.mismatched == 1
    counts = await _migrate(db, vault, audit_log, column="ssn", spec=SSN)
    assert counts.mismatched == 1
    assert counts.tokenized == N - 1
    after = db.read("ssn")
    assert after[3] == "n/a"
    for k, v in after.items():
        if k != 3:
            assert str(v)[-4:] == str(1000 + k)  # keep_last: 4
            assert v != f"{100 + k % 800:03d}-{10 + k % 80:02d}-{1000 + k:04d}"
    # a re-run sees shape-preserving tokens as tokens (only the vault can tell)
    again = await _migrate(db, vault, audit_log, column="ssn", spec=SSN, batch=3)
    assert again.already_tokens == N - 1
    assert again.tokenized == 0
    assert db.read("ssn") == after


class _AppWritesMeanwhile:
    """The real source, but the application changes row 1 between our read and our write."""

    def __init__(self, inner: Source, db: Db) -> None:
        self._inner, self._db = inner, db
        self.engine = inner.engine

    async def fetch(self, after: object | None, limit: int) -> list[object]:
        return await self._inner.fetch(after, limit)  # type: ignore[return-value]

    async def apply(self, changes: list[Change]) -> int:
        if any(c.key == 1 for c in changes):
            self._db.execute("UPDATE {t} SET email = %s WHERE id = %s", ("new@example.com", 1))
        return await self._inner.apply(changes)

    async def close(self) -> None:
        await self._inner.close()


async def test_a_concurrent_app_write_is_not_clobbered(
    db: Db, vault: Vault, audit_log: AuditLog
) -> None:
    counts = await _migrate(db, vault, audit_log, source_type=_AppWritesMeanwhile)  # type: ignore[arg-type]
    assert counts.conflicts == 1
    assert db.read()[1] == "new@example.com"
    again = await _migrate(db, vault, audit_log)
    assert again.tokenized == 1
    [revealed] = await _revealed(vault, EMAIL, [str(db.read()[1])])
    assert revealed.value == "new@example.com"


class _AuditFailsOnBatch:
    def __init__(self, log: AuditLog) -> None:
        self.log = log

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        if event == "migrate.batch":
            raise AuditError("audit: sink down")
        await self.log.emit(event, **fields)


async def test_no_row_changes_without_its_audit_entry(
    db: Db, vault: Vault, audit_log: AuditLog
) -> None:
    with pytest.raises(AuditError):
        await _migrate(db, vault, _AuditFailsOnBatch(audit_log))
    assert db.read() == db.made


@pytest.mark.parametrize(
    ("table", "column", "owner"),
    [
        ("users; DROP TABLE users", "email", None),
        ("users", 'email"', None),
        ("a.b.c", "email", None),
        ("users", "email", "owner--"),
        ("", "email", None),
        ("users", "1email", None),
    ],
)
def test_bad_identifiers_are_refused(table: str, column: str, owner: str | None) -> None:
    with pytest.raises(MigrateError, match="must be a plain identifier"):
        Target(table, column, owner_column=owner)


def test_identifiers_are_quoted() -> None:
    assert quote("public.users") == '"public"."users"'
    with pytest.raises(MigrateError):
        quote('us"ers')


async def test_missing_table_column_or_file_is_a_clear_error(db: Db, tmp_path: Path) -> None:
    with pytest.raises(MigrateError, match="nope"):
        await open_source(db.dsn, Target(db.table, "nope"))
    with pytest.raises(MigrateError, match="nothere"):
        await open_source(db.dsn, Target(db.table.replace("users", "nothere"), "email"))
    with pytest.raises(MigrateError, match="does not exist"):
        await open_source(f"sqlite:{tmp_path / 'absent.db'}", Target("users", "email"))
    with pytest.raises(MigrateError, match="--dsn must start with"):
        await open_source("mysql://x/y", Target("users", "email"))


def test_counts_add() -> None:
    total = Counts(scanned=1, tokenized=1)
    total.add(Counts(scanned=2, conflicts=1))
    assert asdict(total) == asdict(Counts(scanned=3, tokenized=1, conflicts=1))
