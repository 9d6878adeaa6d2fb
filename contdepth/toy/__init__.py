"""The stochastic-training toy of Sun, Tao and Du: 2-D classification by a planar flow, and the
backward Kolmogorov equation of the trained stochastic network solved two ways.

Modules: ``data`` (seeded moons/spirals), ``model`` (flow + read-out, noise variants), ``train``
(optimal-control objective), ``kolmogorov`` (finite differences vs Monte Carlo), ``experiment``
(configurations x seeds), ``plots``. ``contdepth demo`` (``contdepth.cli.demo``) runs it.
"""

from .data import ToyData, make_data
from .model import ModelConfig, ToyModel, build_model
from .train import ToyTrainConfig, fit

__all__ = ["ModelConfig", "ToyData", "ToyModel", "ToyTrainConfig", "build_model", "fit", "make_data"]
