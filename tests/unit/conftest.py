"""Shared unit-test fixtures: a throwaway redis-server per test on an ephemeral port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server child process that tests can stop and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 5.0) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        while True:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (right now)."""
    return free_port()


# --------------------------------------------------------------------------- PostgreSQL
# A real PostgreSQL 15 (Debian's `postgresql` package, installed by scripts/bootstrap.sh)
# for the log shipper's tests: one throwaway cluster per session (initdb into a temp dir,
# run as the `postgres` OS user, 127.0.0.1 on a free port, fsync off), and a fresh
# database with roles/timescaledb/files/schema.sql per test. The shipper connects as a
# role with only the grants the role timescaledb gives it (see pgcluster.SHIPPER_GRANTS),
# so the tests prove it needs no more; checks run as the superuser.

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "roles" / "timescaledb" / "files" / "schema.sql"
SHIPPER_ROLE = "nazbench_shipper"
SHIPPER_PASSWORD = "shipper-pw-7Qx9"  # a literal is fine in tests only


class PgDatabase:
    """One test's database: superuser ``dsn`` (for checks) and the shipper's ``shipper_dsn``."""

    def __init__(self, cluster, name: str) -> None:  # cluster: nazbench.testing.pgcluster.PgCluster
        self.cluster = cluster
        self.name = name
        self.dsn = cluster.dsn(name)
        self.shipper_dsn = cluster.dsn(name, SHIPPER_ROLE, SHIPPER_PASSWORD)

    def connect(self):
        """A superuser connection (autocommit) to this database."""
        import psycopg  # noqa: PLC0415 - only the PostgreSQL tests need psycopg

        return psycopg.connect(self.dsn, autocommit=True)

    def query(self, sql: str, params=None) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster for the whole session (nazbench.testing.pgcluster.PgCluster)."""
    from nazbench.testing.pgcluster import PgCluster  # noqa: PLC0415 - imports psycopg

    cluster = PgCluster(free_port())
    try:
        cluster.init()
        cluster.start()
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def postgres_db(postgres_server) -> Iterator[PgDatabase]:
    """A fresh database with schema.sql loaded and the restricted shipper role granted."""
    name = f"nazbench_{time.time_ns()}"
    postgres_server.create_database(name, SCHEMA_SQL.read_text())
    postgres_server.create_shipper_role(SHIPPER_ROLE, SHIPPER_PASSWORD, [name])
    yield PgDatabase(postgres_server, name)
    if postgres_server.postmaster_pid() is None:  # a test stopped it and failed
        postgres_server.start()
        postgres_server.wait_ready()
    with contextlib.suppress(Exception):
        postgres_server.drop_database(name)
