"""The run folder's format has one owner: its file names, the state of a run and its results are read in one place."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from contdepth.runs import files, folder
from contdepth.runs.lock import FolderLock
from contdepth.runs.records import DamagedResults, read_results
from contdepth.runs.state import NO_PROGRESS, FolderState, RunState, folder_state, run_state

REPO = Path(__file__).resolve().parents[1]
NAMES = {
    files.CHECKPOINT,
    files.CONFIG,
    files.METRICS,
    files.RESULTS,
    files.WEIGHTS,
    files.LOG,
    *files.PLOTS,
}


def test_a_run_is_fresh_resumable_held_or_done(tmp_path):
    run = tmp_path / "run"
    assert run_state(run) is RunState.FRESH  # no folder yet
    run.mkdir()
    (run / files.CONFIG).write_text("{}")
    assert run_state(run) == "fresh"  # files of a start that saved no checkpoint
    (run / files.CHECKPOINT).write_bytes(b"")
    assert run_state(run) is RunState.RESUME and run_state(run) == "resume"
    (run / files.RESULTS).write_text(json.dumps({"complete": False}))
    assert run_state(run) is RunState.RESUME
    with FolderLock(run, what="run"):  # a live process trains there
        assert run_state(run) is RunState.HELD and str(run_state(run)) == "held"
        assert run_state(run, locks=False) is RunState.RESUME
        (run / files.RESULTS).write_text(json.dumps({"complete": True}))
        assert run_state(run) is RunState.DONE  # done, whoever holds the folder
    assert run_state(run) is RunState.DONE


def test_each_folder_state_is_told_by_its_files(tmp_path):
    """What each kind of folder holds (the table in docs/troubleshooting.md), and what run_state makes of it."""
    run = tmp_path / "run"
    cases = [
        ({}, FolderState.ABSENT, RunState.FRESH),
        ({".lock": "123", files.LOG: "a study's log"}, FolderState.EMPTY, RunState.FRESH),
        ({files.CONFIG: "{}"}, FolderState.STARTED, RunState.FRESH),
        ({files.CONFIG: "{}", "checkpoint.pt.tmp": "half"}, FolderState.STARTED, RunState.FRESH),
        (  # a first epoch that diverged: its results say so, no epoch was kept
            {files.METRICS: "\n", files.RESULTS: json.dumps({"complete": False, "epochs_done": 0})},
            FolderState.STARTED,
            RunState.FRESH,
        ),
        ({files.CHECKPOINT: "", "checkpoint.pt.tmp": "half"}, FolderState.SAVED, RunState.RESUME),
        ({files.CHECKPOINT: "", files.RESULTS: "{damaged"}, FolderState.SAVED, RunState.RESUME),
        ({files.CHECKPOINT: "", files.RESULTS: json.dumps({"complete": True})}, FolderState.UNFINISHED, "done"),
        ({files.WEIGHTS: "", files.RESULTS: json.dumps({"complete": True})}, FolderState.DONE, RunState.DONE),
        ({files.METRICS: '{"epoch": 1}\n'}, FolderState.LOST, RunState.FRESH),
        ({files.RESULTS: json.dumps({"complete": False, "epochs_done": 2})}, FolderState.LOST, RunState.FRESH),
        ({files.WEIGHTS: ""}, FolderState.LOST, RunState.FRESH),
    ]
    for written, state, coarse in cases:
        if run.exists():
            shutil.rmtree(run)
        if written:
            run.mkdir()
        for name, text in written.items():
            (run / name).write_text(text)
        assert (folder_state(run), run_state(run)) == (state, coarse), written
    assert NO_PROGRESS == (FolderState.ABSENT, FolderState.EMPTY, FolderState.STARTED)


def test_results_are_read_once_and_damage_says_why(tmp_path):
    assert read_results(tmp_path) is None
    (tmp_path / files.RESULTS).write_text('{"complete": tr')
    assert read_results(tmp_path) is None and run_state(tmp_path) is RunState.FRESH
    with pytest.raises(DamagedResults, match="Expecting value"):
        read_results(tmp_path, strict=True)
    (tmp_path / files.RESULTS).write_text("[1, 2]")
    with pytest.raises(DamagedResults, match="holds a list"):
        read_results(tmp_path, strict=True)
    (tmp_path / files.RESULTS).write_bytes(b"\xff\xfe")
    with pytest.raises(DamagedResults):
        read_results(tmp_path, strict=True)
    (tmp_path / files.RESULTS).write_text(json.dumps({"complete": True, "final_test_error": 8.5}))
    assert read_results(tmp_path, strict=True) == {"complete": True, "final_test_error": 8.5}


def _named_in(path: Path) -> list[str]:
    """The run-file names that ``path`` spells as string literals (docstrings and comments aside)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in NAMES and id(node) not in docstrings
    ]


def test_the_run_file_names_are_spelled_only_in_runs_files():
    sources = [*(REPO / "contdepth").rglob("*.py"), *(REPO / "tools").rglob("*.py")]
    sources += (REPO / "benchmarks").glob("*.py")
    spelled = {str(p.relative_to(REPO)): names for p in sources if (names := _named_in(p))}
    assert set(spelled) == {"contdepth/runs/files.py"}, spelled


def test_run_exists_is_a_deprecated_name_of_run_folder_error():
    import contdepth.train as train

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from contdepth.train import RunExists
    assert RunExists is train.RunFolderError is folder.RunFolderError
    assert caught and all(w.category is DeprecationWarning and "RunFolderError" in str(w.message) for w in caught)
    with pytest.raises(AttributeError):
        train.NoSuchName  # noqa: B018


def test_the_run_folder_format_stands_below_training():
    """contdepth.runs imports nothing of contdepth.train (or of the studies, analysis or tools above it)."""
    above = ("contdepth.train", "contdepth.studies", "contdepth.analysis", "tools")
    for path in (REPO / "contdepth" / "runs").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level + (node.module or "")).replace("..", "contdepth.", 1)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not [n for n in names if n.startswith(above)], (path.name, names)
    code = "import sys, contdepth.runs; print(sorted(m for m in sys.modules if m.startswith('contdepth.train')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
