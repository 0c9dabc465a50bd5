import sys

from hposerve.cli import main

sys.exit(main())
