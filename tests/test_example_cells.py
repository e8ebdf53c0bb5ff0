"""The example cells: the ball and stick's back-propagating action potential (run through the
CLI) and the L5-pyramidal-like SWC cell, whose somatic response to its 1 nA step must follow
NEURON's (same SWC read by Import3d, same nseg and channels) within a mean |ΔV| of 0.5 mV."""

import copy
import importlib.util
import json

import numpy as np

import brainfuse_core as bf
from brainfuse_core import validation
from brainfuse_core.cli import main
from brainfuse_core.project import Project, load_project

ROOT = validation.EXAMPLE_SWC_PROJECT.parents[1]
BALL_AND_STICK = ROOT / "projects" / "ball_and_stick.json"
L5 = validation.EXAMPLE_SWC_PROJECT
DT = 0.025
FIRST_SPIKE_WINDOW_MS = (5.0, 15.0)  # the step starts at 5 ms; the second spike comes after 15 ms
SITES = ["soma", "dend_40um", "dend_200um", "dend_400um", "dend_600um", "dend_800um"]


def first_spike_peaks(traces):
    """(peak mV, peak time ms) of the first action potential at each site in SITES."""
    start, stop = (round(t / DT) for t in FIRST_SPIKE_WINDOW_MS)
    windows = [np.asarray(traces[site])[0, 0, start:stop] for site in SITES]
    return np.array([w.max() for w in windows]), np.array([start + w.argmax() for w in windows]) * DT


def test_ball_and_stick_action_potential_travels_back_along_the_dendrite(tmp_path, capsys):
    out = tmp_path / "ball_and_stick"
    assert main(["run", str(BALL_AND_STICK), "--out", str(out)]) == 0
    assert "cell: 3 spikes" in capsys.readouterr().out
    peaks, times = first_spike_peaks(np.load(out / "traces.npz"))
    assert np.all(np.diff(times) > 0), times  # later with every step away from the soma
    assert peaks[0] > 20.0 and peaks[1] > 0.0  # an overshooting spike at and near the soma
    assert peaks.min() > -10.0  # still more than 55 mV above rest 800 µm out
    # Propagation at a plausible speed for a 2 µm hh-like dendrite at 6.3 °C: 800 µm in about 2.5 ms.
    assert 0.1 < 0.8 / (times[-1] - times[1]) * (760 / 800) < 2.0  # m/s


def test_ball_and_stick_needs_its_dendritic_channels():
    """Without Na and K in the dendrite the same soma spike only reaches the tip as a small, slow bump."""
    data = json.loads(BALL_AND_STICK.read_text(encoding="utf-8"))
    passive = copy.deepcopy(data)
    for entry in passive["cells"]["ball_and_stick"]["insert"]:
        if entry.get("where") == "dend":
            entry["gbar"] = 0.0
    result = Project(passive).run()
    peaks, _ = first_spike_peaks({name: trace.numpy() for name, trace in result.traces.items()})
    assert peaks[0] > 20.0 and peaks[-1] < -40.0


def test_example_projects_load_as_projects():
    for path in (BALL_AND_STICK, L5):
        project = load_project(path)
        assert Project(project.to_dict()).to_dict() == json.loads(path.read_text(encoding="utf-8"))


def test_l5_project_is_what_its_script_makes_of_the_shipped_swc():
    spec = importlib.util.spec_from_file_location("make_l5_pyramidal", validation.EXAMPLE_SWC.parent / "make_l5_pyramidal.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.build_tree().text() == validation.EXAMPLE_SWC.read_text()
    data = json.loads(L5.read_text(encoding="utf-8"))
    assert script.project(bf.load_swc(validation.EXAMPLE_SWC)) == data
    swc_points = sum(1 for line in validation.EXAMPLE_SWC.read_text().splitlines() if not line.startswith("#"))
    morphology = data["cells"]["l5"]["morphology"]
    regions = {}
    for section in morphology.values():
        regions[section["region"]] = regions.get(section["region"], 0) + 1
    assert 300 <= swc_points <= 600 and regions["basal"] >= 5 and regions["apical"] >= 10 and regions["axon"] >= 1
    # The trunk is straight up (y) to 750 µm, where the tuft begins; the tuft reaches beyond 1 mm.
    trunk = [s for s in morphology.values() if s["region"] == "apical" and all(abs(p[0]) < 5 for p in s["points"])]
    assert 700 <= sum(s["length"] for s in trunk) <= 800
    assert 1000 <= max(p[1] for s in morphology.values() for p in s["points"]) <= 1300


def test_l5_channel_densities_by_region():
    cell = load_project(L5).build().network.populations["l5"].cell
    expected = {"soma": (0.12, 0.036, 0.0), "axon": (0.25, 0.05, 0.0), "apical": (0.012, 0.0036, 3e-5), "basal": (0.0, 0.0, 3e-5)}
    densities = {name: cell.density(name).numpy() for name in ("hh_na", "hh_k", "pas")}
    for region, values in expected.items():
        nodes = np.array(cell.node_mask(region)) & (cell.layout.area > 0)
        for channel, value in zip(("hh_na", "hh_k", "pas"), values):
            assert np.all(densities[channel][nodes] == value), (region, channel)


def test_l5_somatic_response_matches_neuron(require_neuron):
    records = {record.name: record for record in validation.swc_cell_vs_neuron(quick=True)}
    assert records["swc_cell_vs_neuron/soma"].value < 0.5
    assert records["swc_cell_vs_neuron/spike_count"].value == 0
    assert "3 spikes in NEURON" in records["swc_cell_vs_neuron/soma"].note
