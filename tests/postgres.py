"""A throwaway PostgreSQL for the store tests, started by the test run itself.

``RAE_TEST_POSTGRES`` names a server to use instead. Otherwise, when PostgreSQL's ``initdb`` and ``pg_ctl`` are on
this machine (Debian's ``postgresql`` package, say), a private server is started in a temporary directory on a free
port of 127.0.0.1 and stopped when the run ends. With neither, the PostgreSQL variants of the store tests skip (and
fail under ``RAE_REQUIRE_POSTGRES=1``, as in CI).
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def binaries() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: on the PATH, else Debian's newest /usr/lib/postgresql/<n>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    return Path(versions[-1]) if versions and Path(versions[-1], "pg_ctl").exists() else None


@contextmanager
def throwaway_server() -> Iterator[str | None]:
    """The SQLAlchemy URL of a fresh server's ``postgres`` database (None if this machine cannot start one)."""
    bin_dir = binaries()
    if bin_dir is None:
        yield None
        return
    directory = Path(tempfile.mkdtemp(prefix="rae-postgres-"))
    data, port = directory / "data", _free_port()
    as_user = _as_postgres_user(directory)
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off"
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(directory / "server.log"), "-w", "-o", options, "start"],
            check=True, capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


def _as_postgres_user(directory: Path) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user, who owns the directory."""
    if os.geteuid() != 0:
        return []
    shutil.chown(directory, "postgres")
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
