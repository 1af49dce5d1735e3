"""The kit's tree: register the kit's pytest plugin.

From the checkout the plugin comes from here; installed with pip, also through the ``pytest11``
entry point of the same name, and pytest does not register it twice. Installed, this tree is the
package ``kimi_conformance_kit`` in site-packages and ``pytest --pyargs kimi_conformance_kit.suites``
runs it from any folder: the suites import ``suites.helpers``, so this folder goes on ``sys.path``
(the tree's pytest settings: kimi_conformance/kit_settings.py).
"""

import sys
from pathlib import Path

KIT_TREE = str(Path(__file__).resolve().parent)
if KIT_TREE not in sys.path:
    sys.path.insert(0, KIT_TREE)

pytest_plugins = ["kimi_conformance.plugin"]
