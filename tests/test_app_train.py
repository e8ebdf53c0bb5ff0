"""The Train pane without a browser: a tiny training run streams its loss, stops, and saves into the project."""

import time

import numpy as np
import pytest
import torch

pytest.importorskip("panel")

from app.state import Workbench  # noqa: E402
from app.views import train_run  # noqa: E402
from app.views.train import TrainPane  # noqa: E402
from brainfuse_core.training import experiments  # noqa: E402

TINY = {"hidden": "8", "bins": "5", "batch_size": "64", "epochs": "3", "bin_ms": "1", "dt": "0.1"}


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def tiny_pane(workbench, neurons="HH", **settings):
    pane = TrainPane(workbench)
    pane.view()
    pane.neurons.value = neurons
    for key, text in {**TINY, **settings}.items():
        pane.fields[key].input.value = text
    return pane


def test_a_run_streams_a_falling_loss_and_stop_keeps_the_model():
    pane = tiny_pane(Workbench())
    pane._start()
    job = pane.job
    assert not pane.error.visible and pane.start_button.disabled
    wait_for(lambda: job.log.count() >= 16 or job.done)
    pane.refresh()
    steps, losses, accuracies = pane.plots.points("hh")
    assert len(steps) >= 16 and list(steps[:3]) == [1, 2, 3]
    assert np.all((accuracies >= 0) & (accuracies <= 1))
    # Cross-entropy of 10 classes starts near ln 10 and falls as the network learns.
    assert losses[:4].mean() > losses[-4:].mean() + 0.1, losses
    assert "HH epoch" in pane.status.object and 0 < pane.progress.value < 100
    pane._stop()
    assert job.join(30) and job.state == "stopped"
    pane.refresh()
    model = job.models["hh"]
    assert model.stopped and len(model.history["loss"]) == job.log.count("hh") < job.batches_per_neuron
    assert list(pane.plots.points("hh")[1]) == pytest.approx(model.history["loss"])
    assert pane.status.object.startswith("stopped") and not pane.save_button.disabled
    assert "lif" not in job.models and not pane.error.visible


def test_save_writes_the_model_beside_the_project_and_records_its_settings(tmp_path):
    workbench = Workbench()
    pane = tiny_pane(workbench, epochs="1", batch_size="256")
    pane._start()
    assert pane.job.join(60) and pane.job.state == "finished"
    pane.refresh()
    pane._save()
    assert pane.error.visible and "Save as" in pane.error.object and not any(tmp_path.iterdir())

    project = tmp_path / "mine.json"
    assert workbench.save(str(project))
    before = workbench.document
    pane._save()
    assert not pane.error.visible and pane.message.visible
    path = tmp_path / "mine.trained" / "hh_seed0.pt"
    assert path.is_file() and pane.message.object.startswith("Saved mine.trained/hh_seed0.pt")
    section = workbench.document["training"]
    assert (section["task"], section["hidden"], section["epochs"], section["batch_size"]) == ("digits_noise", 8, 1, 256)
    assert section["neurons"] == ["hh"] and section["seeds"] == [0] and workbench.dirty
    loaded = experiments.TrainedModel.load(path)
    images = torch.rand(5, 1, 8, 8)
    trained = pane.job.models["hh"]
    assert torch.equal(loaded.model(images), trained.model(images)) and loaded.history == trained.history
    assert workbench.undo() and workbench.document == before

    assert pane.fields["hidden"].input.value == "64"  # the settings of a document without a training section
    first = path.read_bytes()
    for key, text in {**TINY, "epochs": "1", "batch_size": "256", "learning_rate": "0.02"}.items():
        pane.fields[key].input.value = text
    pane._start()
    assert pane.job.join(60)
    pane._save()
    assert path.read_bytes() != first and (tmp_path / "mine.trained" / "hh_seed0.previous.pt").read_bytes() == first
    assert "kept as hh_seed0.previous.pt" in pane.message.object


def test_bad_settings_are_explained_and_nothing_starts():
    workbench = Workbench()
    pane = tiny_pane(workbench)
    pane.fields["epochs"].input.value = "two"
    pane._start()
    assert pane.job is None and pane.error.visible and "Epochs" in pane.error.object
    assert pane.fields["epochs"].error.visible and "not a number" in pane.fields["epochs"].error.object
    pane.fields["epochs"].input.value = "1"
    pane.fields["dt"].input.value = "0.3"
    pane._start()
    assert pane.job is None and pane.error.object.startswith("training.dt:") and "whole number of steps" in pane.error.object
    assert pane.fields["dt"].error.visible
    workbench.edit(lambda doc: doc["run"].__setitem__("duration", 20.0), "an edit elsewhere")
    assert pane.fields["dt"].input.value == "0.3" and pane.fields["hidden"].input.value == "8"  # typed settings stay
    pane.fields["bin_ms"].input.value = "0.9"
    pane._start()
    assert pane.job is not None and not pane.error.visible and not pane.fields["dt"].error.visible
    pane._stop()
    assert pane.job.join(30) and "training" not in workbench.document


def test_a_crash_in_training_is_shown_and_the_pane_keeps_working(monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("out of memory\nin layer")

    pane = tiny_pane(Workbench(), epochs="1", batch_size="512")
    monkeypatch.setattr(train_run.experiments, "train", crash)
    pane._start()
    assert pane.job.join(30) and pane.job.state == "failed"
    pane.refresh()
    assert pane.error.visible and pane.error.object == "training failed: RuntimeError: out of memory in layer"
    assert not pane.start_button.disabled and pane.save_button.disabled
    monkeypatch.undo()
    pane._start()
    assert pane.job.join(60) and pane.job.state == "finished" and not pane.error.visible


def test_hh_and_lif_are_compared_clean_and_per_corruption_severity():
    workbench = Workbench()
    workbench.edit(lambda doc: doc.__setitem__("training", {"task": "digits_noise", "hidden": 4, "bins": 4, "epochs": 1,
                                                            "batch_size": 512, "corruptions": ["gaussian_noise", "contrast"],
                                                            "severities": [1, 5]}), "training section")
    pane = TrainPane(workbench)
    assert pane.fields["hidden"].input.value == "4" and pane.fields["batch_size"].input.value == "512"
    assert pane.neurons.value == "HH and LIF"
    pane._start()
    job = pane.job
    assert job.join(120) and job.state == "finished", job.error
    pane.refresh()
    data = experiments.load_task(job.spec)
    bars = pane.plots.comparison_source.data
    assert bars["neuron"] == ["HH", "LIF"]
    for k, neuron in enumerate(("hh", "lif")):
        clean = experiments.accuracy(job.models[neuron].model, data.x_test, data.y_test)
        assert bars["accuracy"][k] == pytest.approx(clean)
        per_severity = [np.mean([experiments.accuracy(job.models[neuron].model, data.corrupted[name, severity], data.y_test)
                                 for name in ("gaussian_noise", "contrast")]) for severity in (1, 5)]
        line = pane.plots.severity_sources[neuron].data
        assert line["severity"] == [0, 1, 5] and line["accuracy"] == pytest.approx([clean] + per_severity)
    assert pane.plots.severity.visible and pane.progress.value == 100


def test_the_squid_fit_streams_its_loss_and_saves_its_report(tmp_path):
    from brainfuse_core.training.fit_squid import true_n_inf

    workbench = Workbench()
    pane = TrainPane(workbench)
    pane.view()
    pane.task.value = "squid_fit"
    assert pane.fit_box.visible and not pane.learning_box.visible
    pane.optimizer.value = "adam"
    pane.fit_fields["fit_steps"].input.value = "3"
    pane._start()
    job = pane.job
    assert job.join(120) and job.state == "finished", job.error
    pane.refresh()
    losses = list(pane.plots.source.data["loss"])
    assert losses == pytest.approx(job.log.losses()) and len(losses) == 3 * 4  # 3 Adam steps in each of 4 stages
    assert losses[0] > losses[2]  # the first stage's loss falls
    table = job.result.table(job.true)
    shown = pane.fit_table.object
    for row in table:
        assert f"| {row['parameter']} | {row['fitted']:.5g} | {row['true']:.5g} |" in shown
    data = pane.plots.n_inf_source.data
    assert data["true"] == pytest.approx(true_n_inf()[0][:-1].tolist())
    assert data["fitted"] == pytest.approx(job.result.values["n_inf"].tolist())
    assert workbench.save(str(tmp_path / "fitting.json"))
    pane._save()
    assert not pane.error.visible and "fitting.fit/squid" in pane.message.object
    assert (tmp_path / "fitting.fit" / "squid" / "fit.json").is_file()


def test_a_stopped_fit_shows_its_last_values_and_has_nothing_to_save(tmp_path):
    workbench = Workbench(path=None)
    pane = TrainPane(workbench)
    pane.task.value = "squid_fit"
    pane.fit_fields["noise_mv"].input.value = "-1"
    pane._start()
    assert pane.job is None and "Noise" in pane.error.object
    pane.fit_fields["noise_mv"].input.value = "0.5"
    pane._start()
    job = pane.job
    wait_for(lambda: job.log.count() >= 3 or job.done, 120)
    pane._stop()
    assert job.join(60) and job.state == "stopped" and job.result is None
    pane.refresh()
    last = job.log.values
    assert f"| gna | {float(last['gna']):.5g} |" in pane.fit_table.object
    assert pane.save_button.disabled and pane.progress.value < 100
    workbench.save(str(tmp_path / "p.json"))
    pane._save()
    assert pane.error.visible and "let it finish" in pane.error.object and not (tmp_path / "p.fit").exists()


def test_a_project_with_a_windowed_readout_opens_with_it_and_its_spec_keeps_the_windows():
    from app.state import example_projects

    workbench = Workbench()
    workbench.open(example_projects()["temporal_memory"])
    pane = TrainPane(workbench)
    pane.view()
    assert pane.readout.value == "windows"
    spec = pane.spec()
    assert spec.readout == "windows" and spec.windows == workbench.document["training"]["windows"]
