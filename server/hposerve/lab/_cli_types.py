"""Argument types shared by the lab's commands."""

from __future__ import annotations

import argparse

__all__ = ["names", "positive_int"]


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def names(text: str) -> list[str]:
    """An argparse type: a comma-separated list of at least one name."""
    found = [n.strip() for n in text.split(",") if n.strip()]
    if not found:
        raise argparse.ArgumentTypeError("give at least one name")
    return found
