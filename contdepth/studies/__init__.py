"""Studies: a paper's tables trained as `contdepth train` runs, ``--jobs`` at a time, in the time you have.

``contdepth reproduce`` (``contdepth.cli.reproduce``) runs them. The parts, each about one thing:

- :mod:`.catalog`: the studies as data (rows, recipes, the paper's numbers): a new study goes here;
- :mod:`.planner`: how long runs take and which fit before a deadline (pure functions of a clock);
- :mod:`.runs`: a study's runs and what their folders hold;
- :mod:`.launch`: `contdepth train` subprocesses that die with the study;
- :mod:`.runner`: the scheduler that starts, waits for and reports the runs;
- :mod:`.calibration`: timed bursts, and estimates from earlier runs;
- :mod:`.summary`: the results beside the paper's (``summary.md``, ``.json``, ``.png``).

The training loop itself is :mod:`contdepth.train`'s; the run folder each run writes is read through
:mod:`contdepth.runs`.
"""

from .catalog import STUDIES, RunSpec, Study, UnknownName, get_study

__all__ = ["STUDIES", "RunSpec", "Study", "UnknownName", "get_study"]
