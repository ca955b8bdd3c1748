"""The Dockerfile: hadolint-clean, multi-stage from the lock, non-root, read-only ready."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import (
    DOCKERFILE,
    ROOT,
    Instruction,
    dockerfile_instructions,
    exec_form,
    hadolint_findings,
    run_probe,
    stages,
    status_server,
)

BLOCKING_LEVELS = {"error", "warning"}


def _instructions() -> list[Instruction]:
    return dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


def _runtime() -> list[Instruction]:
    return stages(_instructions())[-1]


def _one(group: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in group if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def test_hadolint_reports_nothing_at_warning_or_above() -> None:
    findings = hadolint_findings(DOCKERFILE, ROOT)
    blocking = [f for f in findings if f["level"] in BLOCKING_LEVELS]
    assert blocking == []


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    # The twin of the test above: the harness really reports warnings.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    findings = hadolint_findings(bad, tmp_path)
    codes = {f["code"] for f in findings if f["level"] in BLOCKING_LEVELS}
    assert {"DL3007", "DL3008"} <= codes


def test_base_image_is_pinned_by_tag_and_shared_by_both_stages() -> None:
    instructions = _instructions()
    arg = next(i for i in instructions if i.keyword == "ARG" and i.args.startswith("PYTHON_IMAGE="))
    image = arg.args.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.12[\w.-]*-slim[\w.-]*(@sha256:[0-9a-f]{64})?", image), image
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]


def _install_command() -> str:
    builder = stages(_instructions())[0]
    installs = [i.args for i in builder if i.keyword == "RUN" and "pip install" in i.args]
    assert len(installs) == 1
    return installs[0]


def test_builder_installs_from_the_lock_with_extras_only_when_asked() -> None:
    command = _install_command()
    match = re.search(r'pip install --no-cache-dir -c constraints\.txt "([^"]+)"', command)
    assert match, command
    assert "-e " not in command
    builder = stages(_instructions())[0]
    assert [i.args for i in builder if i.keyword == "ARG"] == ['EXTRAS=""']
    # The requirement the shell makes of it: the core by default, .[egress] on request.
    spec = match.group(1)
    for extras, want in (("", "."), ("egress", ".[egress]"), ("egress,dev", ".[egress,dev]")):
        done = subprocess.run(
            ["sh", "-c", f'printf %s "{spec}"'],
            env={"EXTRAS": extras, "PATH": os.environ["PATH"]},
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout == want


def test_builder_proves_the_relay_imports_when_built_in() -> None:
    command = _install_command()
    check = command.split("&& case", 1)[1]
    for extras, imports in (("", False), ("egress", True), ("dev,egress", True), ("dev", False)):
        script = "case" + check.replace("/opt/tokengate/bin/python", "echo")
        done = subprocess.run(
            ["sh", "-c", script],
            env={"EXTRAS": extras, "PATH": os.environ["PATH"]},
            capture_output=True,
            text=True,
            check=True,
        )
        assert ("import proxy.egress.server" in done.stdout) is imports, extras


def test_runtime_copies_only_the_venv_from_the_builder() -> None:
    copies = [i.args for i in _runtime() if i.keyword == "COPY"]
    assert copies == ["--from=builder /opt/tokengate /opt/tokengate"]


def test_runtime_runs_as_a_numeric_non_root_user() -> None:
    user = _one(_runtime(), "USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    # USER comes after every RUN: nothing in the final image runs as root at start.
    keywords = [i.keyword for i in _runtime()]
    assert "RUN" not in keywords[keywords.index("USER") :]


def test_runtime_is_ready_for_a_read_only_root() -> None:
    env = " ".join(i.args for i in _runtime() if i.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert "TMPDIR=/tmp" in env
    assert _one(_runtime(), "VOLUME").args == '["/var/lib/tokengate"]'


def test_ports_entrypoint_and_command() -> None:
    runtime = _runtime()
    assert _one(runtime, "EXPOSE").args.split() == ["8080", "8081"]
    assert exec_form(_one(runtime, "ENTRYPOINT").args) == ["tokengate"]
    assert exec_form(_one(runtime, "CMD").args) == [
        "serve",
        "--config",
        "/etc/tokengate/gateway.yaml",
    ]


def _healthcheck() -> list[str]:
    args = _one(_runtime(), "HEALTHCHECK").args
    assert "--interval=" in args
    assert "--timeout=" in args
    return exec_form(args.split("CMD", 1)[1].strip())


def test_healthcheck_asks_the_admin_listener_with_urllib() -> None:
    argv = _healthcheck()
    assert argv[:2] == ["python", "-c"]
    assert "urllib" in argv[2]
    assert "http://127.0.0.1:8081/.tokengate/healthz" in argv[2]


def _probe_at(port: int) -> list[str]:
    argv = _healthcheck()
    return [*argv[:2], argv[2].replace("127.0.0.1:8081", f"127.0.0.1:{port}")]


def test_healthcheck_passes_on_200_even_with_a_proxy_configured() -> None:
    with status_server("/.tokengate/healthz", 200) as port:
        env = {**os.environ, "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
        assert run_probe(_probe_at(port), env=env) == 0


@pytest.mark.parametrize("status", [503, 500])
def test_healthcheck_fails_on_an_unhealthy_answer(status: int) -> None:
    with status_server("/.tokengate/healthz", status) as port:
        assert run_probe(_probe_at(port)) != 0


def test_healthcheck_fails_when_nothing_listens() -> None:
    with status_server("/.tokengate/healthz", 200) as port:
        pass  # closed again: the port is free
    assert run_probe(_probe_at(port)) != 0
