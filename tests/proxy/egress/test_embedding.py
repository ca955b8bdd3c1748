"""mitmproxy embedded: only the relay's addons, no confdir, and no mitmproxy in the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.proxy.egress.conftest import RelayFactory, ThirdParty

ROOT = Path(__file__).resolve().parents[3]
ROUTES = """
egress:
  - name: any
    match: {{host: localhost, prefix: /}}
    port: {port}
"""


async def test_only_the_relays_addons_run_and_confdir_stays_untouched(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await start_relay(
        ROUTES.format(port=third_party.port), upstream_ca=third_party.ca.cert_pem.bytes()
    )
    # No dumper, termlog, event store, save, script, web or console addon.
    assert relay.running.relay.addon_names == (
        "tokengate_egress",
        "proxyserver",
        "nextlayer",
        "tlsconfig",
    )
    egress_dir = relay.directory / "data" / "egress"
    assert (egress_dir / "dhparam.pem").is_file()
    assert not (egress_dir / "mitmproxy").exists()


_CORE_WITHOUT_MITMPROXY = """
import sys
sys.modules["mitmproxy"] = None  # any import of mitmproxy now fails
import proxy.config, proxy.settings, proxy.worker, proxy.app
import proxy.egress, proxy.egress.config, proxy.egress.model, proxy.egress.compile
import proxy.egress.clients, proxy.egress.ca, proxy.egress.release, proxy.egress.errors
from click.testing import CliRunner
from proxy.cli import _register, cli
_register()
result = CliRunner().invoke(cli, ["egress", "serve", "--config", sys.argv[1]])
print(result.exit_code, result.output)
"""


def test_the_core_never_imports_mitmproxy(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("upstreams: {app: {url: 'http://127.0.0.1:9'}}\n")
    done = subprocess.run(
        [sys.executable, "-c", _CORE_WITHOUT_MITMPROXY, str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 ")
    assert "install the extra: pip install 'tokengate[egress]'" in done.stdout
