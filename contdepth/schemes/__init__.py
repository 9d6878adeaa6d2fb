"""Schemes: one module per method, registered by name.

>>> import contdepth as cd
>>> cd.schemes.available()          # doctest: +SKIP
>>> cd.schemes.get("lm2", k=-0.05, learnable=False)   # doctest: +SKIP
>>> cd.schemes.registered(supports_noise=True)          # doctest: +SKIP
['euler', 'euler_maruyama', 'lm2']

Every scheme declares its order on ODEs (``ode_order``), whether it takes noise
(``supports_noise``) and its strong and weak orders on SDEs (``strong_order``, ``weak_order``);
explicit Runge–Kutta schemes are their :class:`ButcherTableau`, which gives both their step and
their stability polynomial.
"""

from . import ab2, euler, euler_maruyama, heun, kutta3, leapfrog, lm2, midpoint, polynet, rk4  # noqa: F401  (imported to register the schemes)
from .ab2 import AdamsBashforth2
from .base import DECLARED, Scheme, StepContext, StepField
from .characteristic import Characteristic
from .euler import Euler
from .euler_maruyama import EulerMaruyama
from .explicit_rk import ExplicitRungeKutta
from .heun import Heun
from .kutta3 import Kutta3
from .leapfrog import Leapfrog, RevNet
from .lm2 import LM2, LMLimit
from .midpoint import Midpoint
from .polynet import PolyNet
from .registry import CAPABILITIES, available, canonical, get, register, registered, scheme_class
from .rk4 import RK4
from .tableau import ButcherTableau

__all__ = [
    "CAPABILITIES",
    "DECLARED",
    "ButcherTableau",
    "Characteristic",
    "ExplicitRungeKutta",
    "Scheme",
    "StepContext",
    "StepField",
    "available",
    "canonical",
    "get",
    "register",
    "registered",
    "scheme_class",
    "AdamsBashforth2",
    "Euler",
    "EulerMaruyama",
    "Heun",
    "Kutta3",
    "Leapfrog",
    "RevNet",
    "LM2",
    "LMLimit",
    "Midpoint",
    "PolyNet",
    "RK4",
]
