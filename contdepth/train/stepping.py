"""Step-count recipes: the steps per block a run trains and evaluates at, batch by batch.

* fixed (``steps_per_block``): every batch at ``s`` steps of size ``1/s`` per block;
* multi-resolution (``train_steps``, e.g. ``[1, 2, 4]``): each batch at a step count drawn uniformly
  from the set, evaluated at ``steps_per_block``;
* refinement (``refine_at``, e.g. ``[10, 20]``): ``s`` steps per block, doubled after each listed
  epoch (epochs 1-10 at ``s``, 11-20 at ``2s``, 21- at ``4s``), weights carried over: the same field
  under a finer grid (a depth-continuous field's knots stay; a blockwise field's block serves each of
  its finer steps, as Chang et al.'s copies of a block would before they are trained apart).

Each draw is a function of (seed, epoch, batch) alone, so a resumed run draws what the uninterrupted
one drew, with no generator state to save.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SEED_OFFSET = 2**62  # seeds are in (-2**62, 2**62); numpy's seed words must be >= 0


def check_recipe(
    steps_per_block: int, train_steps: Sequence[int] | None, refine_at: Sequence[int] | None, epochs: int
) -> None:
    """Raise ``ValueError`` (one line, the valid range named) for a bad step-count recipe."""
    if train_steps is not None:
        if isinstance(train_steps, (str, bytes)) or len(train_steps) == 0:
            raise ValueError(f"train_steps must be a non-empty set of step counts like 1,2,4, got {train_steps!r}")
        for s in train_steps:
            if isinstance(s, bool) or not isinstance(s, int) or s < 1:
                raise ValueError(f"train_steps must hold integers >= 1 (steps per block), got {list(train_steps)!r}")
        if len(set(train_steps)) != len(train_steps):
            raise ValueError(f"train_steps lists a step count twice: {list(train_steps)!r}")
    if refine_at is not None:
        if isinstance(refine_at, (str, bytes)) or len(refine_at) == 0:
            raise ValueError(f"refine_at must be a non-empty list of epochs like 10,20, got {refine_at!r}")
        for e in refine_at:
            if isinstance(e, bool) or not isinstance(e, int) or not 1 <= e < epochs:
                raise ValueError(f"refine_at must hold epochs in [1, epochs={epochs}), got {list(refine_at)!r}")
        if list(refine_at) != sorted(set(refine_at)):
            raise ValueError(f"refine_at must list distinct epochs in increasing order, got {list(refine_at)!r}")
    if train_steps is not None and refine_at is not None:
        raise ValueError("give train_steps (a random step count per batch) or refine_at (a schedule), not both")


def train_steps_at(
    steps_per_block: int,
    train_steps: Sequence[int] | None,
    refine_at: Sequence[int] | None,
    seed: int,
    epoch: int,
    batch: int,
) -> int:
    """Steps per block of batch ``batch`` (0-based) of epoch ``epoch`` (1-based)."""
    if train_steps:
        rng = np.random.default_rng([seed + SEED_OFFSET, epoch, batch])
        return int(train_steps[int(rng.integers(len(train_steps)))])
    return eval_steps_at(steps_per_block, refine_at, epoch)


def eval_steps_at(steps_per_block: int, refine_at: Sequence[int] | None, epoch: int) -> int:
    """Steps per block the net is evaluated at after epoch ``epoch`` (and trained at in it, without ``train_steps``)."""
    doublings = sum(1 for e in (refine_at or ()) if e < epoch)
    return steps_per_block * 2**doublings
