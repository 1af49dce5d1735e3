"""Each started 0.16 server gets a fresh copy of the seeded database, while the kit keeps one engine.

``letta_compat.fresh_database`` (called by every ``start_server``) replaces the previous
server's copy and disposes the engine's pooled connections, but keeps the engine itself for its
compiled-statement cache (issue 17: about a third of a 0.16 start's SQL compilations). Keeping it
must never let one server's rows reach the next: each test judges a fresh deployment.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kimi_conformance import builds

KIT_ROOT = Path(__file__).resolve().parent.parent

_IN_BUILD = r"""
import asyncio, json, sys
from pathlib import Path
from sqlalchemy import text
from kimi_conformance import letta_compat
from letta.server.server import SyncServer
from letta.server import db

letta_compat.prepare_database(Path(sys.argv[1]), SyncServer)

async def count_probe_tables():
    async with db.async_session_factory() as session:
        return (await session.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'kit_probe'"))).scalar()

async def main():
    await letta_compat.fresh_database()
    first, first_seen = letta_compat._KIT_ENGINE["current"], db.engine
    async with db.async_session_factory() as session:
        await session.execute(text("CREATE TABLE kit_probe (x INTEGER)"))
        await session.execute(text("INSERT INTO kit_probe VALUES (1)"))
        await session.commit()
    written = await count_probe_tables()
    await letta_compat.fresh_database()
    second, second_seen = letta_compat._KIT_ENGINE["current"], db.engine
    after = await count_probe_tables()
    await letta_compat.close_database()
    print("RESULT " + json.dumps({"written": written, "after_next_start": after, "same_engine": first is second,
                                  "closed": "current" not in letta_compat._KIT_ENGINE,
                                  "build_sees_a_new_engine": first_seen is not second_seen,
                                  "compiled_cache_shared": first_seen.sync_engine._compiled_cache is second_seen.sync_engine._compiled_cache}))

asyncio.run(main())
"""


def test_a_later_start_sees_none_of_an_earlier_servers_rows(tmp_path):
    """Promise: every started server of a 0.16 run begins on the seeded template, whatever the
    previous server wrote; the kit's one engine is kept between starts and closed at the end.
    If this fails, ``letta_compat.fresh_database`` no longer disposes the pool before replacing the
    file (a pooled connection still reads the old copy) or makes a new engine per start again; or the
    build's ``letta.server.db.engine`` is the same object at two starts (state a build keys on its
    engine, e.g. fixtures/variants/fresh-eyes-kimi-models-synced-once-per-database.toml, would reach
    the next server) or no longer shares the kept engine's compiled-statement cache."""
    reference = builds.get_build("reference-0.16.8")
    if not reference.python.exists() or not reference.overlay_dir.is_dir():
        pytest.skip(f"{reference.name} is not made (python3 -m kimi_conformance build {reference.name})")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETTA_")}
    env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=os.pathsep.join([*reference.pythonpath(), str(KIT_ROOT)]))
    done = subprocess.run([str(reference.python), "-c", _IN_BUILD, str(home)], cwd=KIT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result == {"written": 1, "after_next_start": 0, "same_engine": True, "closed": True,
                      "build_sees_a_new_engine": True, "compiled_cache_shared": True}
