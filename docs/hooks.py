"""MkDocs hooks: pages kept elsewhere in the repository are published as they are.

``benchmarks/README.md`` (with its figures), ``tools/offline/README.md``, ``CONTRIBUTING.md`` and
``CHANGELOG.md`` have one source each; the site shows them under ``benchmarks/details.md``,
``offline-tooling.md``, ``contributing.md`` and ``changelog.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]

# site path -> repository file
PAGES = {
    "benchmarks/details.md": "benchmarks/README.md",
    "offline-tooling.md": "tools/offline/README.md",
    "contributing.md": "CONTRIBUTING.md",
    "changelog.md": "CHANGELOG.md",
}
FIGURES = ("benchmarks/results", "*.png")  # the benchmark README's figures, at the same relative paths


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    for uri, source in PAGES.items():
        files.append(File.generated(config, uri, abs_src_path=str(ROOT / source)))
    folder, pattern = FIGURES
    for figure in sorted((ROOT / folder).glob(pattern)):
        files.append(File.generated(config, f"{folder}/{figure.name}", abs_src_path=str(figure)))
    return files
