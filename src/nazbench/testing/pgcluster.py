"""A throwaway PostgreSQL cluster for tests and benchmarks (Debian's ``postgresql`` 15).

Used by the shipper's test fixtures (``tests/unit/conftest.py``) and by
``benchmarks/shipper_throughput.py``, so both exercise a real server the same way.

The cluster lives in its own directory under the system temp dir (not pytest's
``tmp_path``: that is mode 0700 and owned by root, and the server must not run as root).
When the caller is root, ``initdb`` and ``pg_ctl`` run as the ``postgres`` OS user through
``runuser -u postgres --``; otherwise as the caller. The server listens on 127.0.0.1 only
(no Unix socket), on the given port, with password (scram) authentication for every TCP
connection, and durability switched off (``fsync=off``, ``synchronous_commit=off``):
the tests care about behaviour, not about surviving a power cut.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

PG_BINDIR_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")
SUPERUSER = "postgres"

# What the log shipper's database role needs, and nothing more (the role timescaledb
# grants the same): connect, temporary tables (the COPY staging table), INSERT on logs
# (no SELECT: the shipper never reads logs back), and its own position rows.
SHIPPER_GRANTS = """
REVOKE ALL ON DATABASE {database} FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role};
GRANT USAGE ON SCHEMA public TO {role};
GRANT INSERT ON logs TO {role};
GRANT SELECT, INSERT, UPDATE ON shipper_positions TO {role};
"""


def pg_bindir() -> Path:
    """Directory of ``initdb``/``pg_ctl``/``postgres`` (Debian keeps them off PATH)."""
    for candidate in PG_BINDIR_CANDIDATES:
        if Path(candidate, "postgres").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise FileNotFoundError("PostgreSQL server binaries not found (apt-get install postgresql)")


class PgCluster:
    """One PostgreSQL cluster: ``init()``, ``start()``, ``stop()``, ``crash()``, ``destroy()``."""

    def __init__(self, port: int, *, base_dir: str | None = None) -> None:
        self.port = port
        self.bindir = pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="nazbench-pg-", dir=base_dir))
        self.datadir = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.password = secrets.token_urlsafe(16)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            pw = pwd.getpwnam(SUPERUSER)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o700)

    # ------------------------------------------------------------------ commands

    def _run(self, argv: list[str], *, timeout: float = 60) -> str:
        if self._as_postgres:
            argv = ["runuser", "-u", SUPERUSER, "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"
                f"\n--- server log ---\n{self.log_tail()}"
            )
        return proc.stdout

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server log (for error messages)."""
        try:
            return self.logfile.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def init(self) -> None:
        """``initdb`` with the superuser's password and scram authentication over TCP."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
            pw = pwd.getpwnam(SUPERUSER)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        pwfile.chmod(0o600)
        try:
            self._run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, timeout: float = 30) -> None:
        """Start the server and wait until it accepts connections."""
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                "-c unix_socket_directories=''",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=50",
                "-c shared_buffers=128MB",
                "-c max_wal_size=1GB",
                "-c log_min_messages=warning",
            ]
        )
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
            ],
            timeout=timeout + 10,
        )

    def stop(self, mode: str = "fast", timeout: float = 30) -> None:
        """Stop the server (``fast``: roll back and disconnect clients; ``immediate``: crash)."""
        if not (self.datadir / "postmaster.pid").exists():
            return
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "stop",
                "-D",
                str(self.datadir),
                "-m",
                mode,
                "-w",
                "-t",
                str(int(timeout)),
            ],
            timeout=timeout + 10,
        )

    def destroy(self) -> None:
        """Stop the server (if running) and delete its directory."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ connecting

    def dsn(
        self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None
    ) -> str:
        """A libpq key=value DSN for ``user`` (the superuser's password by default)."""
        pw = self.password if password is None else password
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} "
            f"password={pw} connect_timeout=5"
        )

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until a superuser connection succeeds."""
        import psycopg  # noqa: PLC0415 - only the callers that need a server import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def create_database(self, name: str, schema_sql: str | None = None) -> None:
        """``CREATE DATABASE name`` and, when given, run ``schema_sql`` in it as its owner."""
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        if schema_sql:
            with psycopg.connect(self.dsn(name), autocommit=True) as conn:
                conn.execute(schema_sql)

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE name WITH (FORCE)`` (disconnects leftover clients)."""
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create_shipper_role(self, role: str, password: str, databases: list[str]) -> None:
        """A login role with exactly ``SHIPPER_GRANTS`` in each of ``databases``."""
        import psycopg  # noqa: PLC0415
        from psycopg import sql  # noqa: PLC0415

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
        for database in databases:
            with psycopg.connect(self.dsn(database), autocommit=True) as conn:
                conn.execute(SHIPPER_GRANTS.format(database=f'"{database}"', role=f'"{role}"'))

    def postmaster_pid(self) -> int | None:
        """PID of the running postmaster, from ``postmaster.pid``."""
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
