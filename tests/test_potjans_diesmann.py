"""The Potjans–Diesmann microcircuit document: the model's numbers at every scale, the shipped 5 % project,
and a short run at 1 % scale whose layer-wise activity has the model's qualitative shape."""

import math
from pathlib import Path

import numpy as np
import pytest

from brainfuse_core.errors import ModelError
from brainfuse_core.networks import potjans_diesmann as pd
from brainfuse_core.project import Project, load_project
from brainfuse_core.project.files import read_json
from brainfuse_core.project.schema import FORMAT

SHIPPED = Path(__file__).resolve().parents[1] / "projects" / "potjans_diesmann_5pct.json"


def _local(doc):
    """{(pre, post): projection} of the recurrent projections (spike sources excluded)."""
    return {(p["pre"], p["post"]): p for p in doc["circuit"]["projections"] if not p["pre"].endswith("_bg")}


def test_psc_amplitude_is_the_models():
    # Potjans & Diesmann (2014), Table 5: a 0.15 mV PSP is a PSC of 87.8 pA for their LIF parameters.
    assert pd.psc_amplitude_pa() == pytest.approx(87.8, abs=0.05)


def test_weights_carry_the_psc_charge_at_the_reference_potential():
    weights = pd.full_weights_us()
    j = pd.psc_amplitude_pa() * 1e-3  # nA
    l23e, l4e, l23i = (pd.POPULATIONS.index(name) for name in ("L23e", "L4e", "L23i"))
    # Conductance (µS) × driving force (mV) = current (nA): excitation J, inhibition g·J, L4e → L2/3e 2·J.
    assert weights[l23i, l23e] * (pd.E_EXC_MV - pd.V_REF_MV) == pytest.approx(j)
    assert weights[l23e, l23i] * (pd.V_REF_MV - pd.E_INH_MV) == pytest.approx(4 * j)
    assert weights[l23e, l4e] * (pd.E_EXC_MV - pd.V_REF_MV) == pytest.approx(2 * j)


def test_full_in_degrees_follow_the_connection_probabilities():
    # For large populations the model's formula tends to K = −ln(1 − C)·N_pre (independent derivation).
    k = pd.full_in_degrees()
    c = np.asarray(pd.CONNECTION_PROBABILITY)
    expected = -np.log1p(-c) * np.asarray(pd.FULL_SIZES)[None, :]
    np.testing.assert_allclose(k, expected, rtol=1e-3)
    assert round(k[0, 0]) == 2200  # L2/3e → L2/3e, the largest local in-degree


@pytest.mark.parametrize("scale", [0.01, 0.05, 1.0])
def test_document_at_scale(scale):
    doc = pd.project(scale)
    Project(doc)  # validates and builds every core object (connections are drawn only when run)
    populations = doc["circuit"]["populations"]
    local = _local(doc)
    full_k = pd.full_in_degrees()
    for post_k, post in enumerate(pd.POPULATIONS):
        assert populations[post]["n"] == max(1, round(pd.FULL_SIZES[post_k] * scale))
        source = populations[f"{post}_bg"]["poisson"]
        assert source["n"] == populations[post]["n"]
        assert source["rate_hz"] == pd.EXTERNAL_IN_DEGREES[post_k] * 8.0
        for pre_k, pre in enumerate(pd.POPULATIONS):
            expected_k = round(full_k[post_k, pre_k] * scale)
            if expected_k == 0:
                assert (pre, post) not in local
                continue
            projection = local[(pre, post)]
            assert projection["connect"] == {"rule": "fixed_indegree", "k": expected_k, "allow_self": False}
            assert projection["weight"] == pytest.approx(pd.full_weights_us()[post_k, pre_k] / math.sqrt(scale), rel=1e-5)
            assert projection["delay"] == (1.5 if pre.endswith("e") else 0.75)
    external = [p for p in doc["circuit"]["projections"] if p["pre"].endswith("_bg")]
    assert len(external) == 8
    for projection in external:
        assert projection["connect"] == {"rule": "one_to_one"}
        assert populations[projection["pre"]]["poisson"]["n"] == populations[projection["post"]]["n"]
    # Mean-input compensation only where in-degrees were cut.
    assert (len(doc["stimuli"]) == 0) == (scale == 1.0)


def test_full_scale_has_the_models_sizes_and_in_degrees():
    doc = pd.project(1.0)
    assert sum(entry["n"] for entry in doc["circuit"]["populations"].values() if "cell" in entry) == 77169
    local = _local(doc)
    # Two entries of Potjans & Diesmann's in-degree table, recomputed from C and N by hand.
    assert local[("L23e", "L23e")]["connect"]["k"] == round(math.log(1 - 0.1009) / math.log(1 - 1 / 20683 ** 2) / 20683)
    assert local[("L5i", "L5e")]["connect"]["k"] == round(math.log(1 - 0.3726) / math.log(1 - 1 / (1065 * 4850)) / 4850)


def test_compensation_replaces_the_lost_mean_current():
    # The DC current equals the mean synaptic current at V_REF that (1 − √s) of the in-degree·weight product carried.
    scale = 0.04
    current = pd.compensation_currents_na(scale)
    assert np.all(pd.compensation_currents_na(1.0) == 0)
    rates = np.asarray(pd.FULL_SCALE_RATES_HZ)
    l6e = pd.POPULATIONS.index("L6e")
    by_hand = 0.0
    for pre_k, pre in enumerate(pd.POPULATIONS):
        reversal = pd.E_EXC_MV if pre.endswith("e") else pd.E_INH_MV
        mean_g = pd.full_in_degrees()[l6e, pre_k] * pd.full_weights_us()[l6e, pre_k] * rates[pre_k] * 1e-3 * pd.TAU_SYN_MS
        by_hand += mean_g * (reversal - pd.V_REF_MV)
    assert current[l6e] == pytest.approx(0.8 * by_hand)


def test_ball_and_stick_cells_take_excitation_on_the_dendrite():
    doc = pd.project(0.01, cell="ball_and_stick")
    Project(doc)
    (cell,) = doc["cells"].values()
    assert cell["morphology"]["dend"]["parent"] == "soma" and cell["morphology"]["dend"]["region"] == "basal"
    for projection in doc["circuit"]["projections"]:
        excitatory = projection["synapse"]["e_rev"] == pd.E_EXC_MV
        assert projection.get("target") == ({"region": "basal"} if excitatory else None)
    point = pd.project(0.01)
    assert [p["connect"] for p in doc["circuit"]["projections"]] == [p["connect"] for p in point["circuit"]["projections"]]


def test_scale_outside_the_range_is_refused():
    with pytest.raises(ModelError, match=r"1 % to 100 %"):
        pd.project(0.001)
    with pytest.raises(ModelError, match=r"1 % to 100 %"):
        pd.project(2.0)
    with pytest.raises(ModelError, match=r"point, ball_and_stick"):
        pd.project(0.05, cell="pyramidal")


def test_shipped_project_is_the_generated_one():
    data = read_json(SHIPPED)
    assert data["format"] == FORMAT
    assert data == pd.project(0.05), "regenerate with: python -m brainfuse_core.networks.potjans_diesmann 0.05 " + str(SHIPPED)
    assert "python -m brainfuse_core.networks.potjans_diesmann 0.05" in data["description"]
    load_project(SHIPPED)


def test_regenerating_writes_the_same_file(tmp_path):
    path = tmp_path / "pd.json"
    pd.main(["0.05", str(path)])
    assert path.read_text() == SHIPPED.read_text()


def test_short_run_has_the_models_layer_structure():
    """1 % scale, 400 ms: every population fires at a plausible rate, and inhibitory cells faster than the
    excitatory ones of their layer (Potjans & Diesmann 2014, Fig. 6; the full numbers are in the benchmark)."""
    duration, skip = 400.0, 100.0
    result = Project(pd.project(0.01, duration=duration)).run()
    rates = {}
    for name in pd.POPULATIONS:
        record = result.spikes[name]
        rates[name] = np.sum(record.time >= skip) / record.n_cells / ((duration - skip) * 1e-3)
    for name, rate in rates.items():
        assert 0.05 < rate < 40.0, f"{name} fires at {rate:.2f} Hz: silent or runaway"
    for layer in pd.LAYERS:
        assert rates[f"{layer}i"] > rates[f"{layer}e"], rates
