"""The Deploy pane without a browser: deploy the chip example and read the power readout, the core map, the
agreement and the float-vs-chip views; a Lava crash or timeout is shown and the pane keeps working; a model the
chip cannot run and bad settings are explained."""

import time

import numpy as np
import pytest

pytest.importorskip("panel")

from app.state import Workbench, example_projects  # noqa: E402
from app.views.deploy import USER_DEFINED, DeployPane  # noqa: E402
from app.views.deploy_plots import VIOLATION  # noqa: E402
from app.views.deploy_results import watts_text  # noqa: E402
from brainfuse_core.chip import lava_available  # noqa: E402


def deploy_pane(project="chip_demo", lava=False, **fields):
    pane = DeployPane(Workbench(path=example_projects()[project]))
    pane.view()
    pane.use_lava.value = lava
    for key, text in fields.items():
        pane.fields[key].input.value = text
    return pane


def deploy(pane, timeout=60.0):
    """Press Deploy and refresh as the page's periodic callback would until the job has ended; returns the job."""
    pane._deploy()
    job = pane.job
    deadline = time.monotonic() + timeout
    while not job.done:
        assert time.monotonic() < deadline, "the deployment did not end"
        pane.refresh()
        time.sleep(0.05)
    pane.refresh()
    return job


def fake_lava(tmp_path, monkeypatch, body):
    """Point the chip pipeline at a 'Lava Python' that runs ``body`` (a shell script) instead of Lava."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("BRAINFUSE_LAVA_PYTHON", str(script))


def test_deploying_the_example_shows_power_core_map_agreement_and_both_runs():
    pane = deploy_pane()
    assert not pane.results.visible and pane.stage_bars["Lava run"].bar.value == 0
    job = deploy(pane)
    assert job.state == "finished" and not pane.error.visible and not pane.lava_error.visible
    deployment = job.deployment
    power, mapping = deployment.power, deployment.mapping

    assert pane.results.visible and not pane.deploy_button.disabled and pane.overall.value == 100
    labels = {stage: bar.label.object for stage, bar in pane.stage_bars.items()}
    assert labels["Lava run"] == "Lava run (off)" and labels["float run"].startswith("Float run (")
    assert all(bar.bar.value == 100 for stage, bar in pane.stage_bars.items() if stage != "Lava run")

    # The power readout: typical watts, the range and the energy of one 100 ms inference.
    assert watts_text(power.typical) in pane.power.object and "mW" in pane.power.object
    assert f"range {watts_text(power.low)} – {watts_text(power.high)}" in pane.power.object
    assert "per inference of 100 ms" in pane.power.object
    assert 0 < power.low <= power.typical <= power.high
    bars = pane.breakdown.source.data
    assert pane.breakdown.figure.xaxis[0].axis_label == "mW" and len(bars["part"]) == 6
    assert sum(bars["watts"]) * 1e-3 == pytest.approx(power.typical, rel=1e-12)
    assert "[D18]" in pane.sources.object and "*(estimate)*" in pane.sources.object

    # The core map: 16 excitatory and 4 inhibitory cells fit one Loihi 2 core each; a bar per core at its fullest limit.
    cores = pane.core_map.source.data
    assert cores["population"] == ["exc", "inh"] and cores["core"] == [0, 1] and mapping.cores == 2
    assert cores["utilisation"] == [max(core["utilisation"].values()) for core in mapping.per_core]
    assert all(0 < u <= 1 for u in cores["utilisation"]) and cores["violation"] == ["", ""]
    assert "**2 cores** on **1 chip** of loihi2 — fits" in pane.mapping.object

    # Agreement (the bound: median spike-time error within a chip step) and both runs side by side.
    agreement = deployment.agreement
    assert agreement["spike_time_median_error_steps"] <= 1 and "not run" in pane.agreement.object
    assert f"{agreement['spike_time_median_error_steps']:.3g} chip steps" in pane.agreement.object
    rasters = {side: source.data for side, source in pane.comparison.raster_sources.items()}
    assert len(rasters["float"]["t"]) == agreement["float_spikes"] > 50
    assert len(rasters["chip"]["t"]) == agreement["chip_spikes"] > 50
    for side in ("float", "chip"):
        cells = np.asarray(rasters[side]["cell"]).astype(int)
        # Rows 0-15 are the excitatory cells, driven by 8, 15, 25 and 40 µA/cm² in groups of four.
        assert np.bincount(cells[cells < 4], minlength=4).sum() < np.bincount(cells[(cells >= 12) & (cells < 16)]).sum()
    assert pane.probe.options == ["exc.v", "inh.v", "inh.hh_k.n"] and pane.probe.value == "exc.v"
    traces = {side: source.data for side, source in pane.comparison.trace_sources.items()}
    assert len(traces["float"]["v"]) == len(traces["chip"]["v"]) == 2  # the recording's cells 0 and 15
    # The float model samples every 0.025 ms substep from t = 0, the chip the end of every chip step of four.
    assert len(traces["float"]["t"][0]) == 4 * len(traces["chip"]["t"][0]) + 1
    assert traces["float"]["t"][0][-1] == pytest.approx(traces["chip"]["t"][0][-1]) == pytest.approx(100.0)
    assert traces["chip"]["v"][1].max() > 0 > traces["chip"]["v"][1].min()  # cell 15 spikes on the chip

    assert pane.comparison.trace_chip.yaxis[0].axis_label == "V (mV)"
    assert pane.comparison.raster_chip.yaxis[0].axis_label == "cell (exc 0–15, inh 16–19)"
    pane.probe.value = "inh.hh_k.n"
    gates = pane.comparison.trace_sources["chip"].data["v"]
    assert len(gates) == 1 and 0 <= gates[0].min() < gates[0].max() <= 1
    assert pane.comparison.trace_chip.yaxis[0].axis_label == "gate (open fraction)"


def test_a_lava_crash_or_timeout_is_shown_and_the_pane_keeps_working(tmp_path, monkeypatch):
    pane = deploy_pane(lava=True, duration="20")
    fake_lava(tmp_path, monkeypatch, "kill -SEGV $$")
    job = deploy(pane)
    assert job.state == "finished" and not pane.error.visible
    assert pane.lava_error.visible and "The Lava run failed" in pane.lava_error.object
    assert "killed by signal 11" in pane.lava_error.object
    assert pane.stage_bars["Lava run"].label.object == "Lava run (failed)"
    assert "Lava failed" in pane.agreement.object and pane.core_map.source.data["core"] == [0, 1]
    assert watts_text(job.deployment.power.typical) in pane.power.object

    fake_lava(tmp_path, monkeypatch, "exec sleep 30")
    pane.fields["timeout"].input.value = "1"
    started = time.monotonic()
    job = deploy(pane)
    assert job.state == "finished" and time.monotonic() - started < 25
    assert pane.lava_error.visible and "ran past its timeout of 1 s" in pane.lava_error.object

    monkeypatch.delenv("BRAINFUSE_LAVA_PYTHON")
    pane.use_lava.value = lava_available()
    pane.fields["timeout"].input.value = "120"
    job = deploy(pane)
    assert job.state == "finished" and not pane.lava_error.visible and not pane.error.visible
    if lava_available():
        assert job.deployment.agreement["bit_exact"] is True and "✔ yes" in pane.agreement.object


def test_a_model_the_chip_cannot_run_and_bad_settings_are_explained():
    pane = deploy_pane("ball_and_stick")
    job = deploy(pane)
    assert job.state == "failed" and pane.error.visible and not pane.results.visible
    assert pane.error.object.startswith("Deployment failed: population 'cell': the chip runs one-compartment cells")
    assert pane.stage_bars["quantize"].label.object == "Quantize (failed)" and not pane.deploy_button.disabled

    pane.workbench.open(example_projects()["chip_demo"])
    pane.fields["substeps"].input.value = "0"
    pane._deploy()
    assert pane.job is job and "Substeps per chip step" in pane.error.object
    assert pane.fields["substeps"].error.visible and "at least 1" in pane.fields["substeps"].error.object
    pane.fields["substeps"].input.value = "2"

    pane.chip.value = USER_DEFINED
    assert pane.profile_text.visible and not pane.profile_error.visible and "64 cores per chip" in pane.chip_note.object
    pane.profile_text.value = '{"base": "loihi2", "neurons_per_core": 0}'
    assert pane.profile_error.visible and "neurons_per_core must be a positive whole number" in pane.profile_error.object
    pane._deploy()
    assert pane.job is job and pane.error.object.startswith("the user-defined chip profile is refused")
    pane.profile_text.value = '{"base": "loihi2", "name": "tiny", "neurons_per_core": 8, "fan_in": 8}'
    assert not pane.profile_error.visible
    settings = pane.settings()
    assert settings["chip"].name == "tiny" and settings["chip"].neurons_per_core == 8 and settings["substeps"] == 2

    # 8 neurons per core: the 16 excitatory cells take two full cores. Each inhibitory cell hears all 16 excitatory
    # cells, twice the fan-in of 8: one per core, still too many, drawn in red with the reason.
    pane.fields["duration"].input.value = "10"
    job = deploy(pane)
    assert job.state == "finished" and not pane.error.visible
    cores = pane.core_map.source.data
    assert cores["population"] == ["exc"] * 2 + ["inh"] * 4 and cores["utilisation"] == [1.0] * 2 + [2.0] * 4
    assert cores["colour"][2:] == [VIOLATION] * 4 and VIOLATION not in cores["colour"][:2]
    assert cores["violation"][2] == "one cell per core needs 16 of the core's 8 (fan_in)" and cores["violation"][0] == ""
    assert "**6 cores** on **1 chip** of tiny — **does not fit**: 1 violation(s)" in pane.mapping.object
    assert "⚠ inh: one cell per core needs 16" in pane.mapping.object
