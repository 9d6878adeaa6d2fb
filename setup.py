"""The package and, as its data, the trained runs of ``results/`` (``pyproject.toml`` holds everything else).

``results/`` is mapped to ``contdepth/_shipped`` so that a wheel carries each shipped run's ``config.json``,
``results.json`` and ``weights.fp16.pt`` (``contdepth.pretrained``) without a second copy in the repository;
``pyproject.toml`` cannot add a mapped package beside the ones it finds, so the list of packages is made here.
"""

from setuptools import find_namespace_packages, setup

SHIPPED_RUN_FILES = ["*/*/config.json", "*/*/results.json", "*/*/weights.fp16.pt"]

setup(
    # contdepth only: tools/ (the offline GPU tooling) and benchmarks/ run from a checkout and are not installed
    packages=[*find_namespace_packages(include=["contdepth*"]), "contdepth._shipped"],
    package_dir={"contdepth._shipped": "results"},
    package_data={"contdepth._shipped": SHIPPED_RUN_FILES},
)
