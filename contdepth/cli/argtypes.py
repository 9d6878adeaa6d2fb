"""Argument types of the subcommands' flags: each turns a word into a value or gives argparse's one-line error."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1, or argparse's one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0, or argparse's one-line error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def milestones(text: str) -> list[int]:
    """Epochs like ``80,120`` (commas or spaces), each >= 1."""
    try:
        values = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"milestones are epochs like '80,120', got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"milestones are positive epochs like '80,120', got {text!r}")
    return values


def step_counts(text: str) -> list[int]:
    """A set of steps per block like ``1,2,4`` (commas or spaces), each >= 1, none twice."""
    try:
        values = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected step counts like '1,2,4', got {text!r}") from None
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct step counts >= 1 like '1,2,4', got {text!r}")
    return values
