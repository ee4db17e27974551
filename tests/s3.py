"""A throw-away S3 endpoint for the tests: moto's standalone server on 127.0.0.1.

:func:`start` runs ``python -m moto.server -H 127.0.0.1 -p <free port>`` (``moto[server]``, pinned
in requirements.txt), waits until it answers HTTP, and creates a bucket through pyarrow's
``S3FileSystem``. :meth:`S3Server.env` gives the settings a ridelake process needs to use it:
the endpoint (``RIDELAKE_S3_ENDPOINT``), a region, made-up credentials with a distinctive secret
(the leak tests look for it), and nothing that lets the AWS SDK look elsewhere (no instance
metadata, no profile files, no proxy). :meth:`S3Server.stop` ends the server (its objects live in
its memory only). ``tests/conftest.py`` wraps this in the session fixture ``s3``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Unavailable", "S3Server", "start"]


class Unavailable(Exception):
    """The S3 test server cannot be had (the reason says why)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class S3Server:
    """A running moto server.

    Attributes:
        process: the server process.
        port: its TCP port on 127.0.0.1.
        bucket: the bucket created for the tests.
        access_key, secret_key: the credentials the settings carry (moto accepts any).
        log: the server's output.
    """

    process: subprocess.Popen
    port: int
    bucket: str
    log: Path
    access_key: str = "ridelake-test"
    secret_key: str = field(default_factory=lambda: "s3-secret-" + secrets.token_hex(16))

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, prefix: str) -> str:
        """``s3://<bucket>/<prefix>``."""
        return f"s3://{self.bucket}/{prefix.strip('/')}"

    def env(self) -> dict[str, str]:
        """The environment variables that point ridelake (and the AWS SDK) at this server only."""
        return {
            "RIDELAKE_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def filesystem(self):  # -> pyarrow.fs.S3FileSystem
        """A pyarrow S3 file system on this server (for the tests' own checks)."""
        import pyarrow.fs as pafs  # heavy: only the tests that look into the bucket need it

        return pafs.S3FileSystem(endpoint_override=self.endpoint, region="us-east-1", access_key=self.access_key,
                                 secret_key=self.secret_key, allow_bucket_creation=True)

    def stop(self) -> None:
        """Stop the server and remove its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        self.log.unlink(missing_ok=True)


def start(bucket: str = "ridelake-test", timeout: float = 90.0) -> S3Server:
    """Start moto's server on a free loopback port and create ``bucket``.

    Raises:
        Unavailable: moto is not installed, or the server does not answer within ``timeout``.
    """
    try:
        import moto.server  # noqa: F401  (only to say clearly when moto[server] is missing)
    except ImportError as exc:
        raise Unavailable(f"moto[server] is not installed ({exc}): pip install -r requirements.txt") from None
    port = _free_port()
    log = Path(tempfile.mkstemp(prefix="ridelake-moto-", suffix=".log")[1])
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tempfile.gettempdir())
    server = S3Server(proc, port, bucket, log)
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    while True:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")[-1500:]
            server.stop()
            raise Unavailable(f"moto's server exited ({proc.returncode}): {text}")
        try:
            with opener.open(f"{server.endpoint}/moto-api/", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise Unavailable(f"moto's server did not answer on {server.endpoint} within {timeout:g} s") from None
            time.sleep(0.2)
    try:
        server.filesystem().create_dir(bucket)
    except BaseException:
        server.stop()
        raise
    return server
