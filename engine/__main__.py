"""`python -m engine ...` is `simnet ...`: how plug-ins start the worker with a chosen Python."""

import sys

from .app.cli import main

sys.exit(main())
