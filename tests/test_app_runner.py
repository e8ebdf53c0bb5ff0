"""The Simulate pane's run controller and display buffers, without a server or a browser."""

import time

import numpy as np
import pytest
import torch

from app.state import PROJECTS_DIR
from app.views.runner import LiveData, MinMaxThinner, Runner, TracePlan, chunk_steps_for, spread
from brainfuse_core import ChunkReport
from brainfuse_core.project import Project, load_project


def squid(**run):
    data = load_project(PROJECTS_DIR / "squid_axon.json").to_dict()
    data["run"].update(run)
    return Project(data)


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_spread_picks_distinct_cells_from_zero():
    assert spread(10, 5) == [0, 2, 4, 6, 8]
    assert spread(3, 5) == [0, 1, 2]
    assert spread(3200, 0) == []
    assert len(set(spread(4000, 300))) == 300


def test_trace_plan_merges_the_projects_recordings_and_caps_the_count():
    build = load_project(PROJECTS_DIR / "cobahh.json").build()
    plan = TracePlan(build, {"E": 5, "I": 0})
    assert plan.labels == ["E[0]", "E[1]", "E[2]", "E[640]", "E[1280]", "E[1920]", "E[2560]", "I[0]"]
    capped = TracePlan(build, {"E": 400, "I": 400}, limit=500)
    # E: 400 spread cells plus the recorded 1 and 2 (0 is both); I: 400 spread cells including the recorded 0.
    assert len(capped) == 500 and capped.hidden == 402 + 400 - 500
    assert sum(len(cells) for _, _, _, cells in capped.sites) == 500


def test_thinner_keeps_extremes_and_bounds_the_points():
    thinner = MinMaxThinner(1, stride=10)
    t = np.arange(1000.0)
    v = np.zeros((1, 1000))
    v[0, 437] = 50.0
    v[0, 712] = -90.0
    points_t, points_v = [], []
    for lo in range(0, 1000, 33):
        out = thinner.push(t[lo:lo + 33], v[:, lo:lo + 33])
        points_t.append(out[0])
        points_v.append(out[1])
    out = thinner.flush()
    points_t, points_v = np.concatenate(points_t + [out[0]]), np.concatenate(points_v + [out[1]], axis=1)
    assert len(points_t) == 200 and np.all(np.diff(points_t) > 0)
    assert points_v.max() == 50.0 and points_v.min() == -90.0


def _report(start, stop, dt, spikes, traces):
    return ChunkReport(start, stop, 100, dt, traces, {"p": 1}, spikes)


def test_live_data_rates_offsets_and_batch_zero_only():
    data = LiveData(n_steps=100, dt=0.1, n_traces=1, populations=[("A", 2), ("B", 4)], rate_bin_ms=5.0)
    trace = {"p": torch.zeros(2, 1, 60)}
    spikes = {"A": (np.array([1.0, 2.0, 3.0]), np.array([0, 1, 1]), np.array([0, 0, 1])),
              "B": (np.array([5.5]), np.array([3]), np.array([0]))}
    data.add(_report(0, 60, 0.1, spikes, trace), ["p"])
    update = data.drain()
    assert data.spike_count == 3
    assert list(update.spikes["A"][1]) == [0, 1] and list(update.spikes["B"][1]) == [2 + 3]
    assert list(update.rate_t) == [2.5]
    assert update.rates[:, 0] == pytest.approx([2 / (2 * 5e-3), 0.0])
    assert len(update.trace_t) == 60 and update.trace_t[0] == pytest.approx(0.1)
    quiet = {"A": (np.empty(0), np.empty(0, int), np.empty(0, int)), "B": (np.empty(0), np.empty(0, int), np.empty(0, int))}
    data.add(_report(60, 100, 0.1, quiet, {"p": torch.zeros(2, 1, 40)}), ["p"])
    data.finish()
    update = data.drain()
    assert list(update.rate_t) == [7.5]
    assert update.rates[:, 0] == pytest.approx([0.0, 1 / (4 * 5e-3)])
    assert data.drain().empty


def test_a_run_finishes_with_the_cores_spikes_and_bounded_traces():
    project = squid(duration=200)
    build = project.build()
    run = Runner().start(build, 200, TracePlan(build, {"axon": 1}))
    assert run.join(60) and run.state == "finished"
    update = run.data.drain()
    expected = len(project.run(200).spikes["axon"])
    assert run.data.spike_count == expected == len(update.spikes["axon"][0]) > 5
    assert 0 < len(update.trace_t) <= 4000 and update.trace_v.shape == (1, len(update.trace_t))
    assert update.trace_v.max() > 20 and update.rates.shape == (1, 40)


def test_pause_resume_and_stop():
    build = squid(duration=5000).build()
    runner = Runner()
    run = runner.start(build, 5000, TracePlan(build, {"axon": 1}), chunk_steps=20)
    wait_for(lambda: run.data.steps_done > 0)
    runner.pause()
    assert runner.state == "paused"
    time.sleep(0.2)
    held, wall = run.data.steps_done, run.wall_s
    time.sleep(0.3)
    assert run.data.steps_done == held and run.wall_s == wall
    runner.resume()
    wait_for(lambda: run.data.steps_done > held)
    assert runner.state == "running"
    runner.pause()
    runner.stop()
    assert run.join(30) and runner.state == "stopped" and run.data.fraction_done < 1


def test_a_new_run_stops_the_previous_one():
    build = squid(duration=5000).build()
    runner = Runner()
    first = runner.start(build, 5000, TracePlan(build, {"axon": 1}), chunk_steps=20)
    second = runner.start(squid(duration=10).build(), 10, TracePlan(build, {"axon": 1}))
    assert first.join(30) and first.state == "stopped"
    assert second.join(30) and runner.state == "finished" and runner.run is second


def test_an_unstable_run_fails_with_one_line():
    project = squid(duration=10)
    data = project.to_dict()
    data["stimuli"][0]["amp"] = 1e9
    build = Project(data).build()
    runner = Runner()
    run = runner.start(build, 10, TracePlan(build, {"axon": 1}))
    assert run.join(30) and runner.state == "failed"
    assert "membrane voltage" in run.error and "\n" not in run.error


def test_chunks_are_sized_to_the_model():
    small = squid().build()
    big = load_project(PROJECTS_DIR / "cobahh.json").build()
    assert chunk_steps_for(big, 10_000) < chunk_steps_for(small, 10_000) <= 10_000
    assert chunk_steps_for(big, 3) >= 1


def test_live_plots_stream_new_points_and_count_spikes_into_raster_images():
    from app.views.live_plots import MAX_RASTER_ROWS, RASTER_TIME_BINS, LivePlots
    from app.views.runner import Update

    plots = LivePlots(100, ["E[0]", "E[5]"], [("E", 10), ("I", 5)])
    assert plots.raster.yaxis.major_label_overrides == {4.5: "E", 12.0: "I"}
    update = Update(np.array([0.1, 0.2]), np.zeros((2, 2)), {"E": (np.array([1.0]), np.array([3])),
                                                             "I": (np.array([2.0, 3.0]), np.array([10, 11]))},
                    np.array([2.5]), np.array([[1.0], [2.0]]))
    assert plots.push(update) and plots.push(update)
    e, i = plots.raster_source.data["img0"][0], plots.raster_source.data["img1"][0]
    assert e.shape == (10, RASTER_TIME_BINS) and i.shape == (5, RASTER_TIME_BINS)
    assert e[3, 10] == 2 and i[0, 20] == 2 and i[1, 30] == 2 and e.sum() + i.sum() == 6
    assert len(plots.trace_source.data["t"]) == 4
    assert plots.drawn_spikes == 6 and len(plots.rate_source.data["r1"]) == 2
    assert not plots.push(Update(np.empty(0), np.empty((2, 0)), {}, np.empty(0), np.empty((2, 0))))
    labels = [f"E[{k}]" for k in range(12)]
    many = LivePlots(100, labels, [("E", 20)])
    for start in (0.0, 0.5):
        many.push(Update(np.array([start, start + 0.25]), np.tile([[1.0, 2.0]], (12, 1)), {}, np.empty(0), np.empty((1, 0))))
    assert many.many_traces and len(many.trace_source.data["ys"]) == 12
    assert list(many.trace_source.data["xs"][0]) == [0.0, 0.25, 0.5, 0.75] and list(many.trace_source.data["ys"][11]) == [1, 2, 1, 2]
    big = LivePlots(100, [], [("E", 8000), ("I", 2000)])
    assert sum(len(image[0]) for image in big.raster_source.data.values()) <= MAX_RASTER_ROWS


def test_the_pane_runs_and_refuses_bad_fields_without_changing_anything():
    from app.state import Workbench
    from app.views.simulate import SimulatePane

    workbench = Workbench()
    pane = SimulatePane(workbench)
    pane.view()
    before = workbench.document
    pane.duration.input.value = "-5"
    pane.counts["axon"].input.value = "two"
    assert pane.duration.error.visible and not pane.counts["axon"].valid and workbench.document is before
    pane._run()
    assert pane.runner.state == "idle" and pane.error.visible
    pane.counts["axon"].input.value = "1"
    pane.duration.input.value = "50"
    assert workbench.document["run"]["duration"] == 50
    pane._run()
    run = pane.runner.run
    assert run.join(60) and pane.runner.state == "finished"
    pane._refresh()
    assert pane.raster_spike_count() == pane.plots.drawn_spikes > 0
    assert pane.progress.value == 100 and pane.status.object.startswith("finished: sim t = 50.0 ms / 50 ms")
    assert not pane.error.visible


def test_the_pane_shows_a_failed_run_as_one_line():
    from app.state import Workbench
    from app.views.simulate import SimulatePane

    workbench = Workbench()
    workbench.edit(lambda doc: doc["stimuli"][0].__setitem__("amp", 1e9), "huge stimulus")
    pane = SimulatePane(workbench)
    pane._run()
    assert pane.runner.run.join(60) and pane.runner.state == "failed"
    pane._refresh()
    assert pane.error.visible and "membrane voltage" in pane.error.object and "\n" not in pane.error.object
    assert pane.status.object.startswith("failed")


def test_the_potjans_diesmann_column_streams_spikes_of_every_layer():
    from brainfuse_core.networks import potjans_diesmann as pd

    data = pd.project(scale=0.01, duration=150.0)
    build = Project(data).build()
    run = Runner().start(build, 150.0, TracePlan(build, {name: 1 for name in pd.POPULATIONS}))
    assert run.join(120) and run.state == "finished"
    update = run.data.drain()
    expected = Project(data).run(150.0).spikes
    for name in pd.POPULATIONS:
        assert len(update.spikes[name][0]) == len(expected[name]) > 0, name
