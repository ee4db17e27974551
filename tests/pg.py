"""A throw-away PostgreSQL server for the tests, on 127.0.0.1 with a password.

:func:`start` finds Debian's server binaries (``initdb``/``pg_ctl`` on PATH or under
``/usr/lib/postgresql/*/bin``), installs the ``postgresql`` package when they are missing and
this runs as root, initialises a cluster in a temporary folder (as the ``postgres`` system user
when running as root: ``initdb`` refuses root), starts it on a free loopback port with password
authentication only, and creates a database owned by a user with a random password.
:meth:`PostgresServer.stop` stops it and deletes the folder. ``tests/conftest.py`` wraps this in
the session fixture ``postgres``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Unavailable", "PostgresServer", "find_bin_dir", "start"]

SERVER_USER = "postgres"


class Unavailable(Exception):
    """PostgreSQL cannot be had on this machine (the reason says why)."""


@dataclass
class PostgresServer:
    """A running test server.

    Attributes:
        bin_dir: where ``pg_ctl`` is.
        base: the temporary folder (data directory, socket folder, log).
        port: the TCP port on 127.0.0.1.
        user, password, database: the application's login and database.
        run_as: the system user the server runs as (None: this one).
    """

    bin_dir: Path
    base: Path
    port: int
    user: str
    password: str
    database: str
    run_as: str | None

    @property
    def uri(self) -> str:
        """The SQLAlchemy URL of the application database (with the password)."""
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def uri_for(self, database: str) -> str:
        """The URL of another database of this server (same user and password)."""
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create one more database owned by the application user; return its URL."""
        import psycopg  # the driver is only needed once a server runs

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                             dbname=self.database, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri_for(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        _run(self.run_as, [str(self.bin_dir / "pg_ctl"), "-D", str(self.base / "data"), "-m", "fast", "-w",
                           "stop"], check=False)
        shutil.rmtree(self.base, ignore_errors=True)


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (the newest Debian version first), or None."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True):
        if Path(folder, "initdb").is_file() and Path(folder, "pg_ctl").is_file():
            return Path(folder)
    return None


def _version(folder: str) -> tuple[int, ...]:
    name = Path(folder).parent.name
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def _install() -> None:
    """``apt-get install postgresql`` (root only); raises :class:`Unavailable` when it fails."""
    if os.geteuid() != 0:
        raise Unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found and not root to install them: "
                          "apt-get install postgresql")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise Unavailable(f"`{' '.join(cmd)}` failed: {(proc.stderr or proc.stdout)[-500:]}")


def _server_user() -> str | None:
    """The system user to run the server as: None when not root, else ``postgres`` (created if absent)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
                       check=True, capture_output=True)
    return SERVER_USER


def _run(run_as: str | None, cmd: list[str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    full = ["runuser", "-u", run_as, "--", *cmd] if run_as else cmd
    proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, cwd="/")
    if check and proc.returncode != 0:
        raise Unavailable(f"`{' '.join(cmd)}` failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-1500:]}")
    return proc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(database: str = "ridelake", user: str = "ridelake_app") -> PostgresServer:
    """Initialise and start a server; create ``database`` owned by ``user`` with a random password.

    Raises:
        Unavailable: no server binaries and none can be installed, or the server does not start.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _install()
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise Unavailable("apt-get installed postgresql but no initdb/pg_ctl under /usr/lib/postgresql/*/bin")
    run_as = _server_user()
    base = Path(tempfile.mkdtemp(prefix="ridelake-pg-"))
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    admin_password = secrets.token_hex(16)
    password = "pw-" + secrets.token_hex(16)  # distinctive: the leak tests grep for it
    try:
        pwfile = base / "admin-password"
        pwfile.write_text(admin_password + "\n")
        if run_as:
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        _run(run_as, [str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", "postgres", "--pwfile", str(pwfile),
                      "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C"],
             timeout=300)
        pwfile.unlink()
        port = _free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={base} "
                   "-c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        _run(run_as, [str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "server.log"),
                      "-o", options, "-w", "-t", "120", "start"], timeout=180)
        server = PostgresServer(bin_dir, base, port, user, password, database, run_as)
        _create_app_user(server, admin_password)
        return server
    except BaseException:
        log = base / "server.log"
        tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
        _run(run_as, [str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(base, ignore_errors=True)
        if tail:
            raise Unavailable(f"the PostgreSQL server did not start: {tail}") from None
        raise


def _has_c_utf8() -> bool:
    return Path("/usr/lib/locale/C.utf8").exists() or Path("/usr/lib/locale/C.UTF-8").exists()


def _create_app_user(server: PostgresServer, admin_password: str) -> None:
    import psycopg  # the driver is only needed once a server runs

    with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password=admin_password,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {server.user} LOGIN CREATEDB PASSWORD '{server.password}'")
        conn.execute(f"CREATE DATABASE {server.database} OWNER {server.user}")
