"""The servers a gateway benchmark measures, each as a command line and its config files.

Every proxy gets the same backend and is configured as a plain pass-through:
no TLS, no caching, no access log unless said (tokengate runs both ways because
users run it with its access log on). Config files are written to a private
work directory; nothing touches system paths.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one target and how to tell it is ready."""

    name: str
    argv: list[str]
    base_url: str  # where wrk sends requests
    ready: list[str]  # URLs that must answer 200 before measuring
    label: str  # one line for the report


def demo_backend(port: int, data_dir: Path) -> Launch:
    """The demo app itself, measured directly: the ceiling every proxy is compared with."""
    return Launch(
        name="direct",
        argv=[
            sys.executable,
            "-m",
            "demo_backend",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        base_url=f"http://127.0.0.1:{port}",
        ready=[f"http://127.0.0.1:{port}/healthz"],
        label="demo backend, no proxy",
    )


NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream demo {{
        server 127.0.0.1:{upstream};
        keepalive 128;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://demo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def nginx(port: int, upstream_port: int, workdir: Path) -> Launch:
    """nginx, one worker, keep-alive upstream pool, as the current user."""
    d = workdir / "nginx"
    d.mkdir(parents=True, exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=d, port=port, upstream=upstream_port))
    return Launch(
        name="nginx",
        argv=["nginx", "-p", str(d), "-e", str(d / "error.log"), "-c", str(conf)],
        base_url=f"http://127.0.0.1:{port}",
        ready=[f"http://127.0.0.1:{port}/healthz"],
        label="nginx reverse proxy, 1 worker, upstream keepalive",
    )


def ref_proxy(port: int, upstream_port: int) -> Launch:
    """bench/ref_proxy.py: the minimal aiohttp proxy, the floor for Python."""
    return Launch(
        name="ref-aiohttp",
        argv=[
            sys.executable,
            str(REPO / "bench" / "ref_proxy.py"),
            "--port",
            str(port),
            "--upstream",
            f"http://127.0.0.1:{upstream_port}",
        ],
        base_url=f"http://127.0.0.1:{port}",
        ready=[f"http://127.0.0.1:{port}/healthz"],
        label="bench/ref_proxy.py, aiohttp + uvloop, 1 process",
    )


GATEWAY_YAML = """\
listen: {{host: 127.0.0.1, port: {port}}}
admin: {{host: 127.0.0.1, port: {admin}}}
workers: {workers}
data_dir: {data}
logging: {{level: {level}, access_log: {access_log}}}
reload: {{watch: false}}
upstreams:
  demo: {{url: "http://127.0.0.1:{upstream}"}}
policies: ["policies/*.yaml"]
"""

ROUTES_YAML = """\
routes:
  - name: all
    match: {prefix: /}
    allow_unauthenticated: true
"""


def tokengate(
    port: int, admin_port: int, upstream_port: int, workdir: Path, *, workers: int, access_log: bool
) -> Launch:
    """``tokengate serve`` with one pass-through route (no field rules: bodies stream).

    With the access log: level info and ``access_log: true`` (the defaults).
    Without: ``access_log: false`` and level warning; the level is set too because
    the access log is written at info and, in this version, ``access_log: false``
    alone does not stop it. Log lines go to the server's log file.
    """
    name = f"tokengate-{workers}w" + ("" if access_log else "-nolog")
    d = workdir / name
    (d / "policies").mkdir(parents=True, exist_ok=True)
    (d / "data").mkdir(exist_ok=True)
    (d / "gateway.yaml").write_text(
        GATEWAY_YAML.format(
            port=port,
            admin=admin_port,
            workers=workers,
            data=d / "data",
            access_log="true" if access_log else "false",
            level="info" if access_log else "warning",
            upstream=upstream_port,
        )
    )
    (d / "policies" / "routes.yaml").write_text(ROUTES_YAML)
    log = "level info, access log on" if access_log else "level warning, access log off"
    return Launch(
        name=name,
        argv=[
            str(VENV_BIN / "tokengate"),
            "serve",
            "--config",
            str(d / "gateway.yaml"),
            "--workers",
            str(workers),
        ],
        base_url=f"http://127.0.0.1:{port}",
        ready=[
            f"http://127.0.0.1:{admin_port}/.tokengate/healthz",
            f"http://127.0.0.1:{port}/healthz",
        ],
        label=f"tokengate serve, passthrough route, {workers} worker(s), {log}",
    )


def mitmdump(port: int, upstream_port: int, workdir: Path) -> Launch:
    """mitmdump in reverse-proxy mode, quiet, with a private confdir (its CA stays in workdir)."""
    conf = workdir / "mitmproxy"
    conf.mkdir(parents=True, exist_ok=True)
    return Launch(
        name="mitmdump",
        argv=[
            str(VENV_BIN / "mitmdump"),
            "--mode",
            f"reverse:http://127.0.0.1:{upstream_port}",
            "--listen-host",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
            "--set",
            f"confdir={conf}",
        ],
        base_url=f"http://127.0.0.1:{port}",
        ready=[f"http://127.0.0.1:{port}/healthz"],
        label="mitmdump --mode reverse, quiet",
    )
