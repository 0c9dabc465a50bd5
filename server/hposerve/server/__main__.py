"""``python -m hposerve.server``: the service's commands (``serve``); ``hposerve`` has the lab's too."""

import sys

from hposerve.server._cli import main

sys.exit(main())
