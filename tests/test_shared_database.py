"""The fork runner's shared database: which fork children may start from their server's seeded template.

A 0.16 suite run creates every table and seeds the default organization, user and Letta's base
tools (``letta_compat.prepare_database``). Under the fork runner the server makes that template
once from the reference build; a child whose build reloads a module that could change the tables
or the seeded rows must make its own (``matrix.shares_database``), or its verdict could be the
reference's database's rather than its own.
"""

from __future__ import annotations

import pytest

from kimi_conformance import builds, forkserver, letta_compat, matrix


@pytest.mark.parametrize(
    ("reload", "shared"),
    [
        ((), True),
        (("letta.schemas.providers.kimi",), True),
        (("letta.server.server",), True),
        (("letta.llm_api.kimi_client", "letta.server.server"), True),
        (("letta.orm.tool",), False),
        (("letta.services.tool_manager",), False),
        (("letta.server.db",), False),
        (("letta.functions.function_sets.base",), False),
        (("letta.schemas.tool",), False),
        (("letta.schemas.providers.kimi", "letta.services.user_manager"), False),
        (("letta.orms",), True),
    ],
    ids=["reference", "provider", "server", "client-and-server", "orm", "services", "db-layer", "base-tools",
         "tool-schema", "provider-and-manager", "name-prefix-only"],
)
def test_only_builds_that_cannot_change_the_seeded_database_share_it(reload, shared):
    """A build that reloads a module of the tables, the managers, the database layer, the base tools or
    their schemas seeds its own database; a provider, client or server change starts from the template.
    If this fails, ``matrix.SEEDED_DATABASE_MODULES`` lost or gained a package."""
    assert matrix.shares_database(reload) is shared


def test_the_plan_carries_the_rule(tmp_path):
    """``plan_changes`` (what ``fork_plan`` returns for a build's overlay) says whether the child shares the database."""
    for rel in ("letta/schemas/providers/kimi.py", "letta/services/tool_manager.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    provider = matrix.plan_changes("reference-0.16.8", tmp_path, ["letta/schemas/providers/kimi.py"], [], [])
    manager = matrix.plan_changes("reference-0.16.8", tmp_path, ["letta/services/tool_manager.py"], [], [])
    assert (provider.runner, provider.shared_database) == ("fork", True)
    assert (manager.runner, manager.shared_database) == ("fork", False)
    assert matrix.fork_plan(builds.get_build("reference-0.16.8")).shared_database is True
    assert matrix.fork_plan(builds.get_build("upstream-0.16.8")).shared_database is False


def test_the_template_reaches_a_run_only_through_the_fork_server():
    """The fork server and ``prepare_database`` agree on the variable; a test process of its own never has it
    (``prepare_database`` then makes its database as it always did)."""
    assert forkserver.SHARED_TEMPLATE_VARIABLE == letta_compat.SHARED_TEMPLATE_VARIABLE
    assert letta_compat.SHARED_TEMPLATE_VARIABLE not in matrix._kit_env()
