"""A throwaway PostgreSQL server for the team-queue tests: ``initdb`` + ``pg_ctl`` in a temporary folder.

Real PostgreSQL, not a mock: the claim's ``FOR UPDATE SKIP LOCKED``, leases on the server's clock and
``ON CONFLICT`` are what the tests are about. It listens on a unix socket in its own folder only (no TCP
port to collide with anything), with ``fsync=off`` because a test database need not survive a power cut.
Run as root, the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).
Binaries come from the Debian ``postgresql`` package (``.ci/run`` installs it); :func:`find_binaries`
says why it cannot run when they are missing, and the fixture skips with that reason.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"  # the account Debian's package creates; used only when the tests run as root


def find_binaries() -> tuple[Path | None, str]:
    """The folder holding ``initdb`` and ``pg_ctl``, or None and why not (plain words for a skip reason)."""
    candidates = [os.path.dirname(p) for p in (shutil.which("pg_ctl"),) if p]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if all(os.access(os.path.join(folder, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(folder).resolve(), ""
    return (
        None,
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install the Debian 'postgresql' package",
    )


@dataclass
class PostgresServer:
    """A running server; :attr:`dsn` connects to its ``postgres`` database as its superuser."""

    bin_dir: Path
    root: Path  # data folder and socket live under it
    run_as: list[str]  # command prefix: runuser as the server user when we are root, else nothing

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def dsn(self) -> str:
        return f"host={self.socket_dir} dbname=postgres user={SERVER_USER}"

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.run_as, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr or result.stdout}"
            )

    def init(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SERVER_USER,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def start(self) -> None:
        options = (
            # fsync off only skips flushing to disk: a killed server (stop -m immediate) keeps every commit,
            # which synchronous_commit=off would not, so that stays on for the crash tests.
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' -c fsync=off "
            "-c full_page_writes=off -c max_connections=50"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``mode`` "immediate" is a crash as far as the database is concerned (no checkpoint)."""
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.root / "server.log").read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_server() -> PostgresServer:
    """Make and start a server in a fresh temporary folder (owned by the server user when root)."""
    bin_dir, why = find_binaries()
    if bin_dir is None:
        raise FileNotFoundError(why)
    root = Path(tempfile.mkdtemp(prefix="wd-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)  # KeyError: no such account; the caller reports it
        os.chmod(root, 0o755)
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", SERVER_USER, "--"]
    server = PostgresServer(bin_dir, root, run_as)
    (server.socket_dir).mkdir()
    if run_as:
        os.chown(server.socket_dir, pwd.getpwnam(SERVER_USER).pw_uid, -1)
    server.init()
    server.start()
    return server


def remove_server(server: PostgresServer) -> None:
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        server.stop("immediate")
    shutil.rmtree(server.root, ignore_errors=True)
