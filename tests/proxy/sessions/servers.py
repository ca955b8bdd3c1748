"""Private Redis servers for tests that need topology or must break a server.

Each server is a real ``redis-server`` (the Debian package) on a free port with
its own directory, no persistence, bound to 127.0.0.1, and is stopped by the
fixture that started it. Sentinel is the same binary with ``--sentinel``.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.conftest import free_port

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
SERVICE = "tgmaster"


@dataclass
class RedisProcess:
    """One running redis-server (data node or Sentinel)."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Group:
    """Servers started together, stopped together (in reverse order)."""

    servers: list[RedisProcess] = field(default_factory=list)

    def stop(self) -> None:
        for s in reversed(self.servers):
            s.stop()


def start(directory: Path, port: int, *args: str, config: Path | None = None) -> RedisProcess:
    """Start redis-server on ``port`` in ``directory`` and wait until it answers PING."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"redis-{port}.log"
    cmd = [REDIS_SERVER] + ([str(config)] if config else [])
    cmd += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    cmd += ["--save", "", "--appendonly", "no", "--logfile", str(log), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = RedisProcess(port, proc, log)
    try:
        wait_until(lambda: _pings(server), what=f"redis-server on {port}", server=server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until(check, *, what: str, server: RedisProcess | None = None, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.proc.poll() is not None:
            raise AssertionError(f"{what} exited:\n{server.log.read_text(errors='replace')}")
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what}: not ready in {timeout} s")


def info(server: RedisProcess, section: str) -> dict[str, object]:
    """INFO of one section, parsed."""
    with server.client() as c:
        return dict(c.info(section))


def _acknowledged(master: RedisProcess) -> bool:
    """Whether the master counts the replica in WAIT yet (after its first ACK)."""
    with master.client() as c:
        c.set("tg:probe", "1")
        acks = int(c.execute_command("WAIT", 1, 200))
        c.delete("tg:probe")
        return acks >= 1


def _pings(server: RedisProcess) -> bool:
    try:
        with server.client() as c:
            return bool(c.ping())
    except (redis.RedisError, OSError):
        return False


def start_sentinel_group(
    directory: Path, group: Group
) -> tuple[RedisProcess, RedisProcess, RedisProcess]:
    """A master, one replica of it, and a Sentinel that monitors the master as ``tgmaster``.

    Every started server joins ``group`` at once, so the caller stops them even
    when a later step fails.
    """
    master = start(directory / "master", free_port(), "--repl-diskless-sync-delay", "0")
    group.servers.append(master)
    replica = start(
        directory / "replica", free_port(), "--replicaof", "127.0.0.1", str(master.port)
    )
    group.servers.append(replica)
    wait_until(lambda: info(replica, "replication").get("master_link_status") == "up", what="link")
    wait_until(lambda: _acknowledged(master), what="replica acknowledging writes")
    sentinel_dir = directory / "sentinel"
    sentinel_dir.mkdir(parents=True, exist_ok=True)
    conf = sentinel_dir / "sentinel.conf"
    conf.write_text(
        f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {SERVICE} 30000\n"
        f"sentinel failover-timeout {SERVICE} 60000\n"
    )
    port = free_port()
    log = sentinel_dir / "sentinel.log"
    proc = subprocess.Popen(
        [REDIS_SERVER, str(conf), "--sentinel", "--port", str(port), "--bind", "127.0.0.1",
         "--dir", str(sentinel_dir), "--logfile", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    sentinel = RedisProcess(port, proc, log)
    group.servers.append(sentinel)

    def _knows_master() -> bool:
        try:
            with sentinel.client() as c:
                addr = c.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE)
                return addr is not None and int(addr[1]) == master.port
        except (redis.RedisError, OSError):
            return False

    wait_until(_knows_master, what="sentinel", server=sentinel)
    return master, replica, sentinel


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 >= 65536:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise AssertionError("no free port pair for a cluster node")


def start_cluster(directory: Path, group: Group, nodes: int = 3) -> list[RedisProcess]:
    """``nodes`` masters with ``--cluster-enabled yes`` joined by ``redis-cli --cluster create``."""
    servers = group.servers
    for i in range(nodes):
        port = _cluster_port()
        servers.append(
            start(
                directory / f"node{i}", port, "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "5000",
            )
        )  # fmt: skip
    addresses = [f"127.0.0.1:{s.port}" for s in servers]
    subprocess.run(
        [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
        check=True,
        capture_output=True,
        timeout=30,
    )

    def _ok() -> bool:
        for s in servers:
            with s.client() as c:
                if c.cluster("INFO").get("cluster_state") != "ok":
                    return False
        return True

    wait_until(_ok, what="cluster state")
    return servers
