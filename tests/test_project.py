"""Project files: the shipped examples round-trip exactly and simulate, saving is atomic, and every kind
of bad input is a one-line ProjectError that starts with the path of the field at fault."""

import builtins
import json
import os
import stat
from pathlib import Path

import pytest
import torch

from brainfuse_core import Simulation
from brainfuse_core.errors import ProjectError
from brainfuse_core.project import Project, load_project
from brainfuse_core.project import files

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = sorted((ROOT / "projects").glob("*.json"))
SQUID = ROOT / "projects" / "squid_axon.json"

# A project touching every section and variant of the format that the examples leave out.
FEATURES = {
    "format": "brainfuse-project",
    "version": 1,
    "channels": {
        "my_na": {
            "gbar": 0.12,
            "ion": "na",
            "q10": 3,
            "temperature": 6.3,
            "gates": {
                "m": {"power": 3,
                      "alpha": {"kind": "expression", "expression": "0.1 * explinear((v + 40) / 10) * 10 * scale",
                                "parameters": {"scale": 1.0}},
                      "beta": {"kind": "exp", "rate": 4.0, "midpoint": -65.0, "scale": -18.0}},
                "h": {"power": 1,
                      "inf": {"kind": "tabulated", "points": [-100, -60, -40, 0], "values": [1.0, 0.6, 0.1, 0.0]},
                      "tau": {"kind": "constant", "value": 2.0}},
            },
        },
        "hh_k": {"library": "hh_k", "gbar": 0.036},
    },
    "cells": {
        "neuron": {
            "morphology": {
                "soma": {"length": 20, "diameter": 20},
                "dend": {"length": 200, "diameter": 2, "nseg": 5, "parent": "soma", "parent_x": 1, "region": "basal"},
            },
            "ra": 100,
            "insert": [
                {"channel": "my_na", "where": "soma"},
                {"channel": "hh_k", "where": ["soma", "basal"], "gbar": 0.02},
                {"channel": "leak"},
                {"channel": "ca_hva", "where": "soma"},
                {"channel": "k_ahp", "where": "soma"},
            ],
            "pools": [{"pool": "ca_pool", "where": "soma", "depth": 0.1, "decay": 80, "rest": 5e-05, "gamma": 1}],
        }
    },
    "circuit": {
        "populations": {
            "cells": {"cell": "neuron", "n": 3, "v_init": {"normal": {"mean": -65, "std": 2}, "seed": 4}},
            "noise": {"poisson": {"n": 10, "rate_hz": 50, "seed": 3}},
            "clock": {"spike_times": [[1.0, 2.5], [3.0]]},
        },
        "projections": [
            {"pre": "noise", "post": "cells", "synapse": {"kind": "exp2", "tau_rise": 0.5, "tau_decay": 5, "e_rev": 0},
             "connect": {"rule": "fixed_indegree", "k": 4}, "weight": 0.001, "seed": 1, "delay": 1.0,
             "target": {"section": "dend", "x": 0.5}},
            {"pre": "clock", "post": "cells", "synapse": {"kind": "exp", "tau": 2, "e_rev": 0},
             "connect": {"rule": "explicit", "pairs": [[0, 0], [1, 2]]}, "weight": 0.002, "initial_conductance": 0.001},
            {"pre": "cells", "post": "cells", "synapse": {"kind": "exp", "tau": 10, "e_rev": -80},
             "connect": {"rule": "all_to_all", "allow_self": False}, "weight": 0.0005},
        ],
    },
    "stimuli": [
        {"type": "iclamp", "population": "cells", "amp": [0.1, 0.2], "delay": 1, "dur": 3, "cells": [0]},
        {"type": "pulse_train", "population": "cells", "amp": 0.05, "delay": 0, "width": 1, "interval": 2, "number": 2},
        {"type": "noisy", "population": "cells", "mean": 0.0, "std": 0.01, "seed": 2, "section": "dend", "x": 0.9},
        {"type": "waveform", "population": "cells", "values": [0.0, 0.01, 0.02], "sample_dt": 1.0, "cells": [2]},
        {"type": "vclamp", "population": "cells", "levels": [[2, -65], [1, -20]], "rs": 0.01, "cells": [1], "name": "clamp"},
    ],
    "recordings": [
        {"population": "cells", "variable": "v"},
        {"population": "cells", "variable": "cai", "cells": [0]},
        {"population": "cells", "variable": "my_na.h", "every": 2},
        {"population": "cells", "variable": "v", "section": "dend", "x": 1, "name": "dend_tip"},
    ],
    "run": {"duration": 4, "dt": 0.025, "celsius": 20, "method": "crank_nicolson", "dtype": "float32", "batch": 2},
}


def test_every_example_is_shipped():
    assert {path.stem for path in PROJECTS} >= {"squid_axon", "passive_cable", "hh_axon", "cobahh"}


@pytest.mark.parametrize("path", PROJECTS, ids=lambda path: path.stem)
def test_example_round_trip_is_exact(path, tmp_path):
    project = load_project(path)
    assert project.to_dict() == json.loads(path.read_text(encoding="utf-8"))
    assert Project.from_dict(project.to_dict()).to_dict() == project.to_dict()
    saved = tmp_path / path.name
    project.save(saved)
    assert saved.read_bytes() == path.read_bytes()


def test_every_feature_round_trips_and_runs(tmp_path):
    path = tmp_path / "features.json"
    Project.from_dict(FEATURES).save(path)
    first = path.read_bytes()
    project = load_project(path)
    assert project.to_dict() == FEATURES
    project.save(path)
    assert path.read_bytes() == first

    result = project.run()
    assert result.traces["cells.v"].shape == (2, 3, 161)
    assert result.traces["cells.my_na.h"].shape == (2, 3, 81)
    assert result.traces["cells.v"].dtype == torch.float32
    assert result.clamp_currents["clamp"].shape[0] == 2
    assert all(torch.isfinite(trace).all() for trace in result.traces.values())
    # Cell 0 gets 0.1 nA in batch element 0 and 0.2 nA in element 1.
    v = result.traces["cells.v"]
    assert not torch.equal(v[0, 0], v[1, 0])


def test_library_channel_takes_its_project_name():
    data = _squid()
    data["channels"]["k_dr"] = data["channels"].pop("hh_k")
    data["cells"]["axon"]["insert"][1]["channel"] = "k_dr"
    data["recordings"][3]["variable"] = "k_dr.n"
    parts = Project.from_dict(data).build()
    assert set(parts.network.populations["axon"].cell.channels) == {"hh_na", "k_dr", "leak"}
    assert parts.probes[3].name == "axon.k_dr.n"


@pytest.mark.parametrize("path", PROJECTS, ids=lambda path: path.stem)
def test_examples_simulate(path):
    simulation = load_project(path).simulation()
    assert isinstance(simulation, Simulation)
    result = simulation.run(2.0)
    assert result.traces
    for trace in result.traces.values():
        assert torch.isfinite(trace).all()
        assert -100 < float(trace.min()) and float(trace.max()) < 200


def test_cobahh_matches_the_benchmark():
    build = load_project(ROOT / "projects" / "cobahh.json").build()
    network = build.network.build()
    exc, inh = network.populations["E"], network.populations["I"]
    assert (exc.n, inh.n) == (3200, 800)
    assert exc.cell.layout.area[0] == pytest.approx(20000)
    assert float(exc.v_init.mean()) == pytest.approx(-65, abs=0.3)
    assert float(exc.v_init.std()) == pytest.approx(5, abs=0.3)
    for projection in network.projections:
        n_pre, n_post = network.populations[projection.pre].n, network.populations[projection.post].n
        pairs = n_pre * n_post - (n_pre if projection.pre == projection.post else 0)
        assert projection.n_connections == pytest.approx(0.02 * pairs, rel=0.02)
        assert not torch.any((projection.pre_index == projection.post_index) & (projection.pre == projection.post))
        g0 = projection.initial_conductance
        assert g0.shape == (n_post,) and float(g0.min()) >= 0.0
        mean, weight, e_rev = (0.04, 0.006, 0.0) if projection.pre == "E" else (0.2, 0.067, -80.0)
        assert float(g0.mean()) == pytest.approx(mean, rel=0.1)
        assert float(projection.weights[0]) == weight and projection.synapse.e_rev == e_rev
    # Each projection draws its own connections and initial conductances.
    assert len({projection.seed for projection in network.projections}) == 4


# ----------------------------------------------------------------------------- atomic save
class _HalfWriter:
    """A file whose first write stores half the text and then fails, as a full disk would."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, text):
        self.handle.write(text[: len(text) // 2])
        self.handle.flush()
        raise OSError(28, "No space left on device")


def _fail(*args, **kwargs):
    raise OSError(5, "Input/output error")


FAILURES = {
    "mid-write": lambda monkeypatch: monkeypatch.setattr(
        files, "open", lambda *a, **k: _HalfWriter(builtins.open(*a, **k)), raising=False),
    "fsync": lambda monkeypatch: monkeypatch.setattr(files.os, "fsync", _fail),
    "replace": lambda monkeypatch: monkeypatch.setattr(files.os, "replace", _fail),
    "serialise": lambda monkeypatch: monkeypatch.setattr(files.json, "dumps", _fail),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_failed_save_keeps_the_previous_file(failure, tmp_path, monkeypatch):
    target = tmp_path / "project.json"
    load_project(SQUID).save(target)
    before = target.read_bytes()
    edited = load_project(SQUID).to_dict()
    edited["description"] = "edited"
    project = Project.from_dict(edited)

    FAILURES[failure](monkeypatch)
    with pytest.raises(OSError):
        project.save(target)
    monkeypatch.undo()

    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["project.json"], "a temporary file was left behind"
    project.save(target)
    assert load_project(target).to_dict()["description"] == "edited"


def test_save_keeps_the_file_mode(tmp_path):
    target = tmp_path / "project.json"
    project = load_project(SQUID)
    project.save(target)
    os.chmod(target, 0o640)
    project.save(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


# ----------------------------------------------------------------------------- bad input
def _squid():
    return json.loads(SQUID.read_text(encoding="utf-8"))


def _with(edit):
    data = _squid()
    edit(data)
    return data


def _channel(expression):
    return {"ion": "na", "gates": {"m": {"power": 3, "alpha": {"kind": "expression", "expression": expression},
                                          "beta": {"kind": "constant", "value": 1.0}}}}


BAD = {
    "unknown channel": (
        lambda d: d["cells"]["axon"]["insert"][0].update(channel="hh_nax"),
        "cells.axon.insert[0].channel", "unknown channel 'hh_nax'"),
    "negative diameter": (
        lambda d: d["cells"]["axon"]["morphology"]["soma"].update(diameter=-2),
        "cells.axon.morphology.soma.diameter", "must be a positive number of µm, got -2"),
    "zero length": (
        lambda d: d["cells"]["axon"]["morphology"]["soma"].update(length=0),
        "cells.axon.morphology.soma.length", "must be a positive number of µm, got 0"),
    "__import__ in an expression": (
        lambda d: d["channels"].update(my_na=_channel("__import__('os').getcwd()")),
        "channels.my_na.gates.m.alpha.expression", "is not allowed"),
    "os in an expression": (
        lambda d: d["channels"].update(my_na=_channel("os + v")),
        "channels.my_na.gates.m.alpha.expression", "name 'os' is not allowed"),
    "attribute in an expression": (
        lambda d: d["channels"].update(my_na=_channel("v.__class__")),
        "channels.my_na.gates.m.alpha.expression", "Attribute is not allowed"),
    "unknown curve kind": (
        lambda d: d["channels"].update(my_na={"ion": "na", "gates": {"m": {
            "inf": {"kind": "wiggle"}, "tau": {"kind": "constant", "value": 1.0}}}}),
        "channels.my_na.gates.m.inf.kind", "unknown curve kind 'wiggle'"),
    "unknown library override": (
        lambda d: d["channels"]["hh_na"].update(vt=-63),
        "channels.hh_na.vt", "has no parameter 'vt'"),
    "unknown top-level key": (
        lambda d: d.update(extras={}),
        "extras", "unknown field"),
    "newer version": (
        lambda d: d.update(version=2),
        "version", "upgrade BrainFuse"),
    "version as text": (
        lambda d: d.update(version="1"),
        "version", "must be a positive integer"),
    "wrong format": (
        lambda d: d.update(format="neuroml"),
        "format", 'must be "brainfuse-project"'),
    "unknown population in a projection": (
        lambda d: d["circuit"].update(projections=[{
            "pre": "ghost", "post": "axon", "synapse": {"kind": "exp"}, "connect": {"rule": "all_to_all"}, "weight": 0.01}]),
        "circuit.projections[0].pre", "unknown population 'ghost'"),
    "unknown cell in a population": (
        lambda d: d["circuit"]["populations"]["axon"].update(cell="squid"),
        "circuit.populations.axon.cell", "unknown cell 'squid'"),
    "unknown population in a stimulus": (
        lambda d: d["stimuli"][0].update(population="ghost"),
        "stimuli[0].population", "unknown population 'ghost'"),
    "unknown stimulus field": (
        lambda d: d["stimuli"][0].update(width=2),
        "stimuli[0].width", "unknown field"),
    "unknown state in a recording": (
        lambda d: d["recordings"][1].update(variable="hh_na.q"),
        "recordings[1].variable", "no state 'hh_na.q'"),
    "missing run duration": (
        lambda d: d["run"].pop("duration"),
        "run.duration", "missing"),
    "unknown method": (
        lambda d: d["run"].update(method="rk4"),
        "run.method", 'got "rk4"'),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_names_the_field(case, tmp_path):
    edit, path, fragment = BAD[case]
    target = tmp_path / "bad.json"
    target.write_text(json.dumps(_with(edit), indent=2), encoding="utf-8")
    with pytest.raises(ProjectError) as caught:
        load_project(target)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert fragment in message
    assert caught.value.path == path


def test_negative_diameter_message_is_exact():
    with pytest.raises(ProjectError) as caught:
        Project.from_dict(_with(BAD["negative diameter"][0]))
    assert str(caught.value) == "cells.axon.morphology.soma.diameter: must be a positive number of µm, got -2"


FILE_ERRORS = {
    "malformed JSON": ('{\n  "format": "brainfuse-project"\n  "version": 1\n}\n', "line 3, column 3: malformed JSON"),
    "truncated file": ('{"format": ', "line 1, column 12: malformed JSON"),
    "duplicate key": ('{"format": "brainfuse-project", "format": "x"}', "key 'format' appears twice"),
    "NaN": ('{"format": NaN}', "NaN is not a JSON number"),
    "not an object": ("[1, 2]", "a project file holds a JSON object"),
}


@pytest.mark.parametrize("case", FILE_ERRORS)
def test_bad_file_is_one_line(case, tmp_path):
    text, fragment = FILE_ERRORS[case]
    target = tmp_path / "bad.json"
    target.write_text(text, encoding="utf-8")
    with pytest.raises(ProjectError) as caught:
        load_project(target)
    message = str(caught.value)
    assert "\n" not in message and fragment in message


def test_missing_file(tmp_path):
    with pytest.raises(ProjectError, match="no such file"):
        load_project(tmp_path / "absent.json")
