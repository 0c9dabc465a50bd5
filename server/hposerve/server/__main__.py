"""``python -m hposerve.server`` is the ``hposerve`` command."""

import sys

from hposerve.server._cli import main

sys.exit(main())
