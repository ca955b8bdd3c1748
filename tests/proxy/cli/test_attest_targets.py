"""``tokengate attest verify --deployment/--all`` against a real KMS and real sim workers.

Everything runs as a user runs it, each in its own process: ``tokengate kms
serve`` (registry and broker), ``tokengate tee worker`` per TEE (simulated,
the demo bundle), and the command under test itself, reading a gateway.yaml
whose ``tee:`` section lists the workers. Proven here: the platform and the
reference measurements come from the registry; every run uses a fresh nonce
and gets a fresh key; a worker that is not running, a TEE the registry does
not know, a retired TEE, a worker whose bundle changed and the simulated TEE
without ``insecure_simulated_tee`` are refused deployments naming the check;
exit status 0 only when every one verified; ids the config does not list are
usage errors.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from kms.auth import credential_digest, new_credential
from proxy.cli.attest_targets import select
from proxy.teeconfig import TeeWorkerConfig
from tee.broker_client import BrokerClient
from tee.bundle import measure
from tee.sim import KEY_FILE, load_or_create_key
from tests.conftest import free_port
from tests.integration.process import TOKENGATE

pytestmark = pytest.mark.slow

BUNDLE = Path(__file__).resolve().parents[3] / "examples" / "tee_jobs"  # the demo bundle


@dataclass
class Lab:
    """A KMS process, sim worker processes and a gateway.yaml naming them."""

    root: Path
    admin: str = field(default="", repr=False)
    gateway_credential: str = field(default="", repr=False)
    kms_url: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def shared(self) -> Path:
        return self.root / "workers"

    def sock(self, tee_id: str) -> Path:
        return self.root / f"{tee_id}.sock"

    def spawn(self, name: str, args: Sequence[str]) -> None:
        with (self.root / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [TOKENGATE, *args], stdout=out, stderr=subprocess.STDOUT
            )

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def start_kms(self) -> None:
        kms = self.root / "kms"
        kms.mkdir()
        load_or_create_key(self.shared)
        self.admin, self.gateway_credential = new_credential(), new_credential()
        creds = [
            {"id": "ops", "roles": ["admin"], "sha256": credential_digest(self.admin)},
            {"id": "gw", "roles": ["gateway"], "sha256": credential_digest(self.gateway_credential)},
        ]  # fmt: skip
        (kms / "credentials.yaml").write_text(yaml.safe_dump({"credentials": creds}))
        port = free_port()
        config = {
            "data_dir": str(kms / "data"),
            "listen": {"host": "127.0.0.1", "port": port},
            "credentials": str(kms / "credentials.yaml"),
            "insecure_simulated_tee": True,
            "sim_key": str(self.shared / KEY_FILE),
        }
        (kms / "kms.yaml").write_text(yaml.safe_dump(config))
        self.kms_url = f"http://127.0.0.1:{port}"
        self.spawn("kms", ["kms", "serve", "--config", str(kms / "kms.yaml")])
        asyncio.run(self._until_registry_answers())

    async def _until_registry_answers(self) -> None:
        client = BrokerClient(self.kms_url, credential=self.admin, timeout=2)
        deadline = time.monotonic() + 30
        try:
            while True:
                if self.procs["kms"].poll() is not None:
                    raise AssertionError(f"kms exited:\n{self.log('kms')}")
                try:
                    await client.list_tees()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"kms did not start:\n{self.log('kms')}") from None
                    await asyncio.sleep(0.1)
        finally:
            await client.close()

    def registry(self, call: str, *args: Any) -> Any:
        async def run() -> Any:
            client = BrokerClient(self.kms_url, credential=self.admin, timeout=10)
            try:
                return await getattr(client, call)(*args)
            finally:
                await client.close()

        return asyncio.run(run())

    def register(self, tee_id: str, measurement: str | None = None) -> None:
        self.registry(
            "register",
            {
                "id": tee_id,
                "platform": "sim",
                "measurements": {"measurement": [measurement or measure(BUNDLE).hex()]},
                "tenants": ["acme"],
            },
        )

    def start_worker(self, tee_id: str, bundle: Path = BUNDLE) -> None:
        args = [
            *("tee", "worker", "--bundle", str(bundle), "--tee-id", tee_id),
            *("--listen", f"unix:{self.sock(tee_id)}", "--kms", self.kms_url),
            *("--data-dir", str(self.shared), "--insecure-simulated-tee"),
        ]
        self.spawn(tee_id, args)
        deadline = time.monotonic() + 30
        while not self.sock(tee_id).exists():
            if self.procs[tee_id].poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {tee_id} did not start:\n{self.log(tee_id)}")
            time.sleep(0.05)

    def gateway_yaml(self, tee_ids: Sequence[str], *, sim: bool = True) -> Path:
        gw = self.root / f"gateway-{len(list(self.root.glob('gateway-*')))}"
        gw.mkdir()
        credential = gw / "kms.credential"
        credential.write_text(self.gateway_credential)
        credential.chmod(0o600)
        tee: dict[str, Any] = {
            "kms": {"url": self.kms_url, "credential_file": str(credential)},
            "workers": [{"id": t, "address": f"unix:{self.sock(t)}"} for t in tee_ids],
        }
        if sim:
            tee.update(insecure_simulated_tee=True, sim_key=str(self.shared / KEY_FILE))
        config = {"upstreams": {"app": {"url": "http://127.0.0.1:1"}}, "tee": tee}
        path = gw / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("attest-lab"))
    try:
        lab.start_kms()
        for tee_id in ("tee-1", "tee-2"):
            lab.register(tee_id)
            lab.start_worker(tee_id)
        yield lab
    finally:
        lab.stop()


def attest(config: Path, *args: str) -> tuple[int, str, str]:
    """Run ``tokengate attest verify`` as a user does; (exit status, stdout, stderr)."""
    done = subprocess.run(
        [TOKENGATE, "attest", "verify", "--config", str(config), "--timeout", "20", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def by_id(out: str) -> dict[str, dict[str, Any]]:
    doc = json.loads(out)
    assert isinstance(doc, list)
    return {d["deployment"]: d for d in doc}


def test_registered_sim_workers_verify_against_the_registry(lab: Lab) -> None:
    config = lab.gateway_yaml(["tee-1", "tee-2"])
    code, out, err = attest(config, "--deployment", "tee-1", "--deployment", "tee-2")
    assert code == 0, out + err
    assert out.count("VERIFIED") == 2
    assert "attest: 2 deployments: 2 verified, 0 refused" in out
    assert f"measurement   {measure(BUNDLE).hex()}" in out
    assert "policy        the KMS registry entry" in out
    assert "signature     valid (the development key: no hardware root)" in out
    code, out, err = attest(config, "--all", "--json")
    assert code == 0, out + err
    found = by_id(out)
    assert set(found) == {"tee-1", "tee-2"}
    for d in found.values():
        assert d["verdict"] == "verified"
        assert d["platform"] == "sim"  # from the registry entry
        assert d["measurements"] == {"measurement": measure(BUNDLE).hex()}
        assert d["signature_and_chain"] == "valid"


def test_every_run_uses_a_fresh_nonce_and_gets_a_fresh_key(lab: Lab) -> None:
    config = lab.gateway_yaml(["tee-1"])
    seen = []
    for _ in range(2):
        code, out, err = attest(config, "--deployment", "tee-1", "--json")
        assert code == 0, out + err
        [d] = json.loads(out)
        seen.append((d["nonce"], d["public_key"], d["generation"]))
    (nonce1, key1, gen1), (nonce2, key2, gen2) = seen
    assert nonce1 != nonce2
    assert len(bytes.fromhex(nonce1)) == 32
    assert key1 != key2
    assert gen2 > gen1


def test_a_batch_reports_each_refusal_and_exits_non_zero(lab: Lab) -> None:
    lab.register("tee-down")  # registered, but no worker runs
    config = lab.gateway_yaml(["tee-1", "tee-down", "tee-unknown"])
    code, out, err = attest(config, "--all", "--json")
    assert code == 1, out + err
    found = by_id(out)
    assert found["tee-1"]["verdict"] == "verified"
    assert found["tee-down"]["verdict"] == "refused"
    assert found["tee-down"]["failed_check"] == "unreachable"
    assert found["tee-down"]["platform"] == "sim"  # the registry answered, the worker did not
    assert found["tee-unknown"]["failed_check"] == "registry"
    assert found["tee-unknown"]["platform"] is None
    assert found["tee-unknown"]["reason"] == "the KMS registry has no such TEE"
    code, out, _ = attest(config, "--all")
    assert code == 1
    assert (
        "attest: 3 deployments: 1 verified, 2 refused: tee-down (unreachable), "
        "tee-unknown (registry)"
    ) in out


def test_a_retired_tee_is_refused(lab: Lab) -> None:
    lab.register("tee-r")
    lab.start_worker("tee-r")
    config = lab.gateway_yaml(["tee-r"])
    code, out, err = attest(config, "--deployment", "tee-r")
    assert code == 0, out + err
    lab.registry("retire", "tee-r")
    code, out, _ = attest(config, "--deployment", "tee-r", "--json")
    assert code == 1
    [d] = json.loads(out)
    assert (d["verdict"], d["failed_check"]) == ("refused", "retired")


def test_a_worker_whose_bundle_changed_is_refused(lab: Lab, tmp_path: Path) -> None:
    changed = tmp_path / "bundle"
    shutil.copytree(BUNDLE, changed, ignore=shutil.ignore_patterns("__pycache__"))
    with (changed / "cards.py").open("a") as f:
        f.write("\n# changed after registration\n")
    lab.register("tee-c")  # the registry holds the original bundle's measurement
    lab.start_worker("tee-c", changed)
    code, out, _ = attest(lab.gateway_yaml(["tee-c"]), "--deployment", "tee-c", "--json")
    assert code == 1
    [d] = json.loads(out)
    assert d["verdict"] == "refused"
    # The worker attests its new key to the KMS first, which refuses the measurement.
    assert (d["failed_check"], d["reason"]) == (
        "worker",
        "the worker refused to attest (kms_refused)",
    )


def test_sim_evidence_is_refused_without_insecure_simulated_tee(lab: Lab) -> None:
    config = lab.gateway_yaml(["tee-1"], sim=False)
    code, out, _ = attest(config, "--deployment", "tee-1", "--json")
    assert code == 1
    [d] = json.loads(out)
    assert (d["verdict"], d["platform"], d["failed_check"]) == ("refused", "sim", "platform")


def test_ids_the_config_does_not_list_and_configs_without_tee(lab: Lab, tmp_path: Path) -> None:
    config = lab.gateway_yaml(["tee-1"])
    code, _, err = attest(config, "--deployment", "tee-2")
    assert code == 2
    assert "tee-2: not a TEE id of tee.workers" in err
    plain = tmp_path / "gateway.yaml"
    plain.write_text(yaml.safe_dump({"upstreams": {"app": {"url": "http://127.0.0.1:1"}}}))
    code, _, err = attest(plain, "--all")
    assert code == 2
    assert "no tee: section" in err
    code, _, err = attest(tmp_path / "missing.yaml", "--all")
    assert code == 2
    assert "no gateway config" in err


def test_select_keeps_config_order_and_every_worker_of_an_id() -> None:
    workers = [
        TeeWorkerConfig(id="a", address="unix:/a1"),
        TeeWorkerConfig(id="b", address="unix:/b"),
        TeeWorkerConfig(id="a", address="unix:/a2"),
    ]
    assert [d.label for d in select(workers, ["a"], False)] == ["a@unix:/a1", "a@unix:/a2"]
    assert [d.tee_id for d in select(workers, [], True)] == ["a", "b", "a"]
    assert [d.tee_id for d in select(workers, ["b", "a", "b"], False)] == ["a", "b", "a"]
