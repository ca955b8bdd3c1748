"""``tokengate attest verify``: verify TEE evidence from files or from deployed workers.

Two modes, one report format:

- ``--evidence FILE --platform P``: evidence at rest. The verifier is chosen
  by ``--platform`` (what the operator says the TEE is), never by the
  evidence; ``--at`` pins the clock (real samples expire), bindings and the
  TCB/debug policy come from the flags.
- ``--deployment ID`` (repeatable) or ``--all``: the workers the gateway
  config lists (``tee.workers``) are asked for fresh evidence with a fresh
  nonce and checked against the KMS registry's entry (platform, reference
  measurements, debug and TCB policy: :mod:`proxy.cli.attest_deploy`). The
  flags that set a policy are refused here: the registry is the policy.

A readable report per item (``--json``: one JSON list), a summary line for a
batch; exit status 0 only when every item verified, 1 otherwise, 2 on usage
errors.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tee.attestation import Expectation, Platform, Policy
from tee.report import Verdict, check_evidence


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
    help="evidence file (repeatable: batch mode); needs --platform",
)
@click.option(
    "--platform",
    type=click.Choice([p.value for p in Platform]),
    help="with --evidence: what the TEE is (chooses the verifier; the evidence is not trusted)",
)
@click.option(
    "--deployment",
    "deployments",
    multiple=True,
    help="TEE id of a worker the gateway config lists: fresh evidence checked against the "
    "KMS registry (repeatable: batch mode)",
)
@click.option("--all", "every", is_flag=True, help="every worker the gateway config lists")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("gateway.yaml"),
    show_default=True,
    help="with --deployment/--all: the gateway config (tee.workers, the KMS)",
)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="with --deployment/--all: seconds per deployment")  # fmt: skip
@click.option("--at", "at_text", help="verify as of this time (ISO 8601; default: now)")
@click.option("--allow-debug", is_flag=True, help="accept evidence from a debug-mode TEE")
@click.option("--accept-tcb", multiple=True, help="accept this TCB status too (repeatable)")
@click.option("--expect-nonce", help="hex nonce the evidence must carry (Nitro, sim)")
@click.option("--expect-report-data", help="hex report data the evidence must carry")
@click.option("--expect-public-key", help="hex public key the evidence must bind (Nitro, sim)")
@click.option("--sim-data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="with --platform sim: the data dir holding the development key")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="one JSON list of verdicts")
def verify(
    files: tuple[Path, ...],
    platform: str | None,
    deployments: tuple[str, ...],
    every: bool,
    config_path: Path,
    timeout: float,
    at_text: str | None,
    allow_debug: bool,
    accept_tcb: tuple[str, ...],
    expect_nonce: str | None,
    expect_report_data: str | None,
    expect_public_key: str | None,
    sim_data_dir: Path | None,
    as_json: bool,
) -> None:
    """Verify evidence files or deployed workers; exit 0 only when all verified."""
    if deployments or every:
        policy_flags = {
            "--evidence": bool(files),
            "--platform": platform is not None,
            "--at": at_text is not None,
            "--allow-debug": allow_debug,
            "--accept-tcb": bool(accept_tcb),
            "--expect-nonce": expect_nonce is not None,
            "--expect-report-data": expect_report_data is not None,
            "--expect-public-key": expect_public_key is not None,
            "--sim-data-dir": sim_data_dir is not None,
        }
        if given := [flag for flag, on in policy_flags.items() if on]:
            raise click.UsageError(
                f"{', '.join(given)}: not with --deployment/--all (the KMS registry entry "
                "states the platform and the policy; the nonce is fresh)"
            )
        if deployments and every:
            raise click.UsageError("give --deployment ID or --all, not both")
        from proxy.cli.attest_targets import run_deployments

        sys.exit(run_deployments(config_path, deployments, every, timeout, as_json))
    if not files:
        raise click.UsageError("give --evidence FILE --platform P, or --deployment ID / --all")
    if platform is None:
        raise click.UsageError("--evidence needs --platform (the evidence is not trusted to say)")
    at = _when(at_text)
    expect = Expectation(
        nonce=_hex(expect_nonce, "--expect-nonce"),
        report_data=_hex(expect_report_data, "--expect-report-data"),
        public_key=_hex(expect_public_key, "--expect-public-key"),
    )
    policy = Policy(allow_debug=allow_debug, accepted_tcb=frozenset({"UpToDate", *accept_tcb}))
    chosen = Platform(platform)
    sim_key = _sim_key(sim_data_dir) if chosen is Platform.SIM else None
    verdicts = [
        check_evidence(
            chosen,
            path.read_bytes(),
            expect=expect,
            policy=policy,
            at=at,
            source=str(path),
            sim_key=sim_key,
        )
        for path in files
    ]
    _print(verdicts, as_json)
    sys.exit(0 if all(v.verified for v in verdicts) else 1)


def _print(verdicts: Sequence[Verdict], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([v.as_dict() for v in verdicts], indent=2))
        return
    click.echo("\n\n".join(v.text() for v in verdicts))
    if len(verdicts) > 1:
        ok = sum(v.verified for v in verdicts)
        refused = [f"{v.source} ({v.refused.check})" for v in verdicts if v.refused is not None]
        line = f"attest: {len(verdicts)} evidence files: {ok} verified, {len(refused)} refused"
        click.echo("\n" + line + (": " + ", ".join(refused) if refused else ""))


def _sim_key(sim_data_dir: Path | None) -> Ed25519PublicKey:
    """The development public key under ``sim_data_dir`` (never created here)."""
    from tee.sim import KEY_FILE, load_or_create_key

    if sim_data_dir is None:
        raise click.UsageError("--platform sim needs --sim-data-dir (the development key)")
    if not (sim_data_dir / KEY_FILE).is_file():
        raise click.UsageError(f"--sim-data-dir: no development key at {KEY_FILE} under it")
    return load_or_create_key(sim_data_dir).public_key()


def register(cli: click.Group) -> None:
    """Attach ``attest``."""
    cli.add_command(attest)
