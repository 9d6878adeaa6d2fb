"""A context manager that runs torch on one intra-op thread and restores the previous setting.

The toy's tensors are small enough that thread start-up and contention on a shared CPU cost far
more than they save (measured: a 321x321 stencil update is ~20x slower on 2 busy threads).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
