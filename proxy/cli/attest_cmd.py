"""``tokengate attest verify``: verify TEE evidence offline and print a readable verdict.

Exit status 0 only when every piece of evidence verified. The verifier is
chosen by ``--platform`` (what the operator says the TEE is), never by the
evidence. ``--at`` pins the clock (real samples expire); by default it is now.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from tee.attestation import Expectation, Platform, Policy, Verifier
from tee.errors import EvidenceRefused
from tee.report import Verdict


def _when(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise click.BadParameter("use an ISO 8601 time such as 2023-09-18T15:00:00Z") from e
    if at.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. ...Z")
    return at


def _hex(value: str | None, name: str) -> bytes | None:
    if value is None:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError as e:
        raise click.BadParameter(f"{name} must be hex") from e


@click.group("attest")
def attest() -> None:
    """Verify TEE attestation evidence."""


@attest.command("verify")
@click.option(
    "--evidence",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="evidence file (repeatable: batch mode)",
)
@click.option(
    "--platform",
    type=click.Choice([p.value for p in Platform]),
    required=True,
    help="what the TEE is (chooses the verifier; the evidence is not trusted to say)",
)
@click.option("--deployment", help="a TEE registered with the KMS (needs `tokengate kms serve`)")
@click.option("--at", "at_text", help="verify as of this time (ISO 8601; default: now)")
@click.option("--allow-debug", is_flag=True, help="accept evidence from a debug-mode TEE")
@click.option("--accept-tcb", multiple=True, help="accept this TCB status too (repeatable)")
@click.option("--expect-nonce", help="hex nonce the evidence must carry (Nitro)")
@click.option("--expect-report-data", help="hex report data the evidence must carry")
@click.option("--expect-public-key", help="hex public key the evidence must bind (Nitro)")
@click.option("--sim-data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="with --platform sim: the data dir holding the development key")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="one JSON document per evidence")
def verify(
    files: tuple[Path, ...],
    platform: str,
    deployment: str | None,
    at_text: str | None,
    allow_debug: bool,
    accept_tcb: tuple[str, ...],
    expect_nonce: str | None,
    expect_report_data: str | None,
    expect_public_key: str | None,
    sim_data_dir: Path | None,
    as_json: bool,
) -> None:
    """Verify evidence files; exit 0 only when all verified."""
    if deployment is not None:
        click.echo("attest: --deployment needs the TEE registry of `tokengate kms serve`, "
                   "which this build does not have yet; use --evidence", err=True)  # fmt: skip
        sys.exit(2)
    if not files:
        raise click.UsageError("give --evidence FILE (or --deployment ID)")
    at = _when(at_text)
    expect = Expectation(
        nonce=_hex(expect_nonce, "--expect-nonce"),
        report_data=_hex(expect_report_data, "--expect-report-data"),
        public_key=_hex(expect_public_key, "--expect-public-key"),
    )
    policy = Policy(allow_debug=allow_debug, accepted_tcb=frozenset({"UpToDate", *accept_tcb}))
    verifier = _verifier(Platform(platform), sim_data_dir)
    verdicts = []
    for path in files:
        try:
            claims = verifier.verify(path.read_bytes(), expect=expect, now=at, policy=policy)
            verdict = Verdict(Platform(platform), at, claims=claims, source=str(path))
        except EvidenceRefused as e:
            verdict = Verdict(Platform(platform), at, refused=e, source=str(path))
        verdicts.append(verdict)
        click.echo(json.dumps(verdict.as_dict()) if as_json else verdict.text())
    sys.exit(0 if all(v.verified for v in verdicts) else 1)


def _verifier(platform: Platform, sim_data_dir: Path | None) -> Verifier:
    from tee.verifiers import verifier_for

    if platform is not Platform.SIM:
        return verifier_for(platform)
    if sim_data_dir is None:
        raise click.UsageError("--platform sim needs --sim-data-dir (the development key)")
    from tee.sim import load_or_create_key

    key = load_or_create_key(sim_data_dir).public_key()
    return verifier_for(platform, insecure_simulated_tee=True, sim_key=key)


def register(cli: click.Group) -> None:
    """Attach ``attest``."""
    cli.add_command(attest)
