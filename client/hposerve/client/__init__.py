"""hposerve thin client."""
