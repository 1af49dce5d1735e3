"""The pytest plugins the suites use, registered under their entry-point names.

The launcher runs the suites with pytest's entry-point autoload off (reading the
metadata of a Letta environment's ~250 distributions costs about a second per run) and
loads this module with ``-p``. Registering each plugin under the name its entry point
gives keeps what other plugins look for by name working (``hasplugin("xdist")``,
``hasplugin("allure_pytest")``, ``-p no:<name>``).
"""

from __future__ import annotations

import importlib

PLUGINS = {
    "asyncio": "pytest_asyncio.plugin",
    "xdist": "xdist.plugin",
    "xdist.looponfail": "xdist.looponfail",
    "allure_pytest": "allure_pytest.plugin",
    "respx": "respx.plugin",
    "randomly": "pytest_randomly",  # blocked by the kit's addopts (-p no:randomly) unless asked for
}


def pytest_addoption(parser, pluginmanager) -> None:
    """Called as soon as this module is registered, before options are parsed."""
    for name, module in PLUGINS.items():
        if pluginmanager.is_blocked(name) or pluginmanager.get_plugin(name) is not None:
            continue
        try:
            plugin = importlib.import_module(module)
        except ImportError:  # not installed in this environment: pytest says so if an option needs it
            continue
        if not pluginmanager.is_registered(plugin):
            pluginmanager.register(plugin, name)
