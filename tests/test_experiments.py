"""The HH-vs-LIF experiments: the training spec's checks, ``train``'s progress and stop contract,
learning on a tiny run, save/load, the quick (smoke) experiments of both example projects and the
``brainfuse train`` command. The full experiments are not run here (see README)."""

import json
from pathlib import Path

import pytest
import torch

from brainfuse_core.cli import main
from brainfuse_core.errors import ModelError, ProjectError
from brainfuse_core.project import load_project
from brainfuse_core.project.schema import CORRUPTION_NAMES
from brainfuse_core.training import data as datasets
from brainfuse_core.training.experiments import (TrainedModel, TrainingSpec, build_model, evaluate, load_task,
                                                 memory_probe_isolated, model_path, run_experiment, train)
from brainfuse_core.training.layers import HHLayer, LIFLayer

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "projects" / "digits_noise.json"
TEMPORAL = ROOT / "projects" / "temporal_memory.json"
ROWS = ROOT / "projects" / "digits_rows.json"

# A digits run small enough for a few seconds: 8 neurons held 5 bins of 1 ms at dt 0.5 ms.
TINY = dict(task="digits_noise", hidden=8, bins=5, dt=0.5, epochs=1, batch_size=64, learning_rate=0.03,
            corruptions=("contrast",), severities=(5,))


@pytest.fixture(scope="module")
def tiny():
    spec = TrainingSpec(**TINY)
    return spec, load_task(spec)


@pytest.mark.parametrize("section, path, words", [
    ({"task": "mnist"}, "training.task", "must be one of"),
    ({"task": "digits_noise", "epochs": 0}, "training.epochs", "at least 1"),
    ({"task": "digits_noise", "neurons": ["hh", "izhikevich"]}, "training.neurons[1]", "must be one of"),
    ({"task": "digits_noise", "seeds": []}, "training.seeds", "at least 1"),
    ({"task": "digits_noise", "severities": [0]}, "training.severities[0]", "at least 1"),
    ({"task": "digits_noise", "learning_rate": -1e-3}, "training.learning_rate", "positive"),
    ({"task": "digits_noise", "constants": {"gaussian_noise": "mnist_c"}}, "training.constants.gaussian_noise", "cifar10c"),
    ({"task": "digits_noise", "bin_ms": 1.0, "dt": 0.3}, "training.dt", "whole number of steps"),
    ({"task": "digits_noise", "data": {"row_ms": 40}}, "training.data.row_ms", "split_seed"),
    ({"task": "delayed_match", "data": {"delay": 300}}, "training.data.delay", "delay_ms"),
    ({"task": "temporal_xor", "data": {"n_train": 0}}, "training.data.n_train", "positive whole number"),
    ({"task": "digits_noise", "quick": {"hidden": 0}}, "training.quick.hidden", "at least 1"),
    ({"task": "digits_noise", "cell": "pyramidal"}, "training.cell", "no cell 'pyramidal'"),
    ({"task": "digits_noise", "readout": "bins"}, "training.readout", "must be one of"),
    ({"task": "digits_noise", "readout": "windows", "windows": 0}, "training.windows", "at least 1"),
    ({"task": "digits_noise", "readout": "windows", "windows": 30, "bins": 25}, "training.windows", "one bin per window"),
])
def test_bad_training_sections_name_the_field(section, path, words):
    with pytest.raises(ProjectError) as caught:
        TrainingSpec.from_dict(section, {"cells": {"hh": {}}})
    message = str(caught.value)
    assert message.startswith(path + ":") and words in message


def test_cells_that_cannot_make_layer_neurons_are_refused():
    project = load_project(TEMPORAL).to_dict()
    project["cells"]["adapting"]["morphology"]["soma"]["nseg"] = 3
    with pytest.raises(ProjectError, match="training.cell: .*one-compartment"):
        TrainingSpec.from_dict(project["training"], project)
    with pytest.raises(ProjectError, match="epochs: must be at least 1"):
        TrainingSpec(**TINY).replace(epochs=0)


def test_projects_give_specs_whose_hh_neurons_are_the_project_cell():
    spec = TrainingSpec.from_project(TEMPORAL)
    assert spec.task == "temporal_xor" and spec.seeds == (0, 1, 2) and spec.neurons == ("hh", "lif")
    options = spec.hh_options()
    densities = {channel.name: channel.gbar for channel in options["channels"]}
    assert densities == {"hh_na": 0.12, "hh_k": 0.036, "leak": 0.0003, "adaptation": 0.01}
    assert options["reversals"]["k"] == -77 and options["v_rest"] == -65
    quick = spec.quick()
    assert quick.smoke and quick.hidden == 8 and quick.data["n_train"] == 64 and quick.hh_cell["name"] == "adapting"
    assert TrainingSpec.from_json_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert list(CORRUPTION_NAMES) == list(datasets.CORRUPTIONS)


def test_a_project_without_training_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ProjectError, match="no training section"):
        TrainingSpec.from_project(ROOT / "projects" / "squid_axon.json")
    assert main(["train", str(ROOT / "projects" / "squid_axon.json"), "--out", str(tmp_path)]) == 2
    assert "no training section" in capsys.readouterr().err


def test_train_reports_every_batch_and_the_loss_falls(tiny):
    spec, data = tiny
    calls = []
    trained = train(spec.replace(epochs=3), "lif", 0, progress=lambda *args: calls.append(args), data=data)
    batches = -(-len(data.y_train) // spec.batch_size)
    assert [(epoch, batch) for epoch, batch, _, _ in calls] == [(e, b) for e in range(3) for b in range(batches)]
    losses = [loss for _, _, loss, _ in calls]
    assert losses == trained.history["loss"] and all(0 <= acc <= 1 for *_, acc in calls)
    first, last = sum(losses[:batches]) / batches, sum(losses[-batches:]) / batches
    assert last < 0.7 * first
    epochs = trained.history["epochs"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2] and all(e["complete"] for e in epochs)
    assert epochs[-1]["test_accuracy"] > 0.5 and trained.wall_time_s > 0 and not trained.stopped


def test_should_stop_ends_training_after_that_batch(tiny):
    spec, data = tiny
    polls = []

    def stop():
        polls.append(len(polls))
        return len(polls) == 4

    trained = train(spec.replace(epochs=5), "hh", 1, should_stop=stop, data=data)
    assert trained.stopped and len(polls) == 4 and len(trained.history["loss"]) == 4
    (epoch,) = trained.history["epochs"]
    assert epoch["epoch"] == 0 and epoch["batches"] == 4 and not epoch["complete"]


def test_saved_models_load_with_identical_outputs(tiny, tmp_path):
    spec, data = tiny
    for neuron, layer_type in (("hh", HHLayer), ("lif", LIFLayer)):
        trained = train(spec, neuron, 2, data=data)
        path = trained.save(model_path(tmp_path / "my_project.json", neuron, 2))
        assert path == tmp_path / "my_project.trained" / f"{neuron}_seed2.pt"
        loaded = TrainedModel.load(path)
        assert isinstance(loaded.model.layer, layer_type) and loaded.spec == spec and loaded.seed == 2
        assert loaded.history == trained.history
        x = data.x_test[:20]
        with torch.no_grad():
            assert torch.equal(loaded.model(x), trained.model(x))
        assert evaluate(loaded, spec, data) == evaluate(trained, spec, data)


@pytest.mark.parametrize("project", [DIGITS, TEMPORAL, ROWS], ids=["digits_noise", "temporal_memory", "digits_rows"])
def test_quick_experiments_of_the_example_projects(project, tmp_path):
    spec = TrainingSpec.from_project(project)
    results = run_experiment(spec, tmp_path, quick=True, progress=False)
    quick = spec.quick()
    assert results["quick"] and len(results["runs"]) == len(quick.neurons) * len(quick.seeds)
    for run in results["runs"]:
        assert 0.0 <= run["evaluation"]["clean"] <= 1.0 and len(run["history"]["epochs"]) == quick.epochs
    table = (tmp_path / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    corrupted = len(quick.corruptions) * len(quick.severities) if quick.task == "digits_noise" else 0
    assert len(rows) == 1 + 1 + corrupted + 1 + len(quick.neurons)  # header, clean, corrupted, cost header, costs
    assert all(row.count(" ± ") == len(quick.neurons) for row in rows[1:2 + corrupted])
    assert "HH / LIF: time per epoch" in table and results["ratios"]["time"] > 0
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000
    assert (tmp_path / "accuracy_vs_severity.png").exists() == (quick.task == "digits_noise")
    assert len(list((tmp_path / "models").glob("*.pt"))) == len(results["runs"])


@pytest.mark.parametrize("neuron", ["hh", "lif"])
def test_windows_readout_counts_spikes_per_window(neuron):
    # Spike trains of 7 bins in 3 windows: edges round(k·7/3) = 0, 2, 5, 7. Tiling the count model's
    # readout weights over the windows must give the count model's scores, and so its gradients.
    spec = TrainingSpec(**{**TINY, "task": "temporal_xor", "dt": 0.1, "data": {"n_train": 4, "n_test": 4}})
    torch.manual_seed(0)
    counting = build_model(spec, neuron, 6, 2).double()
    windowed = build_model(spec.replace(readout="windows", windows=3), neuron, 6, 2).double()
    windowed.load_state_dict({**counting.state_dict(), "output.weight": counting.output.weight.repeat(1, 3)})
    x = (torch.rand(5, 7, 6, generator=torch.Generator().manual_seed(1)) < 0.5).double()
    spikes = windowed.layer(windowed.input(x) * windowed.input_scale).detach()
    features = windowed.features(x)
    assert features.shape == (5, 3 * spec.hidden) and spikes.sum() > 0
    expected = torch.cat([spikes[:, 0:2].sum(1), spikes[:, 2:5].sum(1), spikes[:, 5:7].sum(1)], dim=1)
    assert torch.equal(features.detach(), expected)
    for model in (counting, windowed):
        model(x).square().sum().backward()
    assert torch.allclose(windowed(x), counting(x))
    assert counting.input.weight.grad.abs().sum() > 0
    assert torch.allclose(windowed.input.weight.grad, counting.input.weight.grad, rtol=1e-10, atol=1e-12)
    with pytest.raises(ModelError, match="only 2 bins"):
        windowed(x[:, :2])


def test_memory_probe_sees_the_layer_not_the_data():
    # The voltage trace kept for the surrogate is steps × batch × neurons float64: 200 × 64 × 256 × 8 B ≈ 26 MB
    # for 256 neurons against 0.4 MB for 4, while making the data (25 corrupted test sets) costs the same in both.
    small, large = (memory_probe_isolated(TrainingSpec(**{**TINY, "hidden": hidden, "bins": 20, "dt": 0.1}), "lif")
                    for hidden in (4, 256))
    assert small < 15 and large > small + 25


def test_cli_train_quick_writes_results(tmp_path, capsys):
    assert main(["train", str(TEMPORAL), "--quick", "--neuron", "lif", "--seeds", "1", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(run["neuron"], run["seed"]) for run in results["runs"]] == [("lif", 0)]
    printed = capsys.readouterr().out
    assert "| clean |" in printed and f"wrote {tmp_path}/" in printed
