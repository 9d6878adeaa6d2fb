"""benchmarks/_common.Measurements: a benchmark's JSON continues, keeps the nets it does not measure, and refuses
to mix settings."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
_common = pytest.importorskip("_common")


def _runs(path: Path) -> dict[str, dict]:
    return {net["run"]: net for net in json.loads(path.read_text())["models"]}


def test_nets_added_one_at_a_time_are_all_kept(tmp_path):
    path = tmp_path / "bench.json"
    first = _common.Measurements(path, "setting A", seed=0)
    first.add({"run": "a", "rows": [1]}, "rows")
    first.checkpoint({"run": "b", "rows": [1]})  # stopped while measuring b

    second = _common.Measurements(path, "setting A", seed=0)
    assert second.before["b"]["rows"] == [1] and not second.before["b"]["complete"]
    second.add({"run": "c", "rows": [3]}, "rows")
    runs = _runs(path)
    assert list(runs) == ["a", "b", "c"]
    assert runs["a"]["complete"] and runs["c"]["complete"] and not runs["b"]["complete"]
    assert runs["c"]["provenance"]["seed"] == 0 and "command" in runs["c"]["provenance"]

    second.add({"run": "b", "rows": [1, 2]}, "rows")  # b finished: replaced in place
    assert _runs(path)["b"] == {**_runs(path)["b"], "rows": [1, 2], "complete": True}
    assert list(_runs(path)) == ["a", "b", "c"]


def test_another_setting_is_refused_unless_replaced(tmp_path):
    path = tmp_path / "bench.json"
    _common.Measurements(path, "setting A", seed=0).add({"run": "a", "rows": []}, "rows")
    with pytest.raises(SystemExit, match="another setting"):
        _common.Measurements(path, "setting B", seed=0)
    fresh = _common.Measurements(path, "setting B", seed=0, replace=True)
    assert fresh.before == {}
    fresh.add({"run": "z", "rows": []}, "rows")
    assert list(_runs(path)) == ["z"]


def test_an_unreadable_file_is_refused_not_overwritten(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text('{"setting": "setting A", "models": [{"run": "a"')  # cut short
    with pytest.raises(SystemExit, match="cannot be read"):
        _common.Measurements(path, "setting A", seed=0)
    assert path.read_text().endswith('"a"')  # left as it was
    _common.Measurements(path, "setting A", seed=0, replace=True).add({"run": "b", "rows": []}, "rows")
    assert list(_runs(path)) == ["b"] and not list(tmp_path.glob(".*.partial"))


def test_a_complete_net_rerun_with_nothing_new_keeps_the_provenance_that_measured_it(tmp_path, monkeypatch):
    path = tmp_path / "bench.json"
    _common.Measurements(path, "setting A", seed=0).add({"run": "a", "rows": [1]}, "rows")
    first = _runs(path)["a"]["provenance"]
    monkeypatch.setattr(_common, "provenance", lambda seed: {**first, "command": "a later command"})
    again = _common.Measurements(path, "setting A", seed=0)
    again.add({"run": "a", "rows": [1], "summary": {"extra": 1}}, "rows")  # derived fields may change
    assert _runs(path)["a"]["provenance"] == first
    again.add({"run": "a", "rows": [1, 2]}, "rows")  # a new row: this command measured it
    assert _runs(path)["a"]["provenance"]["command"] == "a later command"


def test_an_unfinished_run_is_refused_in_one_line_naming_the_benchmark(tmp_path, monkeypatch):
    refinement = pytest.importorskip("refinement")
    run = tmp_path / "half-trained"
    run.mkdir()
    (run / "results.json").write_text('{"complete": false}')
    monkeypatch.setattr(sys, "argv", ["benchmarks/sde_networks.py"])
    with pytest.raises(SystemExit) as refusal:
        refinement.check_runs([run], tmp_path)
    message = str(refusal.value)
    assert message.startswith("sde_networks: ") and "not a finished run" in message
    assert "reproduce" not in message and len(message.splitlines()) == 1


def test_a_complete_net_whose_rows_come_back_in_another_order_keeps_its_provenance(tmp_path, monkeypatch):
    path = tmp_path / "bench.json"
    rows = [{"scheme": "euler", "steps": 1}, {"scheme": "heun", "steps": 1}, {"scheme": "dopri5", "steps": None}]
    _common.Measurements(path, "setting A", seed=0).add({"run": "a", "rows": rows}, "rows")
    first = _runs(path)["a"]["provenance"]
    monkeypatch.setattr(_common, "provenance", lambda seed: {**first, "command": "a later command"})
    again = _common.Measurements(path, "setting A", seed=0)
    again.add({"run": "a", "rows": [rows[0], rows[2], rows[1]]}, "rows")  # verdict rows first: same rows
    assert _runs(path)["a"]["provenance"] == first
