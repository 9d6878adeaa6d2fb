"""Schemes: one module per method, registered by name.

>>> import contdepth as cd
>>> cd.schemes.available()          # doctest: +SKIP
>>> cd.schemes.get("lm2", k=-0.05, learnable=False)   # doctest: +SKIP
"""

from . import ab2, euler, euler_maruyama, heun, leapfrog, lm2, midpoint, polynet, rk4  # noqa: F401  (imported to register the schemes)
from .ab2 import AdamsBashforth2
from .base import Scheme, StepContext, StepField
from .characteristic import Characteristic
from .euler import Euler
from .euler_maruyama import EulerMaruyama
from .heun import Heun
from .leapfrog import Leapfrog, RevNet
from .lm2 import LM2, LMLimit
from .midpoint import Midpoint
from .polynet import PolyNet
from .registry import available, canonical, get, register, scheme_class
from .rk4 import RK4

__all__ = [
    "Characteristic",
    "Scheme",
    "StepContext",
    "StepField",
    "available",
    "canonical",
    "get",
    "register",
    "scheme_class",
    "AdamsBashforth2",
    "Euler",
    "EulerMaruyama",
    "Heun",
    "Leapfrog",
    "RevNet",
    "LM2",
    "LMLimit",
    "Midpoint",
    "PolyNet",
    "RK4",
]
