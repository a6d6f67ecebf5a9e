"""The site's own web servers, started as `make run` and `make dev` start them, against the
tests' database and Redis; a TCP gate that plays a service going away."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragsite.embedded import free_port
from ragsite.launch import web_command

BASE_DIR = Path(__file__).resolve().parents[1]


@contextmanager
def site_server(
    kind: str, *, database_url: str, redis_url: str, log: Path, workers: int | None = None, **env: str
) -> Iterator[int]:
    """`kind`: "gunicorn" (make run) or "runserver" (make dev). Yields the port once /healthz answers."""
    port = free_port()
    command = web_command(f"127.0.0.1:{port}", dev=kind == "runserver", workers=workers)
    if kind == "runserver":
        command.append("--noreload")
    environment = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "ragsite.settings", "DATABASE_URL": database_url,
        "REDIS_URL": redis_url, "SECRET_KEY": "site-server-test-" + "k" * 40,
        "DEBUG": "1" if kind == "runserver" else "0",
        "SECURE_SSL_REDIRECT": "0", "SECURE_COOKIES": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "EMBEDDING_PROVIDER": "openai", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", **env,
    }  # fmt: skip
    if kind == "gunicorn":  # what collectstatic gave make run
        static_root = log.parent / "static-root"
        subprocess.run([*command[:1], str(BASE_DIR / "manage.py"), "collectstatic", "--noinput", "-v0"],
                       env={**environment, "STATIC_ROOT": str(static_root)}, check=True, cwd=BASE_DIR)  # fmt: skip
        environment["STATIC_ROOT"] = str(static_root)
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=BASE_DIR, env=environment, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(30)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


class Gate:
    """A loopback TCP forwarder to a real service that a test can shut and open again: the
    service's clients see what they would see if the service went away (connections
    reset, new ones refused) while the service itself keeps running for the rest of the
    suite."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        """`target`: a host and port, or a Unix socket's path."""
        self.target = target
        self.port = free_port()
        self._open = threading.Event()
        self._open.set()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def shut(self) -> None:
        self._open.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for end in pair:
                _hang_up(end)

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.shut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()  # refused, as by a service that is down
                continue
            try:
                upstream = self._connect()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _connect(self) -> socket.socket:
        if isinstance(self.target, tuple):
            return socket.create_connection(self.target)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.target)
        return upstream

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            _hang_up(end)


def _hang_up(end: socket.socket) -> None:
    """Shut the connection down before closing: a bare close() does not wake a thread
    blocked reading it, and the other side would never learn it ended."""
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        end.close()
