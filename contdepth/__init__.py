"""contdepth: residual networks as discretisations of ODEs and SDEs.

Fields (drift ``f(t, u)``, diffusion ``g(t, u)``) are unrolled by interchangeable schemes into
finite-depth networks (:class:`Flow`), or integrated in the continuous limit with torchdiffeq
(:func:`odeint`) and torchsde (:func:`sdeint`).
"""

from . import noise, schemes
from .continuous import odeint, sdeint
from .fields import Blocks, Coupled, Field, Interpolated, Tied
from .flow import Flow
from .noise import Noise, get_law

__version__ = "0.1.0"

__all__ = [
    "Blocks",
    "Coupled",
    "Field",
    "Flow",
    "Interpolated",
    "Noise",
    "Tied",
    "analysis",
    "get_law",
    "models",
    "noise",
    "odeint",
    "pretrained",
    "runs",
    "schemes",
    "sdeint",
    "train",
]


def __getattr__(name):  # models, analysis (scipy), runs, train and pretrained are imported only when asked for
    if name in ("models", "analysis", "runs", "train", "pretrained"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'contdepth' has no attribute {name!r}")
