"""The version lives in one place, ``contdepth.__version__``; packaging metadata is read from it."""

import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.version import InvalidVersion, Version

import contdepth

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_a_valid_pep440_string_in_canonical_form():
    try:
        parsed = Version(contdepth.__version__)
    except InvalidVersion:
        pytest.fail(f"contdepth.__version__ = {contdepth.__version__!r} is not a PEP 440 version")
    assert str(parsed) == contdepth.__version__, "write the version in its canonical PEP 440 form"


def test_pyproject_reads_the_version_from_the_package_and_states_none_of_its_own():
    text = (ROOT / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^version\s*=", project, flags=re.M), "pyproject.toml repeats the version"
    assert re.search(r'^dynamic\s*=\s*\[[^\]]*"version"', project, flags=re.M)
    assert re.search(r'^version\s*=\s*\{\s*attr\s*=\s*"contdepth.__version__"\s*\}', text, flags=re.M)


def test_installed_metadata_agrees_with_the_package():
    try:
        installed = importlib.metadata.version("contdepth")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("contdepth is not installed (run from a plain checkout)")
    assert installed == contdepth.__version__, (
        f"installed metadata says {installed}, contdepth.__version__ says {contdepth.__version__}: reinstall "
        "(pip install -e .)"
    )
