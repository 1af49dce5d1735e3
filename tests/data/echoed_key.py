"""A test that puts what the live API echoed (the key, its base64) into every output a failure has.

Not collected by the self-test (not a test_*.py file): tests/test_leaks.py passes it to the
kit explicitly, in live mode against a key-echoing stand-in. It asks the live API for the
model list the way the kit's live transport does (with the key), then prints, logs and
fails with everything the answer carried (listed ids, headers, the body): the redactor must
mask the key in the failure text, captured output, log records, JUnit and Allure.
"""

import logging
import warnings

from kimi_conformance import live


def test_echoes_what_the_live_api_answered(pytestconfig):
    session = live.session_of(pytestconfig)
    assert session is not None, "live mode only"
    sent = session.upstream.send("GET", f"{session.base_url}/models", {"Accept": "application/json"}, authorization=session.upstream.bearer())
    answer = f"headers {dict(sent.response.headers)} body {sent.response.text}"
    print(f"stdout: {answer}")
    logging.getLogger("kimi.echo").warning("log record: %s", answer)
    warnings.warn(f"warning: {answer}", UserWarning, stacklevel=1)
    assert False, f"failure text: {answer}"
