"""Attestation verification time per evidence type: ``.venv/bin/python -m bench.attestation``.

Verifies real evidence of every platform (the vectors under
``tests/tee/vectors``, or ``--vectors DIR`` with the same layout) with the
verifiers the gateway and the KMS use, each with the clock pinned inside its
sample's window and the policy that sample needs:

| type | evidence | time | policy |
| --- | --- | --- | --- |
| nitro | evervault beta COSE document (production mode) | 2022-10-13T10:00Z | default |
| sev-snp | go-sev-guest Milan report + VCEK | 2024-06-01 | allow_debug (the sample is debug) |
| tdx | dcap-qvl TDX v4 quote + collateral | 2025-07-01 | default (UpToDate) |
| sgx | dcap-qvl SGX v3 quote + collateral | 2025-07-01 | accepts its TCB status |
| sim | simulated evidence signed here by a throwaway key | signing time | default |

Every sample is checked to verify before anything is timed (and a flipped bit
to be refused), so a broken verifier cannot post a fast time. Then ``rounds``
rounds, each timing ``n`` calls of ``verifier.verify`` per type, types
interleaved round by round so that load from other processes lands on every
type alike. Per type: p50 and p99 of the per-call wall time, the mean CPU time
per call, and verifications per second on one core (1 / mean CPU time).
Also shown: the cost of building the verifier (``verifier_for``: pinned roots
loaded and parsed), paid per attestation by callers that do not keep one.

Numbers are per-machine: compare the rows of one run, never runs on different
machines or under different load (the foreign-load line says how busy the rest
of the machine was).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tee.attestation import Expectation, Platform, Policy, Verifier
from tee.errors import EvidenceRefused

REPO = Path(__file__).resolve().parent.parent
VECTORS = REPO / "tests" / "tee" / "vectors"
TYPES = ("nitro", "sev-snp", "tdx", "sgx", "sim")
# The SEV-SNP sample's VCEK has serial number 0; pyca/cryptography warns on parsing it.
SERIAL_ZERO = (
    "Parsed a serial number which wasn't positive (i.e., it was negative or zero), "
    "which is disallowed by RFC 5280. Loading this certificate will cause an "
    "exception in a future release of cryptography."
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One evidence type: the real evidence, and how it verifies."""

    name: str
    platform: Platform
    evidence: bytes
    at: datetime
    policy: Policy
    expect: Expectation = field(default_factory=Expectation)


@dataclass(frozen=True, slots=True)
class Stats:
    """One type's figures (milliseconds, verifications per second of one core)."""

    name: str
    calls: int
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    per_s: float
    setup_ms: float


def samples(vectors: Path, sim_dir: Path) -> list[Sample]:
    """The five evidence types; ``sim_dir`` receives the throwaway development key."""
    from tee.dcap import encode_evidence as dcap_evidence
    from tee.sev_snp import encode_evidence as snp_evidence
    from tee.sim import SimReport, load_or_create_key, sign_evidence

    nitro = vectors / "nitro"
    snp = vectors / "sev-snp"
    dcap = vectors / "tdx-sgx"

    def quote(kind: str, name: str) -> bytes:
        collateral = json.loads((dcap / f"dcapqvl_{kind}_quote_collateral.json").read_text())
        return dcap_evidence((dcap / name).read_bytes(), collateral)

    signed_at = datetime.now(UTC).replace(microsecond=0)
    sim_key = load_or_create_key(sim_dir)
    sim = sign_evidence(sim_key, SimReport(measurement=b"\x5a" * 48), now=signed_at)
    july = datetime(2025, 7, 1, tzinfo=UTC)
    sgx_tcb = frozenset({"UpToDate", "ConfigurationAndSWHardeningNeeded"})
    return [
        Sample(
            "nitro",
            Platform.NITRO,
            (nitro / "evervault_beta_2022-10-13.cose").read_bytes(),
            datetime(2022, 10, 13, 10, tzinfo=UTC),
            Policy(),
        ),
        Sample(
            "sev-snp",
            Platform.SEV_SNP,
            snp_evidence(
                (snp / "gosevguest_milan_report.bin").read_bytes(),
                (snp / "gosevguest_milan_vcek.der").read_bytes(),
            ),
            datetime(2024, 6, 1, tzinfo=UTC),
            Policy(allow_debug=True),
            Expectation(report_data=bytes.fromhex("0102030405") + bytes(59)),
        ),
        Sample("tdx", Platform.TDX, quote("tdx", "dcapqvl_tdx_quote_v4.bin"), july, Policy()),
        Sample(
            "sgx",
            Platform.SGX,
            quote("sgx", "dcapqvl_sgx_quote_v3.bin"),
            july,
            Policy(accepted_tcb=sgx_tcb),
        ),
        Sample("sim", Platform.SIM, sim, signed_at, Policy()),
    ]


def verifier(sample: Sample, sim_dir: Path) -> Verifier:
    """The verifier the gateway would choose for ``sample``'s platform."""
    from tee.verifiers import verifier_for

    if sample.platform is not Platform.SIM:
        return verifier_for(sample.platform)
    from tee.sim import load_or_create_key

    key = load_or_create_key(sim_dir).public_key()
    return verifier_for(sample.platform, insecure_simulated_tee=True, sim_key=key)


def verify(v: Verifier, sample: Sample, evidence: bytes | None = None) -> None:
    """One verification of ``sample`` (or of other ``evidence`` as that sample)."""
    v.verify(
        sample.evidence if evidence is None else evidence,
        expect=sample.expect,
        now=sample.at,
        policy=sample.policy,
    )


def check(v: Verifier, sample: Sample) -> None:
    """``sample`` verifies and the same evidence with one bit flipped does not; else exit."""
    try:
        verify(v, sample)
    except EvidenceRefused as e:
        raise SystemExit(f"bench: {sample.name}: the sample was refused ({e.check})") from e
    flipped = bytearray(sample.evidence)
    flipped[len(flipped) // 2] ^= 0x01
    try:
        verify(v, sample, bytes(flipped))
    except EvidenceRefused:
        return
    raise SystemExit(f"bench: {sample.name}: evidence with a flipped bit verified")


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values``."""
    if not values or not 0 < q <= 100:
        raise ValueError("percentile: need values and 0 < q <= 100")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return ordered[int(rank) - 1]


def measure(
    pairs: Sequence[tuple[Sample, Verifier]], n: int, rounds: int
) -> dict[str, tuple[list[float], float]]:
    """Per type: every call's wall time (s) and the CPU seconds of all its calls."""
    walls: dict[str, list[float]] = {s.name: [] for s, _ in pairs}
    cpu: dict[str, float] = dict.fromkeys(walls, 0.0)
    for _ in range(rounds):
        for sample, v in pairs:
            c0 = time.process_time()
            for _ in range(n):
                t0 = time.perf_counter()
                verify(v, sample)
                walls[sample.name].append(time.perf_counter() - t0)
            cpu[sample.name] += time.process_time() - c0
    return {name: (walls[name], cpu[name]) for name in walls}


def setup_ms(sample: Sample, sim_dir: Path, repeat: int = 20) -> float:
    """Median time to build the verifier of ``sample``'s platform, in ms."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        verifier(sample, sim_dir)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def summarize(name: str, walls: Sequence[float], cpu_s: float, setup: float) -> Stats:
    """The figures of one type from its raw timings."""
    cpu_ms = cpu_s / len(walls) * 1e3
    return Stats(
        name=name,
        calls=len(walls),
        p50_ms=percentile(walls, 50) * 1e3,
        p99_ms=percentile(walls, 99) * 1e3,
        cpu_ms=cpu_ms,
        per_s=1e3 / cpu_ms if cpu_ms > 0 else float("inf"),
        setup_ms=setup,
    )


def render(rows: Sequence[Stats]) -> str:
    """The printed table."""
    head = f"{'type':<9}{'calls':>7}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms':>9}{'verif/s':>9}"
    lines = [head + f"{'setup ms':>10}"]
    for r in rows:
        lines.append(
            f"{r.name:<9}{r.calls:>7}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.cpu_ms:>9.2f}"
            f"{r.per_s:>9.0f}{r.setup_ms:>10.2f}"
        )
    return "\n".join(lines)


def to_json(rows: Sequence[Stats], n: int, rounds: int, foreign_pct: float) -> dict[str, object]:
    """The run as a JSON document."""
    return {
        "benchmark": "attestation",
        "started": datetime.now(UTC).isoformat(),
        "python": sys.version.split()[0],
        "calls_per_round": n,
        "rounds": rounds,
        "interleaved": True,
        "other_processes_pct_of_one_core": round(foreign_pct, 1),
        "types": {
            r.name: {
                "calls": r.calls,
                "p50_ms": round(r.p50_ms, 4),
                "p99_ms": round(r.p99_ms, 4),
                "cpu_ms_per_call": round(r.cpu_ms, 4),
                "verifications_per_s_one_core": round(r.per_s, 1),
                "verifier_setup_ms": round(r.setup_ms, 4),
            }
            for r in rows
        },
    }


def run(vectors: Path, n: int, rounds: int, types: Sequence[str]) -> list[Stats]:
    """Check every sample, measure them side by side, summarize."""
    with tempfile.TemporaryDirectory(prefix="tg-bench-attest-") as tmp:
        sim_dir = Path(tmp)
        chosen = [s for s in samples(vectors, sim_dir) if s.name in types]
        pairs = [(s, verifier(s, sim_dir)) for s in chosen]
        for sample, v in pairs:
            check(v, sample)
            for _ in range(3):  # warm-up: imports, caches
                verify(v, sample)
        raw = measure(pairs, n, rounds)
        setups = {s.name: setup_ms(s, sim_dir) for s in chosen}
    return [summarize(s.name, *raw[s.name], setups[s.name]) for s in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="attestation verification time per evidence type")
    parser.add_argument("--calls", type=int, default=100, help="calls per type and round")
    parser.add_argument("--rounds", type=int, default=10, help="rounds (types interleaved)")
    parser.add_argument("--quick", action="store_true", help="20 calls x 3 rounds")
    parser.add_argument("--types", default=",".join(TYPES), help="comma-separated subset")
    parser.add_argument("--vectors", type=Path, default=VECTORS, help="evidence directory")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    n, rounds = (20, 3) if args.quick else (args.calls, args.rounds)
    types = [t for t in args.types.split(",") if t]
    if unknown := set(types) - set(TYPES):
        parser.error(f"unknown type(s): {', '.join(sorted(unknown))}")
    from cryptography.utils import CryptographyDeprecationWarning

    # Exactly that warning, nothing broader.
    warnings.filterwarnings(
        "ignore", message=re.escape(SERIAL_ZERO), category=CryptographyDeprecationWarning
    )
    from bench import cpu

    before = cpu.sample([])
    rows = run(args.vectors, n, rounds, types)
    load = cpu.share(before, cpu.sample([]))
    print(
        f"{n} calls x {rounds} rounds per type (interleaved); Python {sys.version.split()[0]}; "
        f"other processes used {load.foreign_pct:.0f}% of a core"
    )
    print(render(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"attestation-{stamp}.json"
    path.write_text(json.dumps(to_json(rows, n, rounds, load.foreign_pct), indent=2) + "\n")
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
