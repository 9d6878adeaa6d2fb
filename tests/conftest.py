"""Fixtures shared by the test modules, and the slow tier (``--runslow`` or ``CONTDEPTH_SLOW_TESTS=1``)."""

from __future__ import annotations

import os

import pytest
import torch

from contdepth.data import write_fake_cifar

SLOW_ENV = "CONTDEPTH_SLOW_TESTS"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help=f"also run the slow tier (or set {SLOW_ENV}=1)")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (minutes each) are skipped unless asked for."""
    if config.getoption("--runslow") or os.environ.get(SLOW_ENV, "") not in ("", "0"):
        return
    skip = pytest.mark.skip(reason=f"the slow tier: pass --runslow or set {SLOW_ENV}=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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
