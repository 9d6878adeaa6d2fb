"""Figures of :class:`~.spectra.Spectra`: each stage's eigenvalues over its scheme's stability region,
coloured by depth, and per-step panels (spectral radius, largest real part, fraction inside).
matplotlib is imported when a figure is drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..outputs import save_figure
from .spectra import Spectra, StepSpectrum
from .stability import StabilityRegion


def depths(spectra: Spectra) -> np.ndarray:
    """Depth of each step in residual blocks, stage after stage (transitions not counted): ``(steps,)``."""
    out, total, last_stage, stage_start = [], 0.0, None, 0.0
    for s in spectra.steps:
        if s.stage != last_stage:
            stage_start, last_stage = total, s.stage
        out.append(stage_start + s.t)
        total = stage_start + s.t + s.h
    return np.asarray(out)


def _regions(steps: list[StepSpectrum]) -> list[tuple[StabilityRegion, list[int]]]:
    """Distinct regions of a stage with the indices of the steps using each (lm2: one per block k)."""
    found: dict[str, tuple[StabilityRegion, list[int]]] = {}
    for i, s in enumerate(steps):
        if s.region is not None:
            found.setdefault(s.region.name, (s.region, []))[1].append(i)
    return list(found.values())


def _limits(points: np.ndarray, regions: list[StabilityRegion]) -> tuple[float, float, float, float]:
    xs, ys = [points.real], [points.imag]
    for r in regions:
        b = r.boundary(200).ravel()
        b = b[np.isfinite(b) & (np.abs(b) < 50)]
        xs.append(b.real)
        ys.append(b.imag)
    x, y = np.concatenate(xs), np.concatenate(ys)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size == 0:
        return -3.0, 1.0, -2.0, 2.0
    pad_x = 0.08 * max(x.max() - x.min(), 1.0)
    pad_y = 0.08 * max(y.max() - y.min(), 1.0)
    return x.min() - pad_x, x.max() + pad_x, y.min() - pad_y, y.max() + pad_y


def plot_spectra(spectra: Spectra, path: str | Path | None = None, title: str = ""):
    """Draw the figure; save it to ``path`` when given. Returns the matplotlib figure.

    Top row, one panel per stage: the scheme's stability region (shaded where every block of the
    stage is stable; lm2: each block's own boundary in its depth colour) and every eigenvalue found
    (largest-modulus and rightmost, all samples) coloured by depth. Bottom row, per step against
    depth: spectral radius and largest real part (batch mean, band from min to max), and the
    fraction of eigenvalues inside the region.
    """
    import matplotlib
    from matplotlib import colors
    from matplotlib.figure import Figure

    stages = spectra.stages
    depth = depths(spectra)
    norm = colors.Normalize(vmin=float(depth.min()), vmax=float(max(depth.max(), depth.min() + 1e-9)))
    cmap = matplotlib.colormaps["viridis"]
    ncol = max(len(stages), 3)
    if path is None:  # for the caller to show: a pyplot figure
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(4.4 * ncol, 8.2))
    else:  # written to a file: needs no backend, leaves the user's matplotlib set-up alone
        fig = Figure(figsize=(4.4 * ncol, 8.2))
    grid = fig.add_gridspec(2, ncol, height_ratios=[1.25, 1.0], hspace=0.38, wspace=0.32)
    index = {id(s): i for i, s in enumerate(spectra.steps)}
    scatter = None
    for col, stage in enumerate(stages):
        ax = fig.add_subplot(grid[0, col])
        steps = spectra.stage(stage)
        regions = _regions(steps)
        points = np.concatenate([np.concatenate([s.largest.ravel(), s.rightmost.ravel()]) for s in steps])
        colour = np.concatenate([np.full(2 * s.largest.size, depth[index[id(s)]]) for s in steps])
        ok = np.isfinite(points)
        x0, x1, y0, y1 = _limits(points[ok], [r for r, _ in regions])
        if regions:
            re, im = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 240))
            inside = np.ones(re.shape, dtype=bool)
            for r, _ in regions:
                inside &= r.contains(re + 1j * im)
            ax.contourf(re, im, inside.astype(float), levels=[0.5, 1.5], colors=["0.85"])
            for r, used in regions:
                line_colour = "k" if len(regions) == 1 else cmap(norm(depth[index[id(steps[used[0]])]]))
                for branch in r.boundary(400):
                    ax.plot(branch.real, branch.imag, color=line_colour, lw=0.9)
        scatter = ax.scatter(
            points[ok].real, points[ok].imag, c=colour[ok], cmap=cmap, norm=norm, s=5, alpha=0.6, linewidths=0
        )
        ax.axhline(0, color="0.6", lw=0.5)
        ax.axvline(0, color="0.6", lw=0.5)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal", adjustable="box")
        names = ", ".join(sorted({r.name for r, _ in regions})) or "no region"
        if len(regions) > 3:
            names = f"{regions[0][0].name.split('(')[0]}: {len(regions)} blocks' k"
        ax.set_title(f"stage {stage}: {names}", fontsize=9)
        ax.set_xlabel("Re z (z = h λ of ∂f/∂u)")
        ax.set_ylabel("Im z")
    if scatter is not None:
        fig.colorbar(scatter, ax=[fig.axes[i] for i in range(len(stages))], label="depth (blocks)", shrink=0.85)

    def band(ax, values: list[np.ndarray], label: str, colour: str) -> None:
        mean = np.array([np.nanmean(v) for v in values])
        lo = np.array([np.nanmin(v) for v in values])
        hi = np.array([np.nanmax(v) for v in values])
        ax.plot(depth, mean, "o-", ms=3, color=colour, label=f"{label} (batch mean)")
        ax.fill_between(depth, lo, hi, color=colour, alpha=0.2, label="min-max over the batch")

    ax_r = fig.add_subplot(grid[1, 0])
    band(ax_r, [s.spectral_radius for s in spectra.steps], "spectral radius |z|max", "C0")
    ax_r.set(xlabel="depth (blocks)", ylabel="spectral radius of h ∂f/∂u", title="largest |z| per step")
    ax_re = fig.add_subplot(grid[1, 1])
    band(ax_re, [s.max_real for s in spectra.steps], "largest Re z", "C3")
    ax_re.axhline(0, color="0.5", lw=0.7, ls="--")
    ax_re.set(xlabel="depth (blocks)", ylabel="largest real part of h λ", title="rightmost eigenvalue per step")
    ax_in = fig.add_subplot(grid[1, 2])
    band(ax_in, [s.inside_fraction for s in spectra.steps], "fraction inside", "C2")
    ax_in.set(
        xlabel="depth (blocks)",
        ylabel="fraction inside the region",
        title="eigenvalues found inside the region",
        ylim=(-0.05, 1.05),
    )
    for ax in (ax_r, ax_re, ax_in):
        ax.legend(fontsize=7)
        for d in _stage_starts(spectra, depth)[1:]:
            ax.axvline(d, color="0.7", lw=0.6, ls=":")
    fig.suptitle(
        title
        or f"eigenvalues of h ∂f/∂u along {spectra.samples} inputs ({spectra.n_eigs} largest-modulus "
        f"+ {spectra.n_eigs} rightmost per sample and step)",
        fontsize=10,
    )
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path, dpi=110, bbox_inches="tight")
    return fig


def _stage_starts(spectra: Spectra, depth: np.ndarray) -> list[float]:
    starts, seen = [], set()
    for s, d in zip(spectra.steps, depth, strict=True):
        if s.stage not in seen:
            seen.add(s.stage)
            starts.append(float(d))
    return starts
