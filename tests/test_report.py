"""The published numbers: every generated block of the pages agrees with the committed JSON (tools.report)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.report import check, freshness, rewrite
from tools.report.__main__ import main
from tools.report.check import pages
from tools.report.markers import MarkerError, find_blocks, replace_blocks
from tools.report.registry import load_blocks

ROOT = Path(__file__).resolve().parents[1]
REFINEMENT = "benchmarks/results/refinement.json"


def copy_checkout(dest: Path) -> Path:
    """The pages and every result file the blocks and the freshness check read, without .git."""
    wanted = {p.relative_to(ROOT).as_posix() for p in pages(ROOT)}
    wanted |= set(freshness.MEASURES) | set(freshness.PINNED)
    for b in load_blocks().values():
        for pattern in b.sources:
            wanted |= {p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern)}
    for rel in wanted:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    return dest


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def test_the_pages_agree_with_the_committed_results():
    assert check(ROOT) == []
    assert main(["--check"]) == 0


def test_every_registered_block_is_shown_and_every_page_names_known_blocks():
    shown = {m.name for page in pages(ROOT) for m in find_blocks(page.read_text())}
    assert shown == set(load_blocks())


def test_a_changed_number_fails_the_check_until_the_pages_are_rewritten(tmp_path):
    root = copy_checkout(tmp_path)
    edit_json(root / REFINEMENT, lambda d: d["models"][0]["rows"][0].update(test_acc=0.8123))
    problems = check(root)
    assert any("README.md: block 'headline' differs" in p for p in problems), problems
    assert any("benchmarks/README.md: block 'refinement' differs" in p for p in problems), problems
    assert rewrite(root)
    assert check(root) == []
    assert "81.2%" in (root / "README.md").read_text()


def test_a_result_older_than_the_code_it_describes_fails(tmp_path):
    root = copy_checkout(tmp_path)
    assert check(root) == []  # no .git: older or newer comes from the dates

    def older(d):
        d["provenance"].update(git_commit="0" * 40, date="2026-11-24T12:00:00+00:00")

    edit_json(root / "benchmarks/results/throughput.json", older)
    problems = check(root)
    assert any(p.startswith("benchmarks/results/throughput.json: measured at 0000000") for p in problems), problems
    assert any(freshness.NOISE_SOURCE.commit in p for p in problems)


def test_a_pinned_result_is_shown_with_the_code_it_describes(tmp_path):
    root = copy_checkout(tmp_path)
    page = root / "benchmarks/README.md"
    page.write_text(page.read_text().replace("before the noise source moved", "before the noise moved", 1))
    assert any("block 'instructions' differs" in p for p in check(root))
    later = "2027-01-01T00:00:00+00:00"
    edit_json(root / "benchmarks/results/instructions.json", lambda d: d["provenance"].update(date=later))
    assert any("instructions.json: pinned to the code before" in p for p in check(root))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("<!-- report:a -->\nx\n", "not closed"),
        ("<!-- report:a -->\n<!-- report:b -->\n<!-- /report:b -->\n<!-- /report:a -->\n", "inside block 'a'"),
        ("x <!-- report:a --> y\n", "outside a block"),
        ("<!-- /report:a -->\n", "outside a block"),
    ],
)
def test_malformed_markers_are_refused(text, match):
    with pytest.raises(MarkerError, match=match):
        find_blocks(text)


def test_blocks_are_rewritten_between_their_markers_and_the_rest_is_kept():
    text = "head\n<!-- report:a -->\nold\n<!-- /report:a -->\ntail <!-- a comment -->\n"
    assert replace_blocks(text, lambda name: f"| {name} |") == (
        "head\n<!-- report:a -->\n\n| a |\n\n<!-- /report:a -->\ntail <!-- a comment -->\n"
    )


def test_unknown_blocks_are_reported(tmp_path):
    root = copy_checkout(tmp_path)
    (root / "docs/extra.md").write_text("<!-- report:no-such-block -->\n<!-- /report:no-such-block -->\n")
    assert any("docs/extra.md: unknown block 'no-such-block'" in p for p in check(root))


def test_the_dates_of_the_recorded_changes_are_their_commits_author_dates():
    for change in freshness.CHANGES:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "show", "-s", "--format=%aI", change.commit], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip("the checkout's history does not hold the recorded changes (a shallow clone)")
        assert done.stdout.strip() == change.date, change


def test_every_committed_run_records_its_copy_of_the_data():
    runs = sorted(ROOT.glob("results/*/*/results.json"))
    assert runs
    for path in runs:
        data = json.loads(path.read_text()).get("data")
        assert isinstance(data, dict) and len(data.get("fingerprint", "")) == 32, path


def test_the_sde_headline_fits_no_order_to_gaps_lost_in_the_noise(tmp_path):
    from tools.report.blocks.dial import SDE, sde_headline
    from tools.report.data import Results

    law = {"order_successive": 1.0, "order_successive_ci95": [0.8, 1.2], "local_orders_successive": [0.9, 1.0]}
    gap = {"step_sizes": [1.0, 0.5], "order": 0.4, "order_stderr": 0.1, "order_ci95": [0.2, 0.6]}
    net = {"run": "net-s0", "trained_law": "uniform", "laws": {"trained": law}}

    def headline(gaps: list[float]) -> str:
        net["laws"]["gaussian"] = {**law, "gap_to_trained": {**gap, "gaps": gaps, "gap_stderr": [1e-3, 1e-3]}}
        root = tmp_path / str(gaps)  # a root of its own: result files are read once per path
        (root / SDE).parent.mkdir(parents=True)
        (root / SDE).write_text(json.dumps({"models": [net]}))
        return sde_headline(Results(root))

    assert "no law's gap to the trained law reaches 3 standard errors" in headline([2e-3, -2.5e-3])
    resolved = headline([5e-3, 2e-3])  # one level 5 standard errors wide: the gap is there, with its order
    assert "closes at order 0.40" in resolved and "no law's gap" not in resolved
