"""The documented commands leave a clean clone clean, and the examples fail in one line, not a traceback."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The quick forms of the commands README.md and the examples document (the full forms write to the
# same places). Scripts without a quick form are checked through their --out default below.
QUICK_COMMANDS = [
    ["-m", "contdepth", "demo", "--fast", "--no-progress"],  # scripts/demo.sh's call adds --out runs/demo
    ["examples/kolmogorov_toy.py", "--quick", "--seeds", "1"],
    ["examples/quickstart.py"],
    ["-m", "contdepth", "reproduce", "lu2018-cifar10", "--out", "runs/lu2018", "--seeds", "0,1", "--dry-run"],
]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the project (this is not one)")
    path = tmp_path_factory.mktemp("clone") / "contdepth"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(path)], check=True)
    assert _git("status", "--porcelain", cwd=path) == ""
    return path


def _env(clone: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(clone), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def test_documented_commands_leave_a_clean_clone_clean(clone):
    for args in QUICK_COMMANDS:
        if not args[0].startswith("-") and not (clone / args[0]).is_file():
            continue  # a script the checkout no longer has
        proc = subprocess.run(
            [sys.executable, *args], cwd=clone, env=_env(clone), capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert _git("status", "--porcelain", cwd=clone) == "", f"python3 {' '.join(args)} changed the clone"


def _out_defaults(script: Path) -> list[ast.expr]:
    """The ``default=`` of every ``add_argument("--out", ...)`` in ``script``."""
    found = []
    for node in ast.walk(ast.parse(script.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
            and any(isinstance(a, ast.Constant) and a.value == "--out" for a in node.args)
        ):
            found += [k.value for k in node.keywords if k.arg == "default"]
    return found


def test_every_script_writes_to_a_git_ignored_folder_by_default(clone):
    scripts = sorted([*(ROOT / "examples").glob("*.py"), *(ROOT / "benchmarks").glob("[!_]*.py")])
    assert len(scripts) >= 5

    def ignored(rel: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", f"{rel}/x.json"], cwd=clone).returncode == 0

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from _common import DEFAULT_OUT
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert ignored(DEFAULT_OUT.relative_to(ROOT).as_posix())
    for script in scripts:
        for default in _out_defaults(script):
            if isinstance(default, ast.Name):
                assert default.id == "DEFAULT_OUT", f"{script.name}: --out defaults to {default.id}"
            else:
                assert isinstance(default, ast.Constant) and ignored(default.value), (
                    f"{script.name}: --out defaults to {ast.unparse(default)}, not a git-ignored folder"
                )


def test_example_on_a_damaged_run_says_so_in_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")  # a first run's checkpoint, emptied
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "cifar_classifier.py"),
            "--data-dir",
            str(tmp_path),
            "--out",
            str(run),
            "--model",
            "resnet20",
            "--scheme",
            "euler",
        ],
        env=_env(ROOT),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("cifar_classifier.py: error:") and "--overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
