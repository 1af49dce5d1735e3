"""Where the kit's throw-away HOMEs and work folders go: memory (``/dev/shm``) when the machine has it.

Every suite run makes a private HOME (Letta's SQLite database, ``~/.letta``), a HOME per test,
and the fork runner a folder per fork server (its HOME, the seeded database template). On
disk each database commit and each folder removal is file-system work the run pays for; in
``/dev/shm`` (a tmpfs) it is memory. Only the location changes, never what is written.
"""

from __future__ import annotations

import os
import tempfile

MEMORY_DIR = "/dev/shm"
MIN_FREE_BYTES = 512 * 1024 * 1024  # a small tmpfs (a container's 64 MB default) stays unused


def scratch_root(candidate: str = MEMORY_DIR, min_free: int = MIN_FREE_BYTES) -> str | None:
    """``candidate`` when it is a writable folder with at least ``min_free`` bytes free, else None
    (``tempfile``'s default: TMPDIR, /tmp, ...)."""
    try:
        if not (os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK)):
            return None
        stat = os.statvfs(candidate)
    except OSError:
        return None
    return candidate if stat.f_bavail * stat.f_frsize >= min_free else None


def make_dir(prefix: str) -> str:
    """A new private folder (``tempfile.mkdtemp``) under ``scratch_root()``, or the default temp folder."""
    return tempfile.mkdtemp(prefix=prefix, dir=scratch_root(MEMORY_DIR, MIN_FREE_BYTES))
