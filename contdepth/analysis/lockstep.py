"""Many ARPACK solves at once, their matrix-vector products answered in batches.

Each solve (one sample's Jacobian, one ``which``) runs ``scipy.sparse.linalg.eigs`` in a worker
thread; its ``LinearOperator.matvec`` hands the vector to the calling thread and waits. Once every
running solve has asked, the calling thread answers all of them with one batched product (one JVP
over the whole batch) and wakes them. Torch runs in the calling thread only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np


@dataclass
class EigResult:
    """Eigenvalues found by one solve (``nan`` where ARPACK did not converge), and its matvec count."""

    values: np.ndarray
    converged: int
    matvecs: int


K = TypeVar("K", bound=Hashable)  # a solve's key


class _Exchange(Generic[K]):
    """Requests from the solver threads, answered in batches by the thread that runs :meth:`serve`.

    The serving thread is woken once per batch (when the last running solver has asked) and each
    solver once per answer (its own event), so a round costs O(solvers) wake-ups.
    """

    def __init__(self, clients: int) -> None:
        self.lock = threading.Lock()
        self.full = threading.Condition(self.lock)
        self.active = clients
        self.pending: dict[K, np.ndarray] = {}
        self.answers: dict[K, np.ndarray] = {}
        self.events: dict[K, threading.Event] = {}
        self.error: BaseException | None = None

    def ask(self, key: K, v: np.ndarray) -> np.ndarray:
        with self.lock:
            if self.error is not None:
                raise RuntimeError("a batched product failed") from self.error
            event = self.events.setdefault(key, threading.Event())
            event.clear()
            self.pending[key] = v
            if len(self.pending) >= self.active:
                self.full.notify()
        event.wait()
        with self.lock:
            if self.error is not None:
                raise RuntimeError("a batched product failed") from self.error
            return self.answers.pop(key)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1
            if len(self.pending) >= self.active:
                self.full.notify()

    def _wake(self, keys) -> None:
        for key in keys:
            self.events[key].set()

    def serve(self, product: Callable[[dict[K, np.ndarray]], dict[K, np.ndarray]]) -> int:
        """Answer batches until every client has left; returns the number of batched products."""
        rounds = 0
        while True:
            with self.lock:
                while self.active > 0 and len(self.pending) < self.active:
                    self.full.wait()
                if self.active == 0:
                    return rounds
                batch, self.pending = self.pending, {}
            try:
                answers = product(batch)
            except BaseException as err:  # wake the solvers so that they fail instead of waiting forever
                with self.lock:
                    self.error = err
                    self._wake(batch)
                raise
            rounds += 1
            with self.lock:
                self.answers.update(answers)
                self._wake(batch)


def lockstep_eigs(
    keys: Sequence[K],
    dim: int,
    product: Callable[[dict[K, np.ndarray]], dict[K, np.ndarray]],
    *,
    k: int,
    which: Callable[[K], str],
    tol: float,
    ncv: int | None = None,
    maxiter: int | None = None,
    seed: int = 0,
) -> tuple[dict[K, EigResult], int]:
    """``eigs(A_key, k, which(key))`` for every key, the products ``A_key v`` batched by ``product``.

    ``product({key: v})`` gets the vectors (float64, length ``dim``) of every running solve and
    returns ``{key: A_key v}``. Returns the results by key and the number of batched products.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigs

    exchange: _Exchange[K] = _Exchange(len(keys))
    counts = {key: 0 for key in keys}

    def solve(index: int, key: K) -> EigResult:
        try:

            def matvec(v: np.ndarray) -> np.ndarray:
                counts[key] += 1
                return exchange.ask(key, np.asarray(v, dtype=np.float64).reshape(-1))

            op = LinearOperator((dim, dim), matvec=matvec, dtype=np.float64)
            v0 = np.random.default_rng([seed, index]).standard_normal(dim)
            try:
                values = eigs(
                    op, k=k, which=which(key), tol=tol, ncv=ncv, maxiter=maxiter, v0=v0, return_eigenvectors=False
                )
                found = k
            except ArpackNoConvergence as err:
                values = np.asarray(err.eigenvalues)
                found = len(values)
            out = np.full(k, np.nan + 0j)
            out[:found] = values[:k]
            return EigResult(out, found, counts[key])
        finally:
            exchange.leave()

    with ThreadPoolExecutor(max_workers=max(1, len(keys))) as pool:
        futures = [pool.submit(solve, i, key) for i, key in enumerate(keys)]
        rounds = exchange.serve(product)
        results = {key: f.result() for key, f in zip(keys, futures, strict=True)}
    return results, rounds
