"""Analysis helpers: fitted convergence orders and the like."""
from .orders import OrderFit, fit_order

__all__ = ["OrderFit", "fit_order"]
