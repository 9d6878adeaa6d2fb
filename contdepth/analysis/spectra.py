"""Spectra of ``h ∂f/∂u`` along the states a batch visits: where a network's blocks sit in its scheme's
stability region.

For every step ``n`` of every stage flow, at the state ``u_n`` each sample reaches, the leading
eigenvalues (largest modulus, ``which="LM"``, and rightmost, ``which="LR"``) of ``h_n ∂f/∂u(t_n, u_n)``
per sample. The Jacobian is never formed: ARPACK (``scipy.sparse.linalg.eigs``) sees a
``LinearOperator`` whose products are Jacobian-vector products through ``torch.func.linearize``,
batched over the samples (:mod:`.lockstep`). Small states (``dim <= dense_below``) get the dense
Jacobian and ``numpy.linalg.eigvals`` instead.

The network runs in eval mode: BatchNorm uses its running statistics, so each sample's map (and its
Jacobian) is independent of the others, and noise is off. Transitions (a stage's first block, a
change of space) are not time steps and are skipped.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..flow import Flow, HasFlows
from .lockstep import lockstep_eigs
from .stability import StabilityRegion, region_of_step

#: ARPACK's relative tolerance on the Ritz values, by state dtype (float32 products limit what it can reach)
DEFAULT_TOL = {torch.float64: 1e-10, torch.float32: 1e-3}


@dataclass
class StepSpectrum:
    """Eigenvalues of ``h ∂f/∂u`` at one step of one stage flow, per sample.

    Attributes:
        stage: index of the flow in the model (0 for a bare flow); ``step``: step index in it;
        block: the field's piece (block) of the step; ``t``, ``h``: step start and size.
        largest: ``(B, n_eigs)`` complex, largest modulus first (``nan`` where ARPACK did not converge).
        rightmost: ``(B, n_eigs)`` complex, largest real part first.
        region: the scheme's region for this step (lm2: the block's k), or ``None`` with ``region_error``.
        matvecs: Jacobian-vector products per sample (both solves; 0 for the dense path).
    """

    stage: int
    step: int
    block: int
    t: float
    h: float
    largest: np.ndarray
    rightmost: np.ndarray
    region: StabilityRegion | None
    region_error: str = ""
    matvecs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def spectral_radius(self) -> np.ndarray:
        """``(B,)``: the largest ``|z|`` per sample."""
        return np.nanmax(np.abs(self.largest), axis=1)

    @property
    def max_real(self) -> np.ndarray:
        """``(B,)``: the largest ``Re z`` per sample."""
        return np.nanmax(self.rightmost.real, axis=1)

    def eigenvalues(self, sample: int) -> np.ndarray:
        """The distinct eigenvalues found for one sample (both solves, ``nan`` dropped)."""
        z = np.concatenate([self.largest[sample], self.rightmost[sample]])
        z = z[np.isfinite(z)]
        if z.size == 0:
            return z
        keep = [0]
        for i in range(1, z.size):
            if np.min(np.abs(z[keep] - z[i])) > 1e-7 * max(1.0, abs(z[i])):
                keep.append(i)
        return z[keep]

    @property
    def inside_fraction(self) -> np.ndarray:
        """``(B,)``: fraction of each sample's eigenvalues inside the region (``nan`` without a region)."""
        if self.region is None:
            return np.full(self.largest.shape[0], np.nan)
        out = []
        for b in range(self.largest.shape[0]):
            z = self.eigenvalues(b)
            out.append(float(np.mean(self.region.contains(z, tol=1e-6))) if z.size else np.nan)
        return np.asarray(out)

    def summary(self) -> dict[str, Any]:
        """Batch summary: spectral radius and largest real part (mean, median, max), fraction inside."""
        rho, re, inside = self.spectral_radius, self.max_real, self.inside_fraction

        def stats(a: np.ndarray) -> dict[str, float]:
            a = a[np.isfinite(a)]
            if a.size == 0:
                return {"mean": math.nan, "median": math.nan, "min": math.nan, "max": math.nan}
            return {
                "mean": float(a.mean()),
                "median": float(np.median(a)),
                "min": float(a.min()),
                "max": float(a.max()),
            }

        return {
            "stage": self.stage,
            "step": self.step,
            "block": self.block,
            "t": self.t,
            "h": self.h,
            "region": None if self.region is None else self.region.name,
            "spectral_radius": stats(rho),
            "max_real": stats(re),
            "inside_fraction": stats(inside),
            "samples_all_inside": None if self.region is None else float(np.mean(inside == 1.0)),
            "matvecs_per_sample": float(self.matvecs.mean()) if self.matvecs.size else 0.0,
        }

    def to_dict(self) -> dict[str, Any]:
        """Summary plus the per-sample eigenvalues as ``[re, im]`` pairs (JSON-ready)."""

        def pairs(a: np.ndarray) -> list:
            return np.stack([a.real, a.imag], axis=-1).tolist()

        return {**self.summary(), "largest": pairs(self.largest), "rightmost": pairs(self.rightmost)}


@dataclass
class Spectra:
    """What :func:`block_spectra` found: one :class:`StepSpectrum` per step of every stage flow."""

    steps: list[StepSpectrum]
    n_eigs: int
    samples: int
    dtype: str
    tol: float
    products: int = 0  # batched Jacobian-vector products (calls of the linearised field)

    def stage(self, index: int) -> list[StepSpectrum]:
        return [s for s in self.steps if s.stage == index]

    @property
    def stages(self) -> list[int]:
        return sorted({s.stage for s in self.steps})

    def to_dict(self, eigenvalues: bool = True) -> dict[str, Any]:
        return {
            "n_eigs": self.n_eigs,
            "samples": self.samples,
            "dtype": self.dtype,
            "tol": self.tol,
            "batched_products": self.products,
            "steps": [s.to_dict() if eigenvalues else s.summary() for s in self.steps],
        }


# ------------------------------------------------------------------------------ visited states
def stage_inputs(model: nn.Module, x: Tensor) -> list[tuple[Flow, Tensor, Tensor | None]]:
    """Run ``model(x)`` once and capture each stage flow's input ``(flow, u0, u_prev)``.

    Flows are found through ``model.flows()`` when it exists (a re-discretised net's active
    flows), else as submodules; forward pre-hooks record their arguments, in call order.
    """
    flows = list(model.flows()) if isinstance(model, HasFlows) else [m for m in model.modules() if isinstance(m, Flow)]
    if not flows:
        raise ValueError(f"{type(model).__name__} contains no Flow: nothing to analyse")
    captured: list[tuple[Flow, Tensor, Tensor | None]] = []

    def recorder(flow: Flow) -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            u0 = args[0] if args else kwargs["u0"]
            u_prev = args[1] if len(args) > 1 else kwargs.get("u_prev")
            captured.append((flow, u0.detach(), None if u_prev is None else u_prev.detach()))

        return hook

    handles = [f.register_forward_pre_hook(recorder(f), with_kwargs=True) for f in flows]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return captured


# ------------------------------------------------------------------------------ one step
def _linearised(fn, u: Tensor):
    """``v -> ∂fn/∂u (u) v`` with the primal work done once (``torch.func.linearize``)."""
    with warnings.catch_warnings():  # torch.fx's constant folding warns about attributes it re-creates
        warnings.filterwarnings("ignore", message="Attempted to insert a get_attr Node", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=DeprecationWarning)
        _, jvp = torch.func.linearize(fn, u)
    return jvp


def _select(values: np.ndarray, n: int, which: str) -> np.ndarray:
    """The ``n`` leading entries of each row: by modulus (``LM``) or real part (``LR``), descending."""
    key = np.abs(values) if which == "LM" else values.real
    order = np.argsort(-key, axis=1, kind="stable")[:, :n]
    return np.take_along_axis(values, order, axis=1)


@torch.no_grad()
def _dense_step(fn, u: Tensor, h: float, n_eigs: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Full per-sample Jacobians (the JVPs of all basis directions at once, vmapped) -> eigenvalues."""
    batch, dim = u.shape[0], u[0].numel()
    jvp = torch.func.vmap(_linearised(fn, u))
    cols = []
    for start in range(0, dim, chunk):
        stop = min(dim, start + chunk)
        basis = torch.eye(dim, dtype=u.dtype, device=u.device)[start:stop]
        tangents = basis.reshape(stop - start, 1, *u.shape[1:]).expand(stop - start, *u.shape)
        cols.append((h * jvp(tangents)).reshape(stop - start, batch, dim))
    jac = torch.cat(cols).permute(1, 2, 0).double().cpu().numpy()  # (B, dim, dim): column j = J e_j
    values = np.linalg.eigvals(jac)
    return _select(values, n_eigs, "LM"), _select(values, n_eigs, "LR")


def _arpack_step(
    fn, u: Tensor, h: float, n_eigs: int, tol: float, ncv: int | None, maxiter: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    batch, dim = u.shape[0], u[0].numel()
    keys = [(which, b) for which in ("LM", "LR") for b in range(batch)]
    linear: dict[str, Any] = {"rows": None, "jvp": None, "build": 0.0, "call": 0.0, "since": 0}

    def relinearise(rows: list) -> bool:
        """Whether to trace the map again on fewer rows: when the work saved so far would have paid for it."""
        lin_rows = linear["rows"]
        if lin_rows is None or not set(rows) <= set(lin_rows):
            return True
        if len(rows) * 2 > len(lin_rows):
            return False
        saved = (1 - len(rows) / len(lin_rows)) * linear["call"] * max(linear["since"], 1)
        return saved > linear["build"]

    @torch.no_grad()
    def product(requests: dict) -> dict:
        rows = sorted(requests)
        if relinearise(rows):
            start = time.perf_counter()
            linear["jvp"] = _linearised(fn, u[[b for _, b in rows]])
            linear.update(rows=rows, build=time.perf_counter() - start, since=0)
        lin_rows = linear["rows"]
        tangent = torch.zeros((len(lin_rows), *u.shape[1:]), dtype=u.dtype, device=u.device)
        index = {r: i for i, r in enumerate(lin_rows)}
        for r in rows:
            tangent[index[r]] = torch.from_numpy(requests[r]).reshape(u.shape[1:]).to(u.dtype)
        start = time.perf_counter()
        out = (h * linear["jvp"](tangent)).reshape(len(lin_rows), dim).double().cpu().numpy()
        linear["call"] = time.perf_counter() - start
        linear["since"] += 1
        return {r: out[index[r]] for r in rows}

    if ncv is None:
        ncv = min(dim, max(2 * n_eigs + 1, 32))
    results, rounds = lockstep_eigs(
        keys, dim, product, k=n_eigs, which=lambda key: key[0], tol=tol, ncv=ncv, maxiter=maxiter, seed=seed
    )
    largest = np.stack([results[("LM", b)].values for b in range(batch)])
    rightmost = np.stack([results[("LR", b)].values for b in range(batch)])
    matvecs = np.array([results[("LM", b)].matvecs + results[("LR", b)].matvecs for b in range(batch)])
    return _select(largest, n_eigs, "LM"), _select(rightmost, n_eigs, "LR"), matvecs, rounds


def _step_region(flow: Flow, t: float) -> tuple[StabilityRegion | None, str]:
    try:
        return region_of_step(flow.scheme, t + 0.5 * flow.h, noise_off=not flow.noise_at_eval), ""
    except ValueError as err:
        return None, str(err)


# ------------------------------------------------------------------------------ public
def block_spectra(
    flow_or_model: Flow | nn.Module,
    x: Tensor,
    n_eigs: int = 8,
    *,
    u_prev: Tensor | None = None,
    tol: float | None = None,
    ncv: int | None = None,
    maxiter: int | None = None,
    dense_below: int = 256,
    stages: Sequence[int] | None = None,
    seed: int = 0,
) -> Spectra:
    """Leading eigenvalues of ``h ∂f/∂u`` at every step of every stage, along the states ``x`` visits.

    Args:
        flow_or_model: a :class:`~contdepth.Flow` (``x`` is its initial state) or a model holding
            flows (a zoo :class:`~contdepth.models.stage.ResidualNet`: ``x`` are its inputs; the
            states before each stage come from running the model, captured by forward hooks).
        x: a batch, any state shape, float32 or float64 (the model's dtype).
        n_eigs: eigenvalues per sample of each kind (largest modulus, rightmost).
        u_prev: a bare flow's multistep history seed (as in ``flow(x, u_prev)``).
        tol: ARPACK's relative tolerance (default 1e-10 in float64, 1e-3 in float32).
        ncv, maxiter: ARPACK's Krylov dimension (default ``max(2 n_eigs + 1, 32)``) and restarts.
        dense_below: states of at most this many entries per sample use dense Jacobians.
        stages: analyse only these stage indices (default all).
        seed: seeds ARPACK's start vectors.

    Runs in eval mode and restores the module's training flags afterwards.
    """
    if isinstance(n_eigs, bool) or not isinstance(n_eigs, int) or n_eigs < 1:
        raise ValueError(f"n_eigs must be an integer >= 1, got {n_eigs!r}")
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
        raise ValueError("x must be a tensor with a batch dimension first and at least one sample")
    if not x.is_floating_point() or x.dtype not in DEFAULT_TOL:
        raise ValueError(f"x must be float32 or float64, got {x.dtype}")
    tol = DEFAULT_TOL[x.dtype] if tol is None else float(tol)
    modules = list(flow_or_model.modules()) + list(getattr(flow_or_model, "flows", list)())
    was_training = {m: m.training for m in modules}
    flow_or_model.eval()
    try:
        with torch.no_grad():
            if isinstance(flow_or_model, Flow):
                inputs = [(flow_or_model, x, u_prev)]
            else:
                inputs = stage_inputs(flow_or_model, x)
        out: list[StepSpectrum] = []
        products = 0
        for stage, (flow, u0, prev) in enumerate(inputs):
            if stages is not None and stage not in stages:
                continue
            with torch.no_grad():
                path = flow.trajectory(u0, prev)
            dim = u0[0].numel()
            if dim - 1 <= n_eigs and dim > dense_below:
                raise ValueError(f"n_eigs={n_eigs} needs states of more than {n_eigs + 1} entries, got {dim}")
            for n in range(flow.steps):
                t, piece = flow.t0 + n * flow.h, flow.pieces[n]

                def fn(v: Tensor, t: float = t, piece: int = piece, flow: Flow = flow) -> Tensor:
                    return flow.field.drift(t, v, piece)

                u = path[n]
                if dim <= dense_below:
                    k = min(n_eigs, dim)
                    largest, rightmost = _dense_step(fn, u, flow.h, k)
                    matvecs = np.full(u.shape[0], dim)
                    products += dim
                else:
                    largest, rightmost, matvecs, rounds = _arpack_step(
                        fn, u, flow.h, n_eigs, tol, ncv, maxiter, seed + 1000 * stage + n
                    )
                    products += rounds
                region, why = _step_region(flow, t)
                out.append(StepSpectrum(stage, n, piece, t, flow.h, largest, rightmost, region, why, matvecs))
    finally:
        for m, mode in was_training.items():
            m.training = mode
    return Spectra(out, n_eigs, int(x.shape[0]), str(x.dtype).replace("torch.", ""), tol, products)
