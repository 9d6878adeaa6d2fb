"""Analysis helpers: fitted convergence orders, stability regions and the spectra of trained blocks."""

from .orders import OrderFit, fit_order
from .spectra import Spectra, StepSpectrum, block_spectra
from .stability import StabilityRegion, known_schemes, stability_region

__all__ = [
    "OrderFit",
    "Spectra",
    "StabilityRegion",
    "StepSpectrum",
    "block_spectra",
    "fit_order",
    "known_schemes",
    "stability_region",
]
