"""``python -m hposerve.server``: the service's commands (``serve``).

The ``hposerve`` command has these and, where the lab is installed, the lab's.
"""

import sys

from hposerve.server._cli import main

sys.exit(main())
