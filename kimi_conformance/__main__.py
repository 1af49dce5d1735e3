import sys

from kimi_conformance.cli import main

sys.exit(main())
