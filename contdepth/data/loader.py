"""A loader that keeps a whole split on the training device and augments batches there.

The split is one uint8 tensor ``(N, 3, 32, 32)`` on the device. A training epoch draws, from a
seeded ``torch.Generator`` on that device, a permutation and per-sample crop offsets and flips
for all N samples at once; each batch is then a pad-4 + random 32x32 crop + horizontal flip done
by one batched indexing operator, and a normalisation. No per-image Python, no worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .cifar import Split


@dataclass
class EpochPlan:
    """One epoch's random draws, shape ``(N,)`` each: sample order, crop offsets (pixels), flips."""

    order: Tensor
    dy: Tensor
    dx: Tensor
    flip: Tensor


class DeviceLoader:
    """Batches ``(x, y)`` of a split held on ``device``: x float ``(B, 3, 32, 32)`` normalised, y int64 ``(B,)``.

    Args:
        split: the images and labels (moved to ``device`` once).
        batch_size: the global batch size (all processes together).
        train: shuffle and augment (pad ``pad`` + random crop + flip) and drop the last partial
            batch; otherwise every example once, in order, un-augmented.
        mean, std: per-channel statistics of images scaled to [0, 1].
        seed: seed of the loader's own generator (training order and augmentation).
        rank, world: this process's shard. Training splits each global batch into ``world``
            equal contiguous shards (so the data seen per optimiser step does not depend on the
            number of processes); evaluation gives rank r the batches r, r + world, ...
        channels_last: yield x in ``torch.channels_last`` memory format.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        *,
        train: bool,
        mean: Sequence[float],
        std: Sequence[float],
        device: str | torch.device = "cpu",
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        channels_last: bool = False,
        pad: int = 4,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world} processes")
        if train and batch_size % world:
            raise ValueError(f"batch size {batch_size} does not split evenly over {world} processes")
        if train and len(split) < batch_size:
            raise ValueError(f"{len(split)} training images are fewer than one batch of {batch_size}")
        self.device = torch.device(device)
        self.images = split.images.to(self.device, torch.uint8).contiguous()
        self.labels = split.labels.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.train = train
        self.rank, self.world = rank, world
        self.channels_last = channels_last
        self.pad = pad
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = -mean_t / std_t
        if channels_last:  # whole (1, C, H, W) planes: a (1, C, 1, 1) factor would make the innermost loop C long
            plane = (1, *self.images.shape[1:])
            self._scale = self._scale.expand(plane).contiguous(memory_format=torch.channels_last)
            self._shift = self._shift.expand(plane).contiguous(memory_format=torch.channels_last)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self._epoch_state = self.generator.get_state()
        self._plan: EpochPlan | None = None

    # ------------------------------------------------------------ bookkeeping
    @property
    def num_examples(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_batches(self) -> int:
        """Global batches per epoch (training: full batches only)."""
        n = self.num_examples
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def __len__(self) -> int:
        """Batches this process sees per epoch."""
        if self.train:
            return self.num_batches
        return len(range(self.rank, self.num_batches, self.world))

    def get_state(self) -> Tensor:
        """The generator state from which the current (or next) epoch's draws are replayed."""
        return self._epoch_state.clone()

    def set_state(self, state: Tensor) -> None:
        self.generator.set_state(state)
        self._epoch_state = state.clone()
        self._plan = None

    # --------------------------------------------------------------- drawing
    def begin_epoch(self) -> None:
        """Draw the epoch's order, crops and flips; later batches read them (training only)."""
        if not self.train:
            return
        self._epoch_state = self.generator.get_state()
        n, g, dev = self.num_examples, self.generator, self.device
        order = torch.randperm(n, generator=g, device=dev)
        offsets = torch.randint(0, 2 * self.pad + 1, (2, n), generator=g, device=dev)
        flip = torch.randint(0, 2, (n,), generator=g, device=dev).bool()
        self._plan = EpochPlan(order, offsets[0], offsets[1], flip)

    def end_epoch(self) -> None:
        """Mark the epoch finished: the saved state now replays the next one."""
        self._epoch_state = self.generator.get_state()
        self._plan = None

    def _augment(self, images: Tensor, dy: Tensor, dx: Tensor, flip: Tensor) -> Tensor:
        """Pad (zeros), crop at ``(dy, dx)`` and mirror where ``flip``: uint8 ``(B, C, H, W)`` in and out
        (channels-last strides with ``channels_last``).

        One indexing operator: the mirror of the crop at ``dx`` is the crop at ``2 pad - dx`` of the mirrored
        padded image, so each sample's window is read from the padded batch or its mirror, stacked.
        """
        b, c, h, w = images.shape
        p, n = self.pad, 2 * self.pad + 1  # n crop offsets per axis
        padded = F.pad(images, (p, p, p, p))
        both = torch.cat([padded, padded.flip(3)])  # (2B, C, H + 2p, W + 2p)
        s_b, s_c, s_h, s_w = both.stride()
        if self.channels_last:  # windows (2B, dy, dx, H, W, C): the crops come out channels-last
            windows = both.as_strided((2 * b, n, n, h, w, c), (s_b, s_h, s_w, s_h, s_w, s_c))
        else:  # windows (2B, dy, dx, C, H, W)
            windows = both.as_strided((2 * b, n, n, c, h, w), (s_b, s_h, s_w, s_c, s_h, s_w))
        source = torch.arange(b, device=images.device) + b * flip.long()
        out = windows[source, dy, torch.where(flip, 2 * p - dx, dx)]
        return out.permute(0, 3, 1, 2) if self.channels_last else out

    def _finish(self, images: Tensor) -> Tensor:
        """uint8 images as normalised float32, channels-last with ``channels_last`` (laid out at 1 byte a value)."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)  # no copy when they are already
        return images.float().mul_(self._scale).add_(self._shift)

    # ------------------------------------------------------------- iterating
    def batches(self, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """This process's batches of the epoch, from global batch ``start`` on."""
        if not self.train:
            for i in range(self.rank, self.num_batches, self.world):
                sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
                yield self._finish(self.images[sl]), self.labels[sl]
            return
        if self._plan is None:
            self.begin_epoch()
        plan = self._plan
        assert plan is not None  # begin_epoch draws it on training loaders
        shard = self.batch_size // self.world
        for i in range(start, self.num_batches):
            lo = i * self.batch_size + self.rank * shard
            idx = plan.order[lo : lo + shard]
            images = self.images.index_select(0, idx)
            x = self._augment(images, plan.dy[lo : lo + shard], plan.dx[lo : lo + shard], plan.flip[lo : lo + shard])
            yield self._finish(x), self.labels.index_select(0, idx)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        """One whole epoch (training: drawn now, and the generator advanced)."""
        if self.train:
            self.begin_epoch()
        yield from self.batches()
        if self.train:
            self.end_epoch()
