"""The ``letta server`` process the REST suite starts: the build's own command line, made hermetic.

    python -m kimi_conformance.serve_letta --parent-pid PID server --host 127.0.0.1 --port PORT

Runs ``letta.main:app`` (what the ``letta`` console script runs) with the arguments after
the options, after three things a test server needs:

* it dies with the kit: the kernel sends it SIGTERM when the process that started it
  exits (Linux), and it refuses to start if that process is already gone;
* it never reaches the outside: a connection or DNS lookup to anything but loopback is
  refused (Letta's optional downloads and telemetry fail fast) and named once on stderr,
  which is the server's log;
* on a build whose database layer only speaks Postgres (0.16) and no Postgres is
  configured, the database is SQLite under ``$HOME`` (the same shim as the in-process
  suites, ``letta_compat.use_sqlite_if_postgres_only``).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import signal
import socket
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1
LOOPBACK_NAMES = ("localhost", "::1", "")


def is_loopback(host: object) -> bool:
    name = host.decode() if isinstance(host, bytes) else str(host)
    return name in LOOPBACK_NAMES or name.startswith("127.")


def die_with_parent(parent_pid: int) -> None:
    """SIGTERM when the starting process exits; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:
        sys.exit(f"serve_letta: the process that started this server ({parent_pid}) is gone")


def refuse_outside_connections() -> None:
    """Only loopback connections and lookups; each refused destination is named once on stderr."""
    named: set[str] = set()

    def refuse(what: str) -> None:
        if what not in named:
            named.add(what)
            print(f"[kimi-kit] refused {what}: the REST suite's server stays on loopback", file=sys.stderr, flush=True)

    original_connect, original_connect_ex, original_getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def outside(address) -> bool:
        return not isinstance(address, (str, bytes)) and not is_loopback(address[0])

    def connect(sock, address):
        if outside(address):
            refuse(f"connection to {address[0]}:{address[1]}")
            raise ConnectionRefusedError(f"[kimi-kit] connection to {address!r} refused (offline test server)")
        return original_connect(sock, address)

    def connect_ex(sock, address):
        if outside(address):
            refuse(f"connection to {address[0]}:{address[1]}")
            return 111  # ECONNREFUSED
        return original_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not is_loopback(host):
            refuse(f"DNS lookup of {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"[kimi-kit] DNS lookup of {host} refused (offline test server)")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kimi_conformance.serve_letta", description=__doc__.splitlines()[0])
    parser.add_argument("--parent-pid", type=int, required=True, help="the kit process this server must not outlive")
    args, letta_args = parser.parse_known_args(argv)
    die_with_parent(args.parent_pid)
    refuse_outside_connections()
    home = Path.home()
    (home / ".letta").mkdir(parents=True, exist_ok=True)
    from kimi_conformance import letta_compat

    if letta_compat.use_sqlite_if_postgres_only(home):
        print(f"[kimi-kit] Postgres-only database layer: using SQLite at {home / 'letta-kit.db'}", file=sys.stderr, flush=True)
    from letta.main import app

    sys.argv = ["letta", *letta_args]
    app()


if __name__ == "__main__":
    main()
