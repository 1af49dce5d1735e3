"""Exit codes the kit promises to CI (pytest's own codes, plus one of the kit's)."""

EXIT_OK = 0  # every MUST passed (and every SHOULD, under --strict)
EXIT_CONTRACT_FAILURE = 1  # pytest's "tests failed": a behaviour of the contract is broken
EXIT_USAGE = 4  # pytest's usage error: bad option, bad binding, unknown build
EXIT_NO_KIMI = 6  # the build has no Kimi provider at all (one verdict, everything not applicable)
EXIT_UPSTREAM_UNAVAILABLE = 7  # live mode: nothing failed, but the live API could not answer some tests
EXIT_RECORD_REFUSED = 8  # --record refused to write (a cassette would have kept the key); nothing was written
