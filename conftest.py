"""Running the kit from its checkout: register the kit's pytest plugin.

(Installed with pip, the plugin comes through the ``pytest11`` entry point of the
same name, and pytest does not register it twice.)
"""

pytest_plugins = ["kimi_conformance.plugin"]
