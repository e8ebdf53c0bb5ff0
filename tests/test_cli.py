"""The ``brainfuse`` command line: run writes results and reports spikes, validate prints a table and
sets the exit status, and every user error is one line on stderr with exit status 2."""

import csv
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from brainfuse_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
SQUID = ROOT / "projects" / "squid_axon.json"


def _bad_squid(tmp_path, edit):
    data = json.loads(SQUID.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_run_squid_writes_results_and_counts_spikes(tmp_path, capsys):
    out = tmp_path / "squid"
    assert main(["run", str(SQUID), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "axon: 7 spikes" in printed
    assert str(out) in printed
    for name in ("traces.npz", "spikes.csv", "summary.json", "plot.png"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "summary.json").read_text())["populations"]["axon"]["spikes"] == 7
    with open(out / "spikes.csv") as handle:
        times = [float(row["time_ms"]) for row in csv.DictReader(handle)]
    # Repetitive firing of the HH squid axon at 10 µA/cm², 6.3 °C: about 68 Hz once past the first spike.
    assert 1000 / np.diff(times).mean() == pytest.approx(68, abs=1.5)
    traces = np.load(out / "traces.npz")
    assert traces["axon.v"].shape == (1, 1, 4001) and "axon.hh_k.n" in traces


def test_run_defaults_to_out_project_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(SQUID), "--duration", "5"]) == 0
    assert (tmp_path / "out" / "squid_axon" / "summary.json").exists()
    assert json.loads((tmp_path / "out" / "squid_axon" / "summary.json").read_text())["duration_ms"] == 5


def test_run_short_cobahh(tmp_path, capsys):
    assert main(["run", str(ROOT / "projects" / "cobahh.json"), "--duration", "2", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "E: " in printed and "over 3200 cells" in printed
    assert "I: " in printed and "over 800 cells" in printed


def test_bad_project_exits_2_with_one_line(tmp_path):
    bad = _bad_squid(tmp_path, lambda d: d["cells"]["axon"]["morphology"]["soma"].update(diameter=-2))
    done = subprocess.run([sys.executable, "-m", "brainfuse_core.cli", "run", str(bad), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "error: cells.axon.morphology.soma.diameter: must be a positive number of µm, got -2\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, fragment", [
    ('{"format": "brainfuse-project",\n "version": 1,,}', "line 2, column 15: malformed JSON"),
    ('{"format": "brainfuse-project", "version": 9}', "version: this file uses format version 9"),
])
def test_bad_file_exits_2(tmp_path, capsys, text, fragment):
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err


def test_unstable_simulation_exits_2(tmp_path, capsys):
    bad = _bad_squid(tmp_path, lambda d: d["stimuli"][0].update(amp=1e12))
    assert main(["run", str(bad), "--duration", "1", "--out", str(tmp_path / "out")]) == 2
    # The progress bar, drawn with carriage returns, is wiped before the error line.
    err = capsys.readouterr().err.rsplit("\r", 1)[-1]
    assert err.startswith("error: population 'axon': membrane voltage became") and err.count("\n") == 1


def test_missing_project_exits_2(tmp_path, capsys):
    assert main(["run", str(tmp_path / "absent.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def _fake_validation(monkeypatch, results):
    module = types.ModuleType("brainfuse_core.validation")
    module.calls = []

    def run_cases(quick):
        module.calls.append(quick)
        return results

    module.run_cases = run_cases
    monkeypatch.setitem(sys.modules, "brainfuse_core.validation", module)
    return module


def test_validate_prints_table_and_fails_on_a_failed_case(monkeypatch, capsys):
    module = _fake_validation(monkeypatch, [
        {"name": "squid_vs_neuron", "metric": "max |Δt| (ms)", "value": 0.0012, "limit": 0.01, "passed": True, "note": ""},
        types.SimpleNamespace(name="rallpack1", metric="rms error", value=0.02, limit=0.001, passed=False, note="too coarse"),
        types.SimpleNamespace(name="order", metric="observed order", value=1.93, limit=(1.8, float("inf")), passed=np.True_,
                              note=""),
        {"name": "reported", "metric": "wall time (s)", "value": 3.5, "limit": None, "passed": None, "note": "not judged"},
    ])
    assert main(["validate", "--quick"]) == 1
    assert module.calls == [True]
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].split() == ["case", "metric", "value", "limit", "result", "note"]
    assert "squid_vs_neuron" in lines[2] and "0.0012" in lines[2] and "pass" in lines[2]
    assert "rallpack1" in lines[3] and "FAIL" in lines[3] and "too coarse" in lines[3]
    assert "[1.8, inf]" in lines[4] and "pass" in lines[4]
    assert "2 of 3 judged results passed; failed: rallpack1" in printed


def test_validate_passes(monkeypatch, capsys):
    module = _fake_validation(monkeypatch, [{"name": "a", "metric": "m", "value": 1.0, "limit": 2.0, "passed": True, "note": ""}])
    assert main(["validate"]) == 0
    assert module.calls == [False]


def test_validate_without_the_module_exits_2(monkeypatch, capsys):
    # None in sys.modules makes the import fail as if the module were absent.
    monkeypatch.setitem(sys.modules, "brainfuse_core.validation", None)
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "brainfuse_core.validation" in err and err.count("\n") == 1
