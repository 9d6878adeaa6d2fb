"""Monte Carlo evaluation of a noisy net: its noise on at test time, the outputs averaged over draws.

A net trained with noise (stochastic depth, Gaussian noise, shake-shake) is an SDE; its eval-mode
forward is the *mean field* (every ξ replaced by its mean, 0). :func:`monte_carlo` runs the net
``samples`` times with the noise on (BatchNorm still in eval mode) and compares three predictors:
the ensemble (the mean of the softmax outputs), the mean field, and a single draw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

from ..flow import Flow
from .transition import Transition


def noisy_parts(model: nn.Module) -> list[Flow | Transition]:
    """The flows and transitions ``model`` runs, its re-discretised flows (kept outside its module tree) included."""
    parts: list[Flow | Transition] = [m for m in model.modules() if isinstance(m, (Flow, Transition))]
    flows = getattr(model, "flows", None)
    if callable(flows):  # a re-discretised net runs flows kept outside its module tree
        parts += [f for f in flows() if all(f is not p for p in parts)]
    return parts


@contextlib.contextmanager
def noise_at_eval(model: nn.Module) -> Iterator[None]:
    """Within the block, ``model``'s flows and transitions inject their noise in eval mode too."""
    parts = noisy_parts(model)
    before = [p.noise_at_eval for p in parts]
    for p in parts:
        p.noise_at_eval = True
    try:
        yield
    finally:
        for p, value in zip(parts, before, strict=True):
            p.noise_at_eval = value


def has_noise(model: nn.Module) -> bool:
    """Whether any flow or transition of ``model`` injects noise (in training mode)."""
    return any(p.noise is not None for p in noisy_parts(model))


@torch.no_grad()
def monte_carlo(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    samples: int,
    *,
    seed: int = 0,
    autocast: contextlib.AbstractContextManager | None = None,
) -> dict[str, float]:
    """Accuracy of the ensemble of ``samples`` noisy forward passes against the mean-field net's.

    Args:
        model: a net in any mode (it is put in eval mode; its noise is turned on for the draws).
        batches: ``(x (B, C, H, W), y (B,))`` pairs.
        samples: draws per image, >= 1.
        seed: the draws come from ``torch.manual_seed(seed)`` in a forked RNG (the global stream is kept), so
            the same seed gives the same ensemble.
        autocast: a context for the forward passes (bf16 autocast, say); the averaging is float32.

    Returns ``dict(ensemble_acc, mean_field_acc, single_draw_acc, predictive_entropy (nats, mean over
    images of the entropy of the mean softmax), expected_entropy (mean entropy of one draw), images, samples)``.
    Raises ``ValueError`` when ``samples`` < 1, when the model has no noise, or when ``batches`` is empty.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    if not has_noise(model):
        raise ValueError("the model injects no noise: Monte Carlo evaluation needs a net trained with noise")
    context = autocast if autocast is not None else contextlib.nullcontext()
    model.eval()
    ens = mean_field = single = 0
    entropy = expected = 0.0
    seen = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for x, y in batches:
            with context:
                base = model(x).float()
            mean_field += int((base.argmax(1) == y).sum())
            probs = torch.zeros_like(base)
            with noise_at_eval(model):
                for k in range(samples):
                    with context:
                        p = model(x).float().softmax(1)
                    probs += p
                    expected += float(_entropy(p).sum())
                    if k == 0:
                        single += int((p.argmax(1) == y).sum())
            probs /= samples
            ens += int((probs.argmax(1) == y).sum())
            entropy += float(_entropy(probs).sum())
            seen += int(y.shape[0])
    if seen == 0:
        raise ValueError("monte_carlo: no images given")
    return {
        "ensemble_acc": ens / seen,
        "mean_field_acc": mean_field / seen,
        "single_draw_acc": single / seen,
        "predictive_entropy": entropy / seen,
        "expected_entropy": expected / (seen * samples),
        "images": seen,
        "samples": samples,
    }


def _entropy(p: Tensor) -> Tensor:
    return -(p * p.clamp_min(1e-30).log()).sum(1)


__all__ = ["has_noise", "monte_carlo", "noise_at_eval"]
