"""The lab, built on the client: built-in tasks, the comparison runner and its reports, the demo
and the bench. Installed with ``pip install "hposerve[lab]"``; the service never imports it."""
