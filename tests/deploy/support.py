"""Helpers for the deployment tests: the repository's files, parsed once per call."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S_DIR = ROOT / "deploy" / "kubernetes"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its continuation lines joined."""

    keyword: str
    args: str
    line: int


def dockerfile_instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped, ``\\`` continuations joined."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(p for p in pending if p)
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each group starts with its FROM)."""
    groups: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            groups.append([])
        if groups:
            groups[-1].append(ins)
    return groups


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form instruction (``CMD [...]``)."""
    value = json.loads(args)
    assert isinstance(value, list)
    return [str(v) for v in value]


def manifests() -> list[tuple[Path, dict[str, object]]]:
    """Every Kubernetes object in deploy/kubernetes/*.yaml, with its file."""
    found: list[tuple[Path, dict[str, object]]] = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                assert isinstance(doc, dict), path
                found.append((path, doc))
    return found


def only(kind: str) -> dict[str, object]:
    """The single object of ``kind``."""
    objects = [doc for _, doc in manifests() if doc["kind"] == kind]
    assert len(objects) == 1, f"expected one {kind}, found {len(objects)}"
    return objects[0]


def hadolint_findings(dockerfile: Path, cwd: Path) -> list[dict[str, object]]:
    """hadolint's findings (JSON) for ``dockerfile``; the binary next to this interpreter."""
    binary = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(binary), "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    findings = json.loads(result.stdout or "[]")
    assert isinstance(findings, list)
    return findings


class _StatusHandler(BaseHTTPRequestHandler):
    status = 200
    path_ok = "/"

    def do_GET(self) -> None:
        code = self.status if self.path == self.path_ok else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def status_server(path: str, status: int) -> Iterator[int]:
    """A loopback HTTP server answering ``status`` on ``path`` (404 elsewhere); yields its port."""
    handler = type("Handler", (_StatusHandler,), {"status": status, "path_ok": path})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="status-server", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_probe(argv: list[str], *, env: dict[str, str] | None = None) -> int:
    """Run a probe command whose first word is ``python`` with this interpreter; its exit code."""
    assert argv[0] == "python", argv
    result = subprocess.run(
        [sys.executable, *argv[1:]], capture_output=True, timeout=30, check=False, env=env
    )
    return result.returncode


_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")
_B64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}")


def secret_looking(text: str) -> list[str]:
    """Strings in ``text`` that look like key material: PEM blocks, long hex, long base64."""
    hits = re.findall(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text)
    hits += _HEX.findall(text)
    for candidate in _B64.findall(text):
        if (
            re.search(r"[a-z]", candidate)
            and re.search(r"[A-Z]", candidate)
            and re.search(r"[0-9]", candidate)
        ):
            hits.append(candidate)
    return hits
