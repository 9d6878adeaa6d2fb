"""Tooling that runs from a checkout of the repository and is not installed with the ``contdepth`` package."""
