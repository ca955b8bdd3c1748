"""Field-rule cost in process: ``.venv/bin/python -m bench.field_rules [--quick] [--baseline REV]``.

Compiles the tokenization benchmark's policy (:mod:`bench.tokenize_config`)
with ``compile_fields`` and the real action registry, over a real Vault on
``MemoryVaultStore`` and a real KeyManager (dev root, file store in a temp
dir), then times ``MessageTransformer.apply`` for: tokenize a JSON body with
1, 10 and 100 fields, and detokenize the 100-item list response. No HTTP, no
store IO: what is left is parsing, selection, plugins, authorization, audit,
crypto and write-back. The vault calls are timed separately (``vault``
column), so ``rest`` is the policy and plugin layers (plus the auditor).

``--baseline REV`` measures two trees side by side: this one, and this one
with ``policy/`` and ``plugins/`` taken from git revision REV (everything
else, vault included, is the live tree). Each side runs in its own child
process, alternating round by round; the report shows medians over rounds.
Compare ratios within one run, never absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import tokenize_config as cfg
from plugins.base import ActionContext, Subject
from plugins.ratelimit import MemoryRateLimiter
from policy.compile import compile_fields
from policy.message import Message
from policy.model import PolicyFile
from policy.transform import MessageTransformer
from policy.yamlio import load_model
from tests.kms_client.support import RecordingAuditor, open_manager
from vault.api import DetokenizeItem, TokenizeItem
from vault.engine import Vault
from vault.memory_store import MemoryVaultStore

ROOT = Path(__file__).resolve().parent.parent
JSON_HEADERS = (("Content-Type", "application/json"),)
LIMIT = 1 << 20


class TimedVault:
    """The real Vault, with the time spent inside its calls summed up."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self.spent = 0.0

    async def tokenize(self, items: Sequence[TokenizeItem]) -> list[object]:
        start = time.perf_counter()
        try:
            return list(await self._vault.tokenize(items))
        finally:
            self.spent += time.perf_counter() - start

    async def detokenize(self, items: Sequence[DetokenizeItem]) -> list[object]:
        start = time.perf_counter()
        try:
            return list(await self._vault.detokenize(items))
        finally:
            self.spent += time.perf_counter() - start


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    """One timed message: its transformer, message, context and how many values it holds."""

    name: str
    transformer: MessageTransformer
    message: Message
    ctx: ActionContext
    values: int


def _side(transformer: MessageTransformer | None) -> MessageTransformer:
    if transformer is None:
        raise SystemExit("bench: the policy lost a field rule")
    return transformer


async def _cases(workdir: Path) -> tuple[list[Case], TimedVault, object]:
    policy = workdir / "fields.yaml"
    policy.write_text(cfg.policy_yaml("fields"))
    model = load_model(PolicyFile, policy, label="policies/fields.yaml")
    fields = compile_fields([("policies/fields.yaml", model)])
    manager = await open_manager(workdir / "keys")
    vault = TimedVault(Vault(MemoryVaultStore(), manager))
    ctx = ActionContext(
        route="",
        rule="",
        direction="request",
        subject=Subject(sub="alice"),
        vault=vault,  # type: ignore[arg-type]  # the real Vault, timed
        keys=manager,
        audit=RecordingAuditor(),
        limiter=MemoryRateLimiter(),
        now=time.time(),
        request_id="bench",
    )
    ingest, seed = _side(fields["ingest"].request), _side(fields["seed"].request)
    listing = _side(fields["list"].response)
    seeded = await seed.apply(Message(headers=JSON_HEADERS, body=cfg.seed_body(), limit=LIMIT), ctx)
    cases = [
        Case(
            f"tokenize-{n}",
            ingest,
            Message(headers=JSON_HEADERS, body=cfg.items_body(n), limit=LIMIT),
            ctx,
            n,
        )
        for n in cfg.TOKENIZE_SIZES
    ]
    response = dataclasses.replace(ctx, direction="response")
    body = Message(headers=JSON_HEADERS, body=seeded.body, limit=LIMIT)
    cases.append(Case(f"detokenize-{cfg.LIST_SIZE}", listing, body, response, cfg.LIST_SIZE))
    return cases, vault, manager


async def _time(case: Case, vault: TimedVault, number: int) -> tuple[float, float]:
    """Seconds per message: (whole apply, inside the vault)."""
    vault.spent = 0.0
    start = time.perf_counter()
    for _ in range(number):
        await case.transformer.apply(case.message, case.ctx)
    total = time.perf_counter() - start
    return total / number, vault.spent / number


async def measure(number: int, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """Per case, ``repeats`` samples of (apply, vault) seconds per message."""
    with tempfile.TemporaryDirectory(prefix="tg-field-rules-") as tmp:
        cases, vault, manager = await _cases(Path(tmp))
        try:
            out: dict[str, list[tuple[float, float]]] = {c.name: [] for c in cases}
            for case in cases:
                await _time(case, vault, max(1, number // 10))  # warm up
            for _ in range(repeats):
                for case in cases:
                    out[case.name].append(await _time(case, vault, number))
            return out
        finally:
            await manager.close()  # type: ignore[attr-defined]


def _baseline_tree(rev: str, into: Path) -> None:
    """``policy/`` and ``plugins/`` of git revision ``rev`` under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "policy", "plugins"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _child(cwd: Path, number: int) -> dict[str, list[list[float]]]:
    """One round in a fresh process whose ``cwd`` comes first on sys.path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "bench.field_rules", "--child", "--number", str(number)]
    done = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    result: dict[str, list[list[float]]] = json.loads(done.stdout)
    return result


def _row(name: str, values: int, samples: Sequence[Sequence[float]]) -> tuple[float, float, str]:
    apply_us = statistics.median(s[0] for s in samples) * 1e6
    rest_us = statistics.median(s[0] - s[1] for s in samples) * 1e6
    vault_us = apply_us - rest_us
    line = (
        f"{name:<16} {apply_us:>10.0f} {vault_us:>10.0f} {rest_us:>10.0f} "
        f"{apply_us / values:>11.1f} {rest_us / values:>10.1f}"
    )
    return apply_us, rest_us, line


HEADER = (
    f"{'case':<16} {'apply us':>10} {'vault us':>10} {'rest us':>10} "
    f"{'apply/value':>11} {'rest/value':>10}"
)
VALUES = {f"tokenize-{n}": n for n in cfg.TOKENIZE_SIZES} | {f"detokenize-{cfg.LIST_SIZE}": 100}


def _report(label: str, samples: dict[str, list[list[float]]]) -> dict[str, tuple[float, float]]:
    print(f"\n{label}  (per message; medians over {len(next(iter(samples.values())))} samples)")
    print(HEADER)
    out = {}
    for name, rows in samples.items():
        apply_us, rest_us, line = _row(name, VALUES[name], rows)
        print(line)
        out[name] = (apply_us, rest_us)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Measure this tree (and a baseline when asked); print a table per tree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds")
    parser.add_argument("--number", type=int, default=0, help="messages per sample")
    parser.add_argument("--rounds", type=int, default=0, help="samples (child rounds) per tree")
    parser.add_argument("--baseline", help="git revision whose policy/ and plugins/ to compare")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    number = args.number or (20 if args.quick else 100)
    rounds = args.rounds or (3 if args.quick else 7)
    if args.child:
        print(json.dumps(asyncio.run(measure(number, 1))))
        return 0
    print(f"bench.field_rules: {number} messages per sample; machine: {os.cpu_count()} cores")
    if not args.baseline:
        samples = asyncio.run(measure(number, rounds))
        _report("this tree", {k: [list(s) for s in v] for k, v in samples.items()})
        return 0
    with tempfile.TemporaryDirectory(prefix="tg-field-rules-base-") as tmp:
        base, here = Path(tmp), ROOT
        _baseline_tree(args.baseline, base)
        got: dict[str, dict[str, list[list[float]]]] = {"base": {}, "here": {}}
        for _ in range(rounds):
            for side, cwd in (("base", base), ("here", here)):
                for name, rows in _child(cwd, number).items():
                    got[side].setdefault(name, []).extend(rows)
    before = _report(f"baseline ({args.baseline}: policy/ and plugins/)", got["base"])
    after = _report("this tree", got["here"])
    print(f"\n{'case':<16} {'apply after/before':>19} {'rest after/before':>18}")
    for name, (apply_us, rest_us) in after.items():
        b_apply, b_rest = before[name]
        print(f"{name:<16} {apply_us / b_apply:>19.2f} {rest_us / b_rest:>18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
