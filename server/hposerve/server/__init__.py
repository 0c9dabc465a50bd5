"""hposerve server."""
