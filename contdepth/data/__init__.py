"""CIFAR data without torchvision: download, readers for the standard python layout, a device-resident loader.

>>> from contdepth.data import load_cifar, DeviceLoader     # doctest: +SKIP
>>> data = load_cifar("cifar10", "data")                     # DIR/cifar-10-batches-py/
>>> train = DeviceLoader(data.train, batch_size=128, train=True, device="cuda", seed=0)
"""

from .cifar import DATASETS, CifarData, DataError, Split, load_cifar
from .loader import DeviceLoader
from .synthetic import write_fake_cifar

__all__ = ["DATASETS", "CifarData", "DataError", "DeviceLoader", "Split", "load_cifar", "write_fake_cifar"]
