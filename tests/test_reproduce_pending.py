"""A claim longer than one sitting resumes: the measurements it finished are kept in <out>/raw/pending.json (only
those of this code and vitkit that no claim's raw results hold yet), come back into the cache of a fresh clone
without training again, and leave the file once their claim has finished; an interrupted claim keeps its runs."""

import json
import shutil
import types

import pytest

from vitkit.cli import main
from vitkit.tools import reproduce
from vitkit.tools.reproduce import load_claims, machine, restore_pending, run_claims, save_pending

load_claims()  # puts experiments/ on the path
import common  # noqa: E402
import rules  # noqa: E402


def _measure(out, seed, calls):
    return common.measured(out, {"what": "pending-test", "seed": seed},
                           lambda: calls.append(seed) or {"acc": 50.0 + seed}, code=common.__file__)


def test_kept_measurements_come_back_in_a_fresh_clone_without_training(tmp_path, capsys):
    first, clone, calls = tmp_path / "first", tmp_path / "clone", []
    common.begin()
    _measure(first, 0, calls)
    assert main(["reproduce", "--save-pending", "--out", str(first)]) == 0
    assert "1 finished measurements of unfinished claims kept in" in capsys.readouterr().out
    (kept,) = json.loads((first / "raw" / "pending.json").read_text())
    assert kept["result"] == {"acc": 50.0} and kept["machine"] == machine()
    shutil.copytree(first / "raw", clone / "raw")  # what a commit carries; the cache is git-ignored
    assert restore_pending(clone) == 1
    common.begin()
    assert _measure(clone, 0, calls) == {"acc": 50.0}
    assert calls == [0] and common.LEDGER["cached_runs"] == 1 and common.RAW[0]["machine"] == machine()
    common.begin()


def test_only_unheld_measurements_of_this_code_are_kept(tmp_path):
    calls = []
    common.begin()
    _measure(tmp_path, 0, calls)
    _measure(tmp_path, 1, calls)
    held = common.RAW[0]
    stale = {**common.RAW[1], "key": {"what": "pending-test", "seed": 2}, "code": "0" * 12}  # other code made it
    (tmp_path / "cache" / "stale.json").write_text(json.dumps(stale))
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "C9.json").write_text(json.dumps({"runs": [held]}))  # a finished claim holds seed 0
    assert save_pending(tmp_path) == 1
    assert [e["key"]["seed"] for e in json.loads((tmp_path / "raw" / "pending.json").read_text())] == [1]
    (tmp_path / "raw" / "C9.json").write_text(json.dumps({"runs": common.RAW}))  # now it holds both
    assert save_pending(tmp_path) == 0 and not (tmp_path / "raw" / "pending.json").exists()
    common.begin()


def test_an_interrupted_claim_keeps_its_runs_and_resumes_from_them(tmp_path, monkeypatch):
    calls, logged, sittings = [], [], []

    def run(out, quick, seeds):
        sittings.append(1)
        _measure(out, 0, calls)
        if len(sittings) == 1:
            raise KeyboardInterrupt  # the first sitting stops after its first run
        _measure(out, 1, calls)
        rule = rules.Rule((rules.Part("gain", "seed 1 − seed 0", ">", 0.0, 0.0),))
        return common.ClaimResult("C1", "a test claim", "paper", ["seed"], [[0]], rule, {"gain": [1.0]}, seeds,
                                  quick)

    claim = types.SimpleNamespace(ID="C1", TITLE="a test claim", DEFAULT_SEEDS=(0,), run=run)
    monkeypatch.setattr(reproduce, "load_claims", lambda: {"C1": claim})
    with pytest.raises(KeyboardInterrupt):
        run_claims(["C1"], tmp_path, log=logged.append)
    assert "C1 interrupted: 1 finished measurements are kept in" in logged[-1] and "resumes" in logged[-1]
    shutil.rmtree(tmp_path / "cache")  # a fresh clone: only the committed raw/ is left
    (result,) = run_claims(["C1"], tmp_path, log=logged.append)
    assert calls == [0, 1] and result["cost"]["cached_runs"] == 1  # seed 0 was not trained again
    assert result["machine"] == machine()
    assert [r["key"]["seed"] for r in json.loads((tmp_path / "raw" / "C1.json").read_text())["runs"]] == [0, 1]
    assert not (tmp_path / "raw" / "pending.json").exists()
    common.begin()


def test_a_damaged_pending_file_is_one_sentence(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "pending.json").write_text("<<<<<<< HEAD\n[]")  # as a merge conflict leaves it
    assert main(["reproduce", "C1", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "is not the list of measurements `vitkit reproduce` writes" in err
    assert len(err.splitlines()) == 1
