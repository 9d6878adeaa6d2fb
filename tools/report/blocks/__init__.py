"""The block modules; importing one registers its blocks (``@block``). A new module is imported here."""

from . import dial, headline, later_studies, orders, pretrained, speed, study, toy, trained

__all__ = ["dial", "headline", "later_studies", "orders", "pretrained", "speed", "study", "toy", "trained"]
