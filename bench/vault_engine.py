"""Vault engine CPU per token: ``.venv/bin/python bench/vault_engine.py [--quick] [--baseline R]``.

Measures what the engine itself costs, with no store time: the real
:class:`vault.engine.Vault` over :class:`vault.memory_store.MemoryVaultStore`
and a real key manager opened as the gateway opens one
(:func:`kms_client.keysetup.audited_keys` on a throwaway data dir: development
root, file keyring, audit log). For each token format it tokenizes ``n``
distinct values in batches of ``batch`` (one message's worth), then
detokenizes those ``n`` tokens in batches, checks every value came back, and
reports microseconds per token: the process's CPU time over the awaited
calls / ``n``. CPU time, not wall clock: nothing waits on IO here, and on a
shared machine the time spent waiting for a core is not the engine's cost.
Each format is measured ``repeat`` times after a warm-up; the median is shown.

``--baseline REV`` compares against the engine as it was at git revision
``REV``: ``vault/`` and ``kms_client/`` of that revision are exported with
``git archive`` (the repository is only read) and both trees are measured
in child processes, alternating baseline and current round by round, so
load from other processes hits both sides alike. Rounds are the repeats.

Numbers are per-machine: compare the two columns of one run, never runs on
different machines or under different load (the foreign-load line says how
busy the rest of the machine was).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vault.api import ClassSpec
    from vault.engine import Vault

REPO = Path(__file__).resolve().parent.parent
FORMATS = ("opaque", "deterministic", "uuid", "numeric", "pan", "ssn")


@dataclass(frozen=True)
class Setting:
    """How much to measure."""

    n: int  # tokens per format and repeat
    batch: int  # items per vault call
    repeat: int  # measured repeats (rounds with --baseline)


def value_for(kind: str, i: int) -> str:
    """A distinct value that fits ``kind``'s shape (so no format falls back to opaque)."""
    if kind == "numeric":
        return str(10**11 + i)
    if kind == "pan":
        return f"4111 1111 {i // 10000 % 10000:04d} {i % 10000:04d}"
    if kind == "ssn":
        return f"{123 + i // 10000 % 700:03d}-{45 + i // 100 % 50:02d}-{1000 + i % 9000:04d}"
    return f"person{i}@example.com"


def spec_for(kind: str) -> ClassSpec:
    """A field class of format ``kind``, as a policy would declare it."""
    from vault.api import ClassSpec, FormatKind, TokenFormat

    fmt = FormatKind(kind)
    keep = {"pan": (0, 4), "ssn": (0, 4)}.get(kind, (0, 0))
    return ClassSpec(f"bench-{kind}", TokenFormat(fmt, "tok", keep[0], keep[1]))


async def one_pass(vault: Vault, kind: str, n: int, batch: int, start: int) -> tuple[float, float]:
    """(tokenize, detokenize) microseconds per token for ``n`` fresh values of ``kind``."""
    from vault.api import DetokenizeItem, Revealed, TokenizeItem

    spec = spec_for(kind)
    values = [value_for(kind, start + i) for i in range(n)]
    items = [TokenizeItem(v, spec, "alice", "acme") for v in values]
    t0 = time.process_time()
    tokens: list[str] = []
    for at in range(0, n, batch):
        for tok in await vault.tokenize(items[at : at + batch]):
            if not isinstance(tok, str):
                raise SystemExit(f"bench: {kind}: tokenize refused a value")
            tokens.append(tok)
    t1 = time.process_time()
    back = [DetokenizeItem(t, spec) for t in tokens]
    t2 = time.process_time()
    got: list[str] = []
    for at in range(0, n, batch):
        for r in await vault.detokenize(back[at : at + batch]):
            got.append(r.value if isinstance(r, Revealed) else "")
    t3 = time.process_time()
    if got != values:
        raise SystemExit(f"bench: {kind}: detokenize did not give every value back")
    return (t1 - t0) / n * 1e6, (t3 - t2) / n * 1e6


async def measure(setting: Setting) -> dict[str, dict[str, list[float]]]:
    """Per format: the tokenize and detokenize us/token of each measured repeat."""
    from audit.config import AuditConfig
    from kms_client import KeysConfig
    from kms_client.keysetup import audited_keys
    from vault.engine import Vault
    from vault.memory_store import MemoryVaultStore

    # The throwaway keyring's "development root created" warning is noise here.
    logging.getLogger("kms_client").setLevel(logging.ERROR)
    out = _empty(FORMATS)
    with tempfile.TemporaryDirectory(prefix="tg-bench-vault-") as tmp:
        async with audited_keys(
            keys=KeysConfig(),
            audit=AuditConfig(),
            data_dir=Path(tmp),
            production=False,
            background=False,
        ) as (_, manager):
            vault = Vault(MemoryVaultStore(), manager)
            for kind in FORMATS:  # warm-up: first use of each class, allocator, caches
                await one_pass(vault, kind, max(setting.batch, setting.n // 4), setting.batch, 0)
            start = setting.n
            for _ in range(setting.repeat):
                for kind in FORMATS:
                    tok, detok = await one_pass(vault, kind, setting.n, setting.batch, start)
                    out[kind]["tokenize"].append(tok)
                    out[kind]["detokenize"].append(detok)
                start += setting.n
    return out


def _empty(kinds: Iterable[str]) -> dict[str, dict[str, list[float]]]:
    return {k: {"tokenize": [], "detokenize": []} for k in kinds}


def export_tree(rev: str, into: Path) -> None:
    """``vault/`` and ``kms_client/`` of revision ``rev`` under ``into`` (the repo is only read)."""
    data = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "vault", "kms_client"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")


def run_child(setting: Setting, tree: Path | None) -> dict[str, dict[str, list[float]]]:
    """One measured round in a fresh interpreter, engine code from ``tree`` (None: this repo)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child"]
    cmd += ["--n", str(setting.n), "--batch", str(setting.batch), "--repeat", "1"]
    if tree is not None:
        cmd += ["--tree", str(tree)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    doc = json.loads(done.stdout)
    expected = (tree or REPO) / "vault" / "__init__.py"
    if Path(doc["vault"]) != expected:
        raise SystemExit(f"bench: the child ran {doc['vault']}, not {expected}")
    runs: dict[str, dict[str, list[float]]] = doc["runs"]
    return runs


def compare(setting: Setting, rev: str) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Baseline and current, one child each per round, alternating."""
    sides: dict[str, dict[str, dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="tg-bench-base-") as tmp:
        export_tree(rev, Path(tmp))
        for _ in range(setting.repeat):
            for side, tree in (("baseline", Path(tmp)), ("current", None)):
                got = run_child(Setting(setting.n, setting.batch, 1), tree)
                merged = sides.setdefault(side, _empty(got))
                for kind, ops in got.items():
                    for op, runs in ops.items():
                        merged[kind][op] += runs
    return sides


def medians(runs: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """The median of each format's repeats."""
    return {k: {op: statistics.median(v) for op, v in ops.items()} for k, ops in runs.items()}


def render(sides: dict[str, dict[str, dict[str, float]]]) -> str:
    """A table: us/token per format and operation, one column per side (and the ratio)."""
    names = list(sides)
    head = f"{'us/token':<26}" + "".join(f"{n:>11}" for n in names)
    lines = [head + (f"{'after/before':>14}" if len(names) == 2 else "")]
    first = sides[names[0]]
    for kind in first:
        for op in ("tokenize", "detokenize"):
            cells = [sides[n][kind][op] for n in names]
            row = f"{kind + ' ' + op:<26}" + "".join(f"{c:>11.1f}" for c in cells)
            if len(cells) == 2:
                row += f"{cells[1] / cells[0]:>14.2f}"
            lines.append(row)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vault engine CPU per token, no store time")
    parser.add_argument("--n", type=int, default=2000, help="tokens per format and repeat")
    parser.add_argument("--batch", type=int, default=100, help="items per vault call")
    parser.add_argument("--repeat", type=int, default=5, help="measured repeats (median shown)")
    parser.add_argument("--quick", action="store_true", help="n=500, 3 repeats")
    parser.add_argument(
        "--baseline", metavar="REV", help="also measure vault/ and kms_client/ at REV"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setting = (
        Setting(500, args.batch, 3) if args.quick else Setting(args.n, args.batch, args.repeat)
    )
    if args.tree is not None:
        sys.path.insert(0, str(args.tree))  # before the first import of vault or kms_client
    if args.child:
        import vault

        print(json.dumps({"vault": vault.__file__, "runs": asyncio.run(measure(setting))}))
        return 0
    from bench import cpu  # here: run as a script, bench/ is importable only after __main__

    before = cpu.sample([])
    if args.baseline:
        runs = compare(setting, args.baseline)
    else:
        runs = {"current": asyncio.run(measure(setting))}
    load = cpu.share(before, cpu.sample([]))
    sides = {name: medians(r) for name, r in runs.items()}
    base = f" vs {args.baseline} (alternating child processes)" if args.baseline else ""
    print(
        f"vault engine, MemoryVaultStore, n={setting.n} per format, batches of {setting.batch},"
        f" median of {setting.repeat}{base}; Python {sys.version.split()[0]};"
        f" other processes used {load.foreign_pct:.0f}% of a core"
    )
    print(render(sides))
    write_json(args.out, setting, args.baseline, runs, sides, load.foreign_pct)
    return 0


def write_json(
    out: Path,
    setting: Setting,
    baseline: str | None,
    runs: dict[str, dict[str, dict[str, list[float]]]],
    sides: dict[str, dict[str, dict[str, float]]],
    foreign_pct: float,
) -> None:
    """Everything measured, to ``out/vault-engine-<stamp>.json``."""
    doc = {
        "python": sys.version.split()[0],
        "setting": {"n": setting.n, "batch": setting.batch, "repeat": setting.repeat},
        "baseline": baseline,
        "other_processes_pct_of_one_core": round(foreign_pct, 1),
        "median_us_per_token": sides,
        "runs_us_per_token": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"vault-engine-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    # Run as a script, Python puts bench/ on the path, not the repo that holds the package.
    sys.path.insert(1, str(REPO))
    sys.exit(main())
