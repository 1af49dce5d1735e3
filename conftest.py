"""The kit's tree: register the kit's pytest plugin.

From the checkout the plugin comes from here; installed with pip, also through the ``pytest11``
entry point of the same name, and pytest does not register it twice. Installed, this tree is the
package ``kimi_conformance_kit`` in site-packages and ``pytest --pyargs kimi_conformance_kit.suites``
runs it from any folder (the tree's pytest settings: kimi_conformance/kit_settings.py).
"""

pytest_plugins = ["kimi_conformance.plugin"]
