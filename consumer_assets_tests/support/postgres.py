"""A real PostgreSQL server on loopback for the tests: Debian's `postgresql` package, a fresh cluster
in a temporary folder, TCP on 127.0.0.1 only, password (SCRAM) authentication.

PostgreSQL refuses to run as root: as root the cluster belongs to, and the server runs as, the
`postgres` system user that the Debian package creates; otherwise as the current user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from consumer_assets_tests.support.services import free_port, wait_until

INSTALL_HINT = "install Debian's postgresql (`make test` does, as root; else `sudo apt-get install -y postgresql`)"
SERVER_USER = "postgres"  # the system user of Debian's package, who runs the server when we are root


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    db_name: str
    log: Path

    def env(self) -> dict[str, str]:
        """The variables docs/deploy/dagster.yaml reads its database settings from."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": self.db_name,
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    def connect(self, db_name: str | None = None) -> Any:
        """A psycopg2 connection over TCP with the password, as Dagster connects."""
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=db_name or self.db_name,
            connect_timeout=5,
        )

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


def server_binaries() -> Path:
    """The bin folder of the newest PostgreSQL under /usr/lib/postgresql; fails the test if none."""
    found = glob.glob("/usr/lib/postgresql/*/bin/postgres")

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parts[-3]))

    if not found:
        pytest.fail(f"No PostgreSQL server under /usr/lib/postgresql/*/bin: {INSTALL_HINT}")
    return Path(max(found, key=version)).parent


@contextlib.contextmanager
def postgres_server(db_name: str = "dagster", timeout: float = 60) -> Iterator[PostgresServer]:
    """Create a cluster, start its server on a free loopback port, create `db_name`; on exit stop the
    server and remove the cluster."""
    bin_dir = server_binaries()
    as_root = os.geteuid() == 0
    # Not under pytest's tmp_path: as root that lies in a folder only root may enter.
    work = Path(tempfile.mkdtemp(prefix="consumer-assets-pg-"))
    data, log = work / "data", work / "server.log"
    user, password = "dagster", secrets.token_urlsafe(16)
    run_as: dict[str, Any] = {"user": SERVER_USER, "group": SERVER_USER} if as_root else {}
    server: subprocess.Popen | None = None
    try:
        (work / "password").write_text(password)
        if as_root:
            shutil.chown(work, SERVER_USER, SERVER_USER)
            shutil.chown(work / "password", SERVER_USER, SERVER_USER)
        initdb = [
            str(bin_dir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={work / 'password'}",
            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        ]  # fmt: skip
        done = subprocess.run(initdb, capture_output=True, text=True, cwd=work, **run_as)
        assert done.returncode == 0, f"initdb failed:\n{done.stdout}\n{done.stderr}"
        (work / "password").unlink()
        port = free_port()
        # TCP on loopback only, no Unix socket; durability off: a test's cluster is thrown away.
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        command = [str(bin_dir / "postgres"), "-D", str(data)]
        command += [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        with log.open("wb") as out:
            server = subprocess.Popen(
                command, cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **run_as
            )
        postgres = PostgresServer("127.0.0.1", port, user, password, db_name, log)

        def accepting() -> bool:
            assert server.poll() is None, f"postgres exited with {server.returncode}:\n{log.read_text()}"
            try:
                postgres.connect("postgres").close()
            except psycopg2.OperationalError:
                return False
            return True

        wait_until(accepting, timeout, f"PostgreSQL on 127.0.0.1:{port}")
        with contextlib.closing(postgres.connect("postgres")) as connection:
            connection.autocommit = True  # CREATE DATABASE runs outside a transaction
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{db_name}"')
        yield postgres
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(work, ignore_errors=True)


def stop(server: subprocess.Popen, timeout: float = 30) -> None:
    """Fast shutdown (SIGINT: end the sessions, then stop); SIGKILL if it has not stopped in time."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.pid, signal.SIGINT)
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
