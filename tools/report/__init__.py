"""Published numbers from the committed JSON: the marked blocks of the Markdown pages, written and checked.

A page marks a generated block with ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->``; the block
called NAME in :data:`tools.report.registry.BLOCKS` renders its Markdown from the committed result files.
``python -m tools.report`` rewrites every marked block; ``python -m tools.report --check`` changes nothing
and fails when a block differs from what the JSON gives, or when a result file is older than the code it
describes (see :mod:`tools.report.freshness`). It needs no data set, no torch and no network.
"""

from .check import check, rewrite

__all__ = ["check", "rewrite"]
