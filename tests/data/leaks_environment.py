"""A test that leaves the process environment changed (the isolation check must name it).

Not collected by the self-test (not a test_*.py file): tests/test_isolation.py passes it
to the kit explicitly.
"""

import os


def test_leaves_a_variable_behind():
    os.environ["KIMI_KIT_LEAKED_BY_A_TEST"] = "1"
