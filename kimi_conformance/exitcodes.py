"""Exit codes the kit promises to CI: one table, used by the launcher (cli.py, builds.py) and the plugin.

======  ==============================  =====================================================
code    name                            meaning
======  ==============================  =====================================================
0       EXIT_OK                         every MUST passed (and every SHOULD, under --strict)
1       EXIT_CONTRACT_FAILURE           the build's Kimi code broke a promise -- and only that
4       EXIT_USAGE                      anything that is not the build's Kimi code: a bad option
                                        or path, no interpreter, no pytest, Letta (or one of its
                                        own dependencies) not importable, an unusable cassette,
                                        KIMI_KIT_BUILDS unusable, a build that cannot be made.
                                        One line says which; no test ran, nothing was written.
5       EXIT_UNTESTED                   no behaviour was checked (everything deselected)
6       EXIT_NO_KIMI                    the build has no Kimi provider at all
7       EXIT_UPSTREAM_UNAVAILABLE       live mode: the live API could not answer some tests
8       EXIT_RECORD_REFUSED             --record refused to write (a cassette would keep the key)
======  ==============================  =====================================================

``python -m kimi_conformance --help`` prints this table.
"""

EXIT_OK = 0  # every MUST passed (and every SHOULD, under --strict)
EXIT_CONTRACT_FAILURE = 1  # pytest's "tests failed": a behaviour of the contract is broken
EXIT_USAGE = 4  # pytest's usage error: bad option, bad path, bad environment, unknown build
EXIT_UNTESTED = 5  # pytest's "no tests collected": no behaviour was checked
EXIT_NO_KIMI = 6  # the build has no Kimi provider at all (one verdict, everything not applicable)
EXIT_UPSTREAM_UNAVAILABLE = 7  # live mode: nothing failed, but the live API could not answer some tests
EXIT_RECORD_REFUSED = 8  # --record refused to write (a cassette would have kept the key); nothing was written

TABLE = {
    EXIT_OK: "conformant",
    EXIT_CONTRACT_FAILURE: "the build's Kimi code broke a promise of the contract",
    EXIT_USAGE: "bad option, path, input or environment (one line says which; no test ran)",
    EXIT_UNTESTED: "untested: no behaviour was checked",
    EXIT_NO_KIMI: "the build has no Kimi provider",
    EXIT_UPSTREAM_UNAVAILABLE: "live mode: the live API could not answer",
    EXIT_RECORD_REFUSED: "--record refused to write",
}


def describe() -> str:
    """The table as lines for ``--help``."""
    return "\n".join(f"  {code}  {meaning}" for code, meaning in TABLE.items())
