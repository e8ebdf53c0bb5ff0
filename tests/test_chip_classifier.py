"""Deploying a trained HH classifier to the chip (brainfuse_core/chip/classifier.py): a small digits classifier
trained through the experiments API keeps its accuracy within 2 points on the whole test set when its hidden
layer runs in fixed point; spike counts agree; the chip receives the trained currents and conductances in its
own units; models the chip cannot run are refused; Lava equals the NumPy reference on a few samples."""

import numpy as np
import pytest
import torch

from brainfuse_core.chip.classifier import (POPULATION, check_deployable, chip_model, deploy_classifier, hidden_currents,
                                            quantize_chunk)
from brainfuse_core.chip.lava_backend import lava_available
from brainfuse_core.chip.reference import simulate
from brainfuse_core.errors import ModelError
from brainfuse_core.training.experiments import TrainingSpec, accuracy, build_model, load_task, train
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1] / "projects" / "digits_noise.json"


@pytest.fixture(scope="module")
def trained():
    # The project's quick settings (16 hidden neurons) with the project's 25-bin window, so that neurons fire
    # several spikes per sample; one corruption only, since only the clean test set is deployed.
    spec = TrainingSpec.from_project(PROJECT).quick().replace(bins=25, epochs=3, batch_size=64, seeds=(0,),
                                                              corruptions=("contrast",), severities=(1,))
    data = load_task(spec)
    return train(spec, "hh", 0, data=data), data


@pytest.fixture(scope="module")
def deployment(trained):
    model, data = trained
    return deploy_classifier(model, data=data, lava_samples=2 if lava_available() else 0)


def test_chip_accuracy_within_two_points_of_float(trained, deployment):
    model, data = trained
    assert deployment.samples == len(data.y_test) >= 200
    # The float side is the trained network itself, as evaluate() scores it.
    assert deployment.float_accuracy == pytest.approx(accuracy(model.model, data.x_test, data.y_test))
    assert deployment.float_accuracy > 0.5, "the classifier did not learn; the comparison would say nothing"
    assert abs(deployment.chip_accuracy - deployment.float_accuracy) <= 0.02


def test_spike_counts_agree(deployment):
    agreement = deployment.agreement
    assert agreement["float_spikes"] >= 2 * deployment.samples
    assert deployment.float_counts.max() >= 2
    assert agreement["equal_fraction"] >= 0.98
    assert agreement["total_count_error_percent"] <= 2.0
    # V sits at the bottom of its word only in cells driven far below −128 mV, which are silent in both runs.
    assert agreement["clipped_cells_with_unequal_counts"] == 0
    assert deployment.overflow["gates"] == 0


def test_chip_receives_the_trained_currents_and_conductances(trained):
    model = trained[0].model
    images = trained[1].x_test[:3]
    currents = hidden_currents(model, images)
    with torch.no_grad():
        expected = (images.flatten(1) @ model.input.weight.T + model.input.bias) * float(model.input_scale)
    np.testing.assert_allclose(currents.numpy(), expected.double().numpy(), rtol=1e-6)
    artifact = quantize_chunk(model, currents)
    layer = model.layer
    # I·dt/C per substep in mV: µA/cm² × ms / (µF/cm²).
    drive = artifact.arrays["pop0_current_values_float"]
    assert drive.shape == (1, 3 * layer.size)
    np.testing.assert_allclose(drive[0], currents.reshape(-1).numpy() * layer.dt / layer.cm, rtol=1e-9)
    population = artifact.manifest["populations"][0]
    assert population["n"] == 3 * layer.size and population["threshold_mv"] == layer.threshold
    # µS of the cell = S/cm² × µm² × 1e-2.
    learnt = layer.log_gbar.exp().detach().numpy()
    np.testing.assert_allclose([c["g_us"] / (layer.area * 1e-2) for c in population["channels"]], learnt, rtol=1e-12)
    manifest = artifact.manifest
    assert manifest["dt"] == layer.dt and manifest["celsius"] == layer.celsius
    assert manifest["chip_dt"] == pytest.approx(layer.bin_ms)
    assert manifest["steps"] * manifest["chip_dt"] == pytest.approx(model.bins * layer.bin_ms)


def test_samples_side_by_side_equal_samples_alone(trained):
    model = trained[0].model
    currents = hidden_currents(model, trained[1].x_test[:4])
    together = simulate(quantize_chunk(model, currents))
    cells = together.spike_cells[POPULATION]
    for s in (0, 3):
        alone = simulate(quantize_chunk(model, currents[s:s + 1]))
        mine = (cells >= s * model.layer.size) & (cells < (s + 1) * model.layer.size)
        np.testing.assert_array_equal(alone.spike_cells[POPULATION], cells[mine] - s * model.layer.size)
        np.testing.assert_array_equal(alone.spike_steps[POPULATION], together.spike_steps[POPULATION][mine])


def test_finer_chip_step_gives_the_same_counts(trained, deployment):
    finer = deploy_classifier(trained[0], data=trained[1], samples=40, substeps=2)
    assert finer.settings["chip_dt_ms"] == pytest.approx(2 * trained[0].spec.dt)
    np.testing.assert_array_equal(finer.chip_counts, deployment.chip_counts[:40])


def test_lava_equals_reference(deployment):
    if not lava_available():
        pytest.skip("no .venv-lava (bash .ci/setup.sh makes it)")
    assert deployment.lava["bit_exact"], deployment.lava


def test_models_the_chip_cannot_run_are_refused(trained):
    spec = trained[0].spec
    with pytest.raises(ModelError, match="HH hidden layer"):
        check_deployable(build_model(spec, "lif", 64, 10))
    with pytest.raises(ModelError, match="readout 'count'"):
        check_deployable(build_model(spec.replace(readout="voltage"), "hh", 64, 10))
    with pytest.raises(ModelError, match="substeps must be a positive whole number dividing"):
        quantize_chunk(trained[0].model, torch.ones(1, spec.hidden), substeps=3)
    network, _ = chip_model(trained[0].model, torch.ones(2, spec.hidden))
    assert network.populations[POPULATION].n == 2 * spec.hidden
