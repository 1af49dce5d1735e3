"""The variables of the user's shell that the kit holds back from a build: Letta's database settings.

``LETTA_PG_URI``, ``LETTA_PG_*``, ``LETTA_DATABASE*``, ``LETTA_DB_*``, ``LETTA_REDIS_*`` would point
the build under test at the user's database (or at a driver its environment lacks); Letta reads
them once, at import. Held back by the suites' plugin before the build is imported, and by a fork
server before its parent imports Letta for its children. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping

DATABASE_VARIABLES = re.compile(r"^LETTA_(PG_|DATABASE|DB_|REDIS_)")


def hold_back(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Remove Letta's database settings from ``environ``; returns them (name -> value) to put back later."""
    return {name: environ.pop(name) for name in sorted(environ) if DATABASE_VARIABLES.match(name)}
