"""Grids of the plane for the Kolmogorov check: uniform nodes, and a finer padded grid around a region."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Grid:
    """Uniform grid of the plane: nodes ``xs`` (nx,), ``ys`` (ny,), float64; values live as ``(ny, nx)``."""

    xs: Tensor
    ys: Tensor

    @property
    def dx(self) -> float:
        return float(self.xs[1] - self.xs[0])

    @property
    def dy(self) -> float:
        return float(self.ys[1] - self.ys[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.ys), len(self.xs))

    def points(self) -> Tensor:
        """All nodes, ``(ny * nx, 2)``, row-major over ``(y, x)``."""
        yy, xx = torch.meshgrid(self.ys, self.xs, indexing="ij")
        return torch.stack([xx.flatten(), yy.flatten()], dim=1)

    @staticmethod
    def box(lo: Sequence[float], hi: Sequence[float], n: Sequence[int]) -> Grid:
        """``n = (nx, ny)`` nodes spanning ``[lo_x, hi_x] x [lo_y, hi_y]``."""
        xs = torch.linspace(lo[0], hi[0], n[0], dtype=torch.float64)
        ys = torch.linspace(lo[1], hi[1], n[1], dtype=torch.float64)
        return Grid(xs, ys)


@dataclass(frozen=True)
class PaddedGrid:
    """A fine computational grid whose nodes ``[j0::refine, i0::refine]`` are the coarse region of interest."""

    grid: Grid
    roi: Grid
    i0: int
    j0: int
    refine: int

    def restrict(self, values: Tensor) -> Tensor:
        """Values on the fine grid ``(ny, nx)`` -> values at the region-of-interest nodes ``roi.shape``."""
        ny, nx = self.roi.shape
        r = self.refine
        return values[self.j0 : self.j0 + r * (ny - 1) + 1 : r, self.i0 : self.i0 + r * (nx - 1) + 1 : r]


def padded_grid(roi: Grid, refine: int, lo: Sequence[float], hi: Sequence[float]) -> PaddedGrid:
    """Refine ``roi`` by an integer factor and extend it with whole cells to cover ``[lo, hi]``."""
    if refine < 1:
        raise ValueError(f"refine must be >= 1, got {refine}")
    dx, dy = roi.dx / refine, roi.dy / refine
    pad_lo = [max(0, math.ceil((float(roi.xs[0]) - lo[0]) / dx)), max(0, math.ceil((float(roi.ys[0]) - lo[1]) / dy))]
    pad_hi = [max(0, math.ceil((hi[0] - float(roi.xs[-1])) / dx)), max(0, math.ceil((hi[1] - float(roi.ys[-1])) / dy))]
    nx = pad_lo[0] + refine * (len(roi.xs) - 1) + 1 + pad_hi[0]
    ny = pad_lo[1] + refine * (len(roi.ys) - 1) + 1 + pad_hi[1]
    xs = float(roi.xs[0]) + dx * (torch.arange(nx, dtype=torch.float64) - pad_lo[0])
    ys = float(roi.ys[0]) + dy * (torch.arange(ny, dtype=torch.float64) - pad_lo[1])
    return PaddedGrid(Grid(xs, ys), roi, pad_lo[0], pad_lo[1], refine)
