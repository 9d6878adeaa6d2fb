"""The committed result files, read once per check, and the caption that cites where a block's numbers come from."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any


class Results:
    """The result files under a repository root (JSON and JSON lines), each read once."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def json(self, path: str) -> Any:
        return _read_json(self.root / path)

    def jsonl(self, path: str) -> list[Any]:
        return _read_jsonl(self.root / path)

    def glob(self, pattern: str) -> list[str]:
        """Repository paths matching ``pattern``, sorted."""
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.glob(pattern))


@cache
def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@cache
def _read_jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def clear_cache() -> None:
    """Forget files read so far (a test that edits a file reads it again)."""
    _read_json.cache_clear()
    _read_jsonl.cache_clear()


def commit_text(commit: str) -> str:
    """``'5933e68…'`` -> ``5933e68``; a checkout with uncommitted edits is said so."""
    if not commit:
        return "an unrecorded commit"
    short = commit[:7]
    return f"{short} with uncommitted edits" if commit.endswith("+dirty") else short


def measured(prov: dict[str, Any]) -> str:
    """Where and when a result was measured, from its provenance: commit, date, device."""
    parts = [f"commit {commit_text(str(prov.get('git_commit') or ''))}"]
    if prov.get("date"):
        parts.append(str(prov["date"])[:10])
    if prov.get("device"):
        parts.append(str(prov["device"]))
    return ", ".join(parts)


def source(path: str, fields: str, prov: dict[str, Any] | None = None, command: bool = True) -> str:
    """The caption under a generated table: the file and fields it shows, and how they were measured."""
    text = f"Source: `{path}` ({fields})"
    if prov:
        text += f"; {measured(prov)}"
        if command and prov.get("command"):
            text += f"; `{prov['command']}`"
    return f"*{text}.*"
