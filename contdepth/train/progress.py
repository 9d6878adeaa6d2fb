"""Progress of a training run on stderr without reading the device every step.

On a terminal: a bar per epoch with images/s and the whole run's ETA, and a bar while evaluating.
Otherwise (a log file, a detached run): one line every ``every`` seconds. Loss and accuracy live on
the device; they are read (one host sync) only when a line is printed or the bar's numbers are
refreshed, never per step. Times are host times, so on CUDA they lag the device by the launch queue
(a few steps), which does not matter over seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

# seconds between refreshes of the bar's loss/accuracy (each one a host sync)
BAR_STATS_EVERY = 5.0
STYLES = ("bar", "lines", "off")

Stats = Callable[[], tuple[float, float]]  # () -> (mean loss, accuracy as a fraction) so far this epoch


def choose_style(enabled: bool, stream: TextIO) -> str:
    """``bar`` on a terminal, ``lines`` elsewhere, ``off`` when progress is not wanted."""
    if not enabled:
        return "off"
    isatty = getattr(stream, "isatty", None)
    return "bar" if isatty is not None and isatty() else "lines"


def clock(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour)."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Reports a run of ``epochs`` epochs of ``batches`` training and ``eval_batches`` test batches.

    Call :meth:`start_epoch`, :meth:`step` after each optimiser step, :meth:`end_epoch`; wrap the
    test batches with :meth:`evaluating`. ``reads`` counts the times ``stats`` was called (host syncs).
    """

    def __init__(
        self,
        style: str,
        *,
        epochs: int,
        batches: int,
        eval_batches: int,
        images_per_batch: int,
        every: float = 30.0,
        stream: TextIO | None = None,
    ) -> None:
        if style not in STYLES:
            raise ValueError(f"unknown progress style {style!r}; choose one of: {', '.join(STYLES)}")
        self.style = style
        self.epochs, self.batches, self.eval_batches = epochs, batches, eval_batches
        self.images_per_batch = images_per_batch
        self.every = every
        self.stream = stream if stream is not None else sys.stderr
        self.reads = 0
        self._bar: Any = None  # a tqdm bar while an epoch runs with style 'bar'
        self._epoch = 0
        self._batch = 0
        self._rate_seconds = 0.0  # training time of the steps after the session's first one (which compiles)
        self._rate_steps = 0
        self._first_done = False
        self._prev = time.perf_counter()
        self._eval_seconds = 0.0  # the last evaluation's duration
        self._last_print = time.perf_counter()
        self._last_stats = time.perf_counter()

    # ------------------------------------------------------------------ ETA
    def seconds_per_batch(self) -> float | None:
        if self._rate_steps < 1:
            return None
        return self._rate_seconds / self._rate_steps

    def eta(self) -> float | None:
        """Seconds left in the whole run: the remaining training batches at the measured rate plus the evaluations."""
        per = self.seconds_per_batch()
        if per is None:
            return None
        left_batches = self.batches - self._batch + (self.epochs - self._epoch) * self.batches
        left_evals = self.epochs - self._epoch + 1
        return left_batches * per + left_evals * self._eval_seconds

    # --------------------------------------------------------------- epochs
    def start_epoch(self, epoch: int, batch: int) -> None:
        self._epoch, self._batch = epoch, batch
        self._epoch_start = self._prev = time.perf_counter()
        self._epoch_start_batch = batch
        if self.style == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.batches,
                initial=batch,
                leave=False,
                desc=f"epoch {epoch}/{self.epochs}",
                unit="batch",
                dynamic_ncols=True,
                file=self.stream,
            )

    def step(self, batch: int, stats: Stats) -> None:
        """Batch ``batch`` (1-based, this epoch) is done; print or refresh if it is time (reads ``stats`` then)."""
        now = time.perf_counter()
        self._batch = batch
        if self._first_done:
            self._rate_seconds += now - self._prev
            self._rate_steps += 1
        self._first_done = True
        self._prev = now
        if self.style == "off":
            return
        if self.style == "bar":
            self._bar.update(1)
            if now - self._last_stats >= BAR_STATS_EVERY or batch == self.batches:
                self._last_stats = now
                loss, acc = self._read(stats)
                self._bar.set_postfix_str(f"loss {loss:.3f} acc {100 * acc:.1f}% {self._speed(now)}", refresh=False)
            return
        if now - self._last_print >= self.every:
            self._last_print = now
            loss, acc = self._read(stats)
            print(
                f"epoch {self._epoch}/{self.epochs} batch {batch}/{self.batches}  "
                f"loss {loss:.4f} acc {100 * acc:.2f}%  {self._speed(now)}",
                file=self.stream,
                flush=True,
            )

    def end_epoch(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _read(self, stats: Stats) -> tuple[float, float]:
        self.reads += 1
        return stats()

    def _speed(self, now: float) -> str:
        done = self._batch - self._epoch_start_batch
        ips = done * self.images_per_batch / max(now - self._epoch_start, 1e-9)
        eta = self.eta()
        return f"{ips:.0f} img/s  run eta {clock(eta) if eta is not None else '?'}"

    # ------------------------------------------------------------ evaluation
    def evaluating(self, batches):
        """Yield from ``batches`` (the test batches), reporting as they go; records the evaluation's duration."""
        start = time.perf_counter()
        bar = None
        if self.style == "bar":
            from tqdm.auto import tqdm

            bar = tqdm(
                total=self.eval_batches,
                leave=False,
                desc=f"eval {self._epoch}/{self.epochs}",
                unit="batch",
                dynamic_ncols=True,
                file=self.stream,
            )
        try:
            for i, item in enumerate(batches, 1):
                yield item
                if bar is not None:
                    bar.update(1)
                elif self.style == "lines":
                    now = time.perf_counter()
                    if now - self._last_print >= self.every:
                        self._last_print = now
                        print(
                            f"epoch {self._epoch}/{self.epochs} evaluating: batch {i}/{self.eval_batches}",
                            file=self.stream,
                            flush=True,
                        )
        finally:
            if bar is not None:
                bar.close()
            self._eval_seconds = time.perf_counter() - start
