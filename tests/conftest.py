"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
import torch

from contdepth.data import write_fake_cifar


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module: small convs on a shared 2-core CPU run faster (and steadier) so."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fake_cifar10(tmp_path_factory):
    """A data folder holding a tiny CIFAR-10 in the standard layout (40 training, 32 test images)."""
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root, "cifar10", train=40, test=32)
    return root
