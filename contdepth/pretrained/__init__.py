"""Trained weights by name: the nets the project ships, as ``model.tag``, and loading them.

>>> import contdepth as cd
>>> cd.models.list_models(pretrained=True)                          # doctest: +SKIP
['preact_resnet20.cifar10_cpu_s0', 'preact_resnet20.cifar10_cpu_s1', ...]
>>> net = cd.models.get("lm_resnet20", pretrained=True)              # doctest: +SKIP
>>> find("lm_resnet20").test_error                                   # doctest: +SKIP
14.02

- :mod:`~contdepth.pretrained.shipped`: which runs ship (:data:`SHIPPED`, one line a run) and where they are;
- :mod:`~contdepth.pretrained.catalog`: their names, recorded test errors, loading and evaluating them.

It sits above :mod:`contdepth.train` (a run folder is loaded back with :func:`~contdepth.train.load_run`);
:func:`contdepth.models.get` reaches it with ``pretrained=True`` through a deferred import.
"""

from .catalog import Pretrained, evaluate_pretrained, find, load_pretrained, pretrained_names, pretrained_runs
from .shipped import SHIPPED, shipped_root

__all__ = [
    "SHIPPED",
    "Pretrained",
    "evaluate_pretrained",
    "find",
    "load_pretrained",
    "pretrained_names",
    "pretrained_runs",
    "shipped_root",
]
