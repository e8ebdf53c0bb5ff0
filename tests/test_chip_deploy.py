"""Deploying a project (brainfuse_core/chip/deploy.py and ``brainfuse deploy``): the example deploys with
float-vs-chip agreement, bit-exact Lava (when .venv-lava exists), mapping, power, files; Lava crashes and
timeouts are recorded, not raised; unsupported models raise ModelError."""

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from brainfuse_core.chip.deploy import STAGES, chip_column_project, compare_spikes, deploy
from brainfuse_core.chip.lava_backend import lava_available
from brainfuse_core.cli import EXIT_LAVA_FAILED, main
from brainfuse_core.errors import ModelError
from brainfuse_core.networks import potjans_diesmann as pd
from brainfuse_core.project import Project, load_project
from brainfuse_core.spikes import SpikeRecord

DEMO = Path(__file__).resolve().parents[1] / "projects" / "chip_demo.json"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    stages = []
    out = tmp_path_factory.mktemp("deploy")
    deployment = deploy(DEMO, chip="loihi2", out_dir=out, use_lava=lava_available(), timeout=120,
                        progress=lambda stage, fraction: stages.append((stage, fraction)))
    return deployment, stages, out


def test_demo_chip_run_agrees_with_float(demo):
    deployment, _, _ = demo
    agreement = deployment.agreement
    # Measured: 156 spikes in both runs, median error 0.39 chip steps (0.1 ms steps).
    assert agreement["float_spikes"] >= 100 and agreement["per_population"]["inh"]["float_spikes"] >= 20
    assert agreement["firing_rate_error_percent"] <= 2.0
    assert agreement["spike_time_median_error_steps"] <= 1.0
    assert all(entry["saturated"] == 0 for entry in deployment.overflow.values())
    if lava_available():
        assert deployment.lava_error is None and agreement["bit_exact"] is True
    else:
        assert agreement["bit_exact"] is None
    chip_v, float_v = deployment.chip_result.traces["exc.v"], deployment.float_result.traces["exc.v"]
    assert chip_v.shape == (2, 1000) and float_v.shape[0] == 2
    at = np.rint(deployment.chip_result.times["exc.v"] / 0.025).astype(int)
    assert np.median(np.abs(chip_v - float_v[:, at])) < 0.5  # mV


def test_demo_mapping_power_progress_and_files(demo):
    deployment, stages, out = demo
    mapping = deployment.mapping
    assert mapping.cores == 2 and mapping.chips == 1 and mapping.fits
    assert [core["neurons"] for core in mapping.per_core] == [16, 4]
    power = deployment.power
    assert 0 < power.low < power.typical < power.high
    # Two active cores at 0.5 mW each, 20 cells × 40,000 substeps/s × 72/7 LIF updates × 40.5 pJ.
    assert power.breakdown["typical"]["static"] == pytest.approx(1e-3)
    assert power.breakdown["typical"]["neuron_updates"] == pytest.approx(20 * 4e4 * 72 / 7 * 40.5e-12)
    expected = [s for s in STAGES if s != "Lava run" or lava_available()] + ["done"]
    assert [s for s, _ in stages] == expected
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    for name in ("deployment.json", "core_map.png", "power.png", "traces.png", "rasters.png", "artifact/manifest.json"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "deployment.json").read_text())
    assert saved["mapping"]["cores"] == 2 and saved["power"]["watts"]["typical"] == pytest.approx(power.typical)
    assert saved["agreement"]["firing_rate_error_percent"] == deployment.agreement["firing_rate_error_percent"]
    assert saved["power"]["sources"]["synaptic_op_pj"]["estimate"] is True  # Loihi 2 per-op energies are estimates


def fake_python(tmp_path, body):
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_lava_crash_and_timeout_are_recorded_and_the_cli_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BRAINFUSE_LAVA_PYTHON", fake_python(tmp_path, 'echo "Fatal Python error: Segmentation fault" >&2; exit 139'))
    crashed = deploy(DEMO, duration=5.0)
    assert "exited with code 139" in crashed.lava_error and "Segmentation fault" in crashed.lava_error
    assert crashed.agreement["bit_exact"] is None and crashed.power.typical > 0  # the rest of the deployment stands
    code = main(["deploy", str(DEMO), "--duration", "5", "--out", str(tmp_path / "crash")])
    captured = capsys.readouterr()
    assert code == EXIT_LAVA_FAILED
    assert "error: the Lava run failed" in captured.err and "exited with code 139" in captured.err
    assert "power on loihi2" in captured.out and (tmp_path / "crash" / "deployment.json").is_file()
    monkeypatch.setenv("BRAINFUSE_LAVA_PYTHON", fake_python(tmp_path, "sleep 30"))
    timed_out = deploy(DEMO, duration=5.0, timeout=1)
    assert "timeout of 1 s" in timed_out.lava_error
    monkeypatch.setenv("BRAINFUSE_LAVA_PYTHON", str(tmp_path / "nowhere" / "python"))
    assert "no Lava environment" in deploy(DEMO, duration=5.0).lava_error


def test_cli_deploy_without_lava(tmp_path, capsys):
    code = main(["deploy", str(DEMO), "--chip", "loihi1", "--no-lava", "--weight-bits", "6", "--duration", "30",
                 "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for text in ("cores on 1 chip", "power on loihi1", "range", "neuron_updates", "agreement", "Lava fixed point: not run",
                 f"wrote {tmp_path / 'out'}/"):
        assert text in captured.out, text
    assert json.loads((tmp_path / "out" / "deployment.json").read_text())["settings"]["weight_bits"] == 6
    assert main(["deploy", str(DEMO), "--weight-bits", "12", "--no-lava", "--out", str(tmp_path / "bad")]) == 2
    assert "weight" in capsys.readouterr().err


def test_unsupported_models_raise_model_error():
    data = load_project(DEMO).to_dict()
    data["circuit"]["populations"]["drive"] = {"poisson": {"n": 16, "rate_hz": 50.0, "seed": 1}}
    data["circuit"]["projections"].append({"pre": "drive", "post": "exc", "synapse": {"kind": "exp", "tau": 2, "e_rev": 0},
                                           "connect": {"rule": "one_to_one"}, "weight": 0.001})
    with pytest.raises(ModelError, match="spike sources"):
        deploy(Project(data), use_lava=False)


def test_spike_comparison_by_hand():
    float_spikes = {"p": SpikeRecord([1.0, 5.0, 2.0], [0, 0, 1], [0, 0, 0], 2, 10.0)}
    chip_spikes = {"p": SpikeRecord([1.05, 5.25, 2.15, 8.0], [0, 0, 1, 1], [0, 0, 0, 0], 2, 10.0)}
    result = compare_spikes(float_spikes, chip_spikes, chip_dt=0.1)
    # Cell 0 pairs (0.05, 0.25 ms); cell 1 has an extra spike: nearest float spike 2.0 for 2.15 and 8.0.
    assert result["spike_time_median_error_steps"] == pytest.approx(2.0)
    assert result["spike_time_max_error_steps"] == pytest.approx(60.0)
    assert result["firing_rate_error_percent"] == pytest.approx(100 / 3)


def test_scaled_down_column_deploys():
    """The Potjans–Diesmann column at 1 % (771 cells, 30,195 synapses) through the whole pipeline, briefly."""
    doc = chip_column_project(scale=0.01, duration=3.0)
    assert not any("poisson" in entry for entry in doc["circuit"]["populations"].values())
    deployment = deploy(Project(doc), use_lava=False)
    assert deployment.mapping.stats.neurons == sum(pd.scaled_sizes(0.01)) == 771 and deployment.mapping.stats.synapses == pytest.approx(30_195)
    assert deployment.mapping.fits and deployment.mapping.cores >= 8
    assert deployment.settings["steps"] == 30 and deployment.power.typical > 0


def test_delays_longer_than_a_chip_step_are_noted():
    data = load_project(DEMO).to_dict()
    data["circuit"]["projections"][0]["delay"] = 1.5
    deployment = deploy(Project(data), use_lava=False, duration=2.0)
    assert any("exc->inh" in note and "1.5 ms" in note for note in deployment.notes)
    assert not any("inh->exc" in note for note in deployment.notes)
