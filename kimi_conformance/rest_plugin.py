"""The REST suite's options and selection (registered by ``kimi_conformance.plugin``).

The black-box suite (``suites/rest/``, marker ``rest``) starts ``letta server`` processes,
so it is opt-in: its tests run when the marker expression names ``rest`` (``-m rest``),
when a path of it is given (``suites/rest``), or with ``--letta-url``; otherwise they are
deselected and REST-* stay ``not-applicable``.

``--letta-url URL`` points the suite at a server someone else started. The kit still runs
the Moonshot stand-in (on ``--standin-port``, else a free port) and prints the
``KIMI_BASE_URL`` / ``KIMI_API_KEY`` that server must run with; what it cannot set up from
outside (a second server with the disabling flag) is skipped, saying why. A URL where no
Letta server answers is one usage error naming it.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from kimi_conformance.letta_process import HEALTH_PATH, free_port

MARKER = "rest"
# The key the stand-in accepts and the started servers carry: a deliberately fake one.
STANDIN_API_KEY = "sk-kit-rest-standin-kimi-0123456789"
DEFAULT_STARTUP_TIMEOUT = 120.0
URL_CHECK_TIMEOUT = 5.0
_STATE = pytest.StashKey["RestOptions"]()


@dataclass
class RestOptions:
    letta_url: str | None  # a server someone else started, or None: the kit starts its own
    standin_port: int  # the stand-in's port with --letta-url (the kit's own servers get free ones)
    workdir: Path | None  # where servers keep HOME, logs and pid files (None: a pytest temp dir)
    startup_timeout: float

    @property
    def standin_url(self) -> str:
        return f"http://127.0.0.1:{self.standin_port}/v1"


def options(config: pytest.Config) -> RestOptions:
    return config.stash[_STATE]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kimi-conformance-rest", "Kimi provider conformance: black-box REST suite (-m rest)")
    group.addoption("--letta-url", dest="kimi_letta_url", metavar="URL", default=None,
                    help="run the REST suite against this running Letta server instead of starting one")
    group.addoption("--standin-port", dest="kimi_standin_port", metavar="PORT", type=int, default=None,
                    help="with --letta-url: loopback port of the kit's Moonshot stand-in (default 0: a free one)")
    group.addoption("--rest-workdir", dest="kimi_rest_workdir", metavar="DIR", default=None,
                    help="folder for the started servers' HOME, logs and pid files (default: a pytest temp dir)")
    group.addoption("--rest-startup-timeout", dest="kimi_rest_startup_timeout", metavar="SECONDS", type=float,
                    default=DEFAULT_STARTUP_TIMEOUT, help=f"how long the started servers may take to answer their health check (default {DEFAULT_STARTUP_TIMEOUT:g})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: black-box REST suite against a running letta server (opt-in: -m {MARKER}, or --letta-url)")
    port = config.getoption("kimi_standin_port")
    if port is not None and not 0 <= port <= 65535:
        raise pytest.UsageError(f"--standin-port must be between 0 (a free port) and 65535, not {port}")
    timeout = config.getoption("kimi_rest_startup_timeout")
    if timeout <= 0:
        raise pytest.UsageError(f"--rest-startup-timeout must be a positive number of seconds, not {timeout:g}")
    workdir = config.getoption("kimi_rest_workdir")
    config.stash[_STATE] = RestOptions(
        letta_url=_checked_url(config.getoption("kimi_letta_url")),
        standin_port=port or free_port(),
        workdir=Path(workdir).resolve() if workdir else None,
        startup_timeout=timeout,
    )


def _checked_url(url: str | None) -> str | None:
    """The server's base URL (no trailing ``/`` or ``/v1``), once its health endpoint answers."""
    if url is None:
        return None
    base = re.sub(r"(/v1)?/*$", "", url.strip())
    if not re.match(r"^https?://[^/\s]+$", base):
        raise pytest.UsageError(f"--letta-url {url}: not the http(s) URL of a Letta server (e.g. http://127.0.0.1:8283)")
    try:
        with urllib.request.urlopen(base + HEALTH_PATH, timeout=URL_CHECK_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise pytest.UsageError(f"--letta-url {url}: no Letta server answers at {base}{HEALTH_PATH} ({getattr(e, 'reason', e)})") from None
    if status != 200:
        raise pytest.UsageError(f"--letta-url {url}: {base}{HEALTH_PATH} answered HTTP {status}, not a healthy Letta server")
    return base


def _named_explicitly(config: pytest.Config, item: pytest.Item) -> bool:
    """True when a command-line path (suites/rest, a file of it, a test id) contains the item."""
    item_path = Path(item.path).resolve()
    for arg in config.args:
        target = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if target != config.rootpath.resolve() and (item_path == target or target in item_path.parents) and "rest" in target.parts:
            return True
    return False


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the REST suite unless it was asked for (see the module docstring)."""
    if options(config).letta_url or re.search(rf"\b{MARKER}\b", config.option.markexpr or ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker(MARKER) and not _named_explicitly(config, item) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def external_setup_lines(config: pytest.Config) -> list[str]:
    """What a server given with --letta-url must run with (printed in the terminal summary)."""
    opts = options(config)
    if not opts.letta_url:
        return []
    from kimi_conformance import plugin

    binding = plugin.state(config).binding
    key_env, url_env = (binding.api_key_env, binding.base_url_env) if binding else ("KIMI_API_KEY", "KIMI_BASE_URL")
    return [
        f"--letta-url {opts.letta_url}: the kit's Moonshot stand-in was {opts.standin_url}",
        f"start that server with {url_env}={opts.standin_url} {key_env}={STANDIN_API_KEY}",
        "(a test key; pass --standin-port so that the URL stays the same between runs)",
    ]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    lines = external_setup_lines(config)
    if lines and not hasattr(config, "workerinput"):
        terminalreporter.section("REST suite against a server the kit did not start")
        for line in lines:
            terminalreporter.write_line(line)
