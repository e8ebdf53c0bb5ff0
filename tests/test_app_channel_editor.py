"""The channel editor without a browser: handle logic, document edits, the curves it draws, the
single-cell preview, and the pane wired to a Workbench (drags, undo, fields, new channels)."""

import copy
import weakref
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from bokeh.document import Document
from bokeh.io.doc import patch_curdoc

from app.editors import channel_document as document
from app.editors.channel_curves import TABULATION_POINTS, clamp_family, gate_curves, peak_currents, steady_state_iv
from app.editors.channel_editor import ChannelEditor
from app.editors.channel_preview import StepProtocol, preview_membrane, simulate_step
from app.editors.curve_handles import MIN_SCALE, MIN_TAU, check_parameter, curve_handles, drag_curve, moved_handles, tabulate_gate
from app.state import Workbench, example_projects
from brainfuse_core.channels import CHANNELS, curve_from_dict
from brainfuse_core.project import Project
from brainfuse_core.project.files import read_json


@pytest.fixture
def squid():
    return read_json(example_projects()["squid_axon"])


def value(curve_data, x):
    return float(curve_from_dict(curve_data)({"v": torch.tensor([float(x)], dtype=torch.float64)})[0])


# ---------------------------------------------------------------------------- handles
def test_rate_handles_sit_on_the_curve_and_a_drag_moves_midpoint_and_rate():
    alpha = {"kind": "exp_linear", "rate": 1.0, "midpoint": -40.0, "scale": 10.0}
    midpoint, scale = curve_handles(alpha, "alpha", yscale=2.0)
    assert (midpoint.x, midpoint.y) == (-40.0, pytest.approx(2.0))
    assert scale.x == -30.0 and scale.y == pytest.approx(2.0 * value(alpha, -30.0))
    moved = drag_curve(alpha, "alpha", [(0, -35.0, 3.0)], yscale=2.0)
    assert moved == {"kind": "exp_linear", "rate": pytest.approx(1.5), "midpoint": -35.0, "scale": 10.0}
    assert alpha["midpoint"] == -40.0, "the document's dict is never changed in place"


def test_a_scale_handle_cannot_cross_its_midpoint():
    beta = {"kind": "exp", "rate": 4.0, "midpoint": -65.0, "scale": -18.0}
    assert drag_curve(beta, "beta", [(1, -70.0, 1.0)])["scale"] == -5.0
    assert drag_curve(beta, "beta", [(1, -50.0, 1.0)])["scale"] == -MIN_SCALE


def test_boltzmann_bell_and_constant_handles():
    inf = {"kind": "boltzmann", "midpoint": -35.0, "slope": 10.0, "low": 0.0, "high": 1.0}
    assert [(h.name, h.x, h.y) for h in curve_handles(inf, "inf")][0] == ("midpoint", -35.0, pytest.approx(0.5))
    assert drag_curve(inf, "inf", [(0, -30.0, 0.9)])["midpoint"] == -30.0
    tau = {"kind": "bell", "base": 1.0, "amplitude": 100.0, "mid_rise": -60.0, "scale_rise": 20.0, "mid_fall": -35.0,
           "scale_fall": 20.0}
    moved = drag_curve(tau, "tau", [(0, -55.0, 40.0)])
    assert moved["mid_rise"] == -55.0 and value(moved, -55.0) == pytest.approx(40.0)
    assert drag_curve({"kind": "constant", "value": 0.03}, "beta", [(0, 0.0, -1.0)])["value"] == 0.0


def test_tabulated_points_move_vertically_only_and_stay_in_range():
    inf = {"kind": "tabulated", "points": [-80.0, -40.0, 0.0], "values": [0.0, 0.5, 1.0]}
    assert [h.name for h in curve_handles(inf, "inf")] == ["point 0", "point 1", "point 2"]
    assert drag_curve(inf, "inf", [(1, -20.0, 0.7)]) == {"kind": "tabulated", "points": [-80.0, -40.0, 0.0], "values": [0.0, 0.7, 1.0]}
    assert drag_curve(inf, "inf", [(1, -40.0, 1.6)])["values"][1] == 1.0
    tau = {"kind": "tabulated", "points": [-80.0, 0.0], "values": [2.0, 1.0]}
    assert drag_curve(tau, "tau", [(0, -80.0, -3.0)])["values"][0] == MIN_TAU
    assert drag_curve(tau, "tau", [(0, -80.0, 6.0)], yscale=3.0)["values"][0] == pytest.approx(2.0)


def test_moved_handles_finds_the_dragged_ones_and_refuses_added_or_deleted_points():
    handles = curve_handles({"kind": "tabulated", "points": [0.0, 1.0, 2.0], "values": [0.1, 0.2, 0.3]}, "inf")
    assert moved_handles(handles, [0.0, 1.0, 2.0], [0.1, 0.25, 0.3]) == [(1, 1.0, 0.25)]
    assert moved_handles(handles, [0.0, 1.0, 2.0], [0.1, 0.2, 0.3]) == []
    assert moved_handles(handles, [0.0, 2.0], [0.1, 0.3]) is None
    assert moved_handles(handles, [0.0, 1.0, 2.0], [0.1, float("nan"), 0.3]) is None


def test_parameter_checks():
    assert check_parameter("exp", "alpha", "scale", 0.0)
    assert check_parameter("exp", "alpha", "rate", -1.0)
    assert check_parameter("boltzmann", "inf", "high", 1.5)
    assert check_parameter("constant", "tau", "value", 0.0)
    assert check_parameter("exp", "alpha", "midpoint", -100.0) is None


def test_tabulating_an_alpha_beta_gate_keeps_its_curves():
    channel = CHANNELS["hh_na"]()
    tabulated = tabulate_gate(channel, "m", TABULATION_POINTS)
    assert set(tabulated) == {"power", "inf", "tau"} and tabulated["power"] == 3
    assert tabulated["inf"]["points"] == list(TABULATION_POINTS)
    data = channel.to_dict()
    data["gates"]["m"] = tabulated
    edited = type(channel).from_dict("hh_na", data)
    v = torch.linspace(-100, 50, 301, dtype=torch.float64)
    for celsius in (6.3, 20.0):
        before, after = channel.curves(v, celsius)["m"], edited.curves(v, celsius)["m"]
        assert float((before["inf"] - after["inf"]).abs().max()) < 0.01
        assert float((before["tau"] - after["tau"]).abs().max()) < 0.02 * float(before["tau"].max())


# ---------------------------------------------------------------------------- document
def test_choices_list_the_project_channels_then_the_other_library_ones(squid):
    names = [name for name, _ in document.channel_choices(squid)]
    assert names[:3] == ["hh_na", "hh_k", "leak"] and set(names) == set(CHANNELS)
    assert dict(document.channel_choices(squid))["traub_na"] == "library"


def test_editing_a_library_entry_stores_its_full_definition(squid):
    curve = {"kind": "exp", "rate": 0.1, "midpoint": -60.0, "scale": -20.0}
    document.set_curve(squid, "hh_na", "h", "alpha", curve)
    entry = squid["channels"]["hh_na"]
    assert "library" not in entry and entry["gates"]["h"]["alpha"] == curve and entry["gbar"] == 0.12
    document.set_curve(squid, "traub_kd", "n", "beta", {"kind": "exp", "rate": 0.5, "midpoint": -50.0, "scale": -40.0})
    assert squid["channels"]["traub_kd"]["gates"]["n"]["beta"]["midpoint"] == -50.0
    Project(squid)


def test_gbar_of_a_library_entry_keeps_the_library_form(squid):
    document.set_gbar(squid, "hh_k", 0.05)
    assert squid["channels"]["hh_k"] == {"library": "hh_k", "gbar": 0.05}
    document.set_gbar(squid, "m_current", 2e-4)
    assert squid["channels"]["m_current"] == {"library": "m_current", "gbar": 2e-4}


def test_new_channel_names_are_checked(squid):
    assert "letters, digits" in document.check_new_name(squid, "2fast")
    assert document.check_new_name(squid, "hh_na")
    assert document.check_new_name(squid, "ca_hva")
    assert document.check_new_name(squid, "")
    document.add_channel_copy(squid, "my_na", "hh_na")
    assert squid["channels"]["my_na"] == CHANNELS["hh_na"]().to_dict()
    with pytest.raises(ValueError):
        document.add_channel_copy(squid, "my_na", "hh_k")


def test_reversal_comes_from_the_cell_that_inserts_the_channel(squid):
    assert document.reversal_of(squid, document.channel_from(squid, "hh_k")) == -77.0
    assert document.reversal_of(squid, document.channel_from(squid, "leak")) == -54.3
    assert document.reversal_of(squid, document.channel_from(squid, "traub_kd")) == -77.0


# ---------------------------------------------------------------------------- curves
def test_curves_iv_and_clamp_family_agree_with_the_channel():
    channel = CHANNELS["hh_k"]()
    curves = gate_curves(channel, 6.3)["n"]
    assert curves["axis"] == "v" and set(curves) >= {"x", "inf", "tau", "alpha", "beta"}
    np.testing.assert_allclose(curves["inf"], curves["alpha"] / (curves["alpha"] + curves["beta"]))
    v, current = steady_state_iv(channel, -77.0, 6.3)
    np.testing.assert_allclose(current, channel.steady_state_current(torch.as_tensor(v), -77.0, 6.3).numpy())
    t, family = clamp_family(channel, -77.0, 6.3, levels=(0.0,), duration=200.0)
    trace = family[0.0]
    assert trace[t < 0] == pytest.approx(float(channel.steady_state_current(torch.tensor([-80.0]), -77.0, 6.3)[0]))
    assert trace[-1] == pytest.approx(float(channel.steady_state_current(torch.tensor([0.0]), -77.0, 6.3)[0]), rel=1e-3)
    assert np.all(np.diff(trace[t >= 0]) >= -1e-12), "a delayed rectifier only grows during a step"


def test_sodium_has_an_inward_transient_peak():
    channel = CHANNELS["hh_na"]()
    t, family = clamp_family(channel, 50.0, 6.3)
    peaks = peak_currents(t, family)
    assert min(peaks.values()) < -1.0
    assert abs(family[0.0][-1]) < abs(peaks[0.0]) / 5, "the current inactivates"


def test_calcium_gates_are_drawn_against_calcium():
    curves = gate_curves(CHANNELS["k_ahp"](), 22.0)["w"]
    assert curves["axis"] == "cai" and curves["x"][0] < curves["x"][-1] and np.all(np.diff(curves["inf"]) > 0)


# ---------------------------------------------------------------------------- preview
def test_preview_spikes_at_the_times_of_the_core_simulation(squid):
    protocol = StepProtocol(amp=10.0, delay=2.0, dur=20.0, tstop=25.0)
    t, v = simulate_step(preview_membrane(squid, "hh_na"), protocol)
    reference = copy.deepcopy(squid)
    reference["stimuli"] = [{"type": "iclamp", "population": "axon", "amp": 10.0, "delay": 2.0, "dur": 20.0, "density": True}]
    reference["recordings"] = [{"population": "axon", "variable": "v"}]
    reference["run"]["duration"] = 25.0
    result = Project(reference).run()
    v_core = result["axon.v"][0, 0].numpy()

    def crossings(trace):
        return np.flatnonzero((trace[1:] >= -20) & (trace[:-1] < -20))

    assert len(crossings(v)) >= 2
    np.testing.assert_array_equal(crossings(v), crossings(v_core))
    assert np.max(np.abs(v - v_core)) < 1e-9


def test_preview_uses_the_cell_of_the_channel_and_adds_a_foreign_one(squid):
    membrane = preview_membrane(squid, "hh_k")
    assert membrane.cell == "axon" and membrane.channel_names == ["hh_na", "hh_k", "leak"]
    membrane = preview_membrane(squid, "m_current")
    assert membrane.channel_names[-1] == "m_current"


# ---------------------------------------------------------------------------- the pane
@pytest.fixture
def editor():
    workbench = Workbench()
    editor = ChannelEditor(workbench)
    editor.view()
    return editor


def drag(source, index, dx=0.0, dy=0.0):
    """Move one handle as the browser's PointDrawTool reports a released drag: the whole data, once."""
    data = {key: list(values) for key, values in source.data.items()}
    data["x"][index] += dx
    data["y"][index] += dy
    source.data = data


def test_drag_changes_the_document_once_and_redraws(editor):
    workbench = editor.workbench
    view = editor.gate_views["m"]
    before = np.array(view.lines["inf"].data["y"])
    revision = workbench.revision
    drag(view.handle_sources["alpha"], 0, dx=-10.0)
    assert workbench.revision == revision + 1
    assert workbench.document["channels"]["hh_na"]["gates"]["m"]["alpha"]["midpoint"] == -50.0
    assert np.max(np.array(view.lines["inf"].data["y"]) - before) > 0.1, "m∞ moved to lower voltages"
    assert view.handle_sources["alpha"].data["x"][0] == -50.0
    assert "drag hh_na.m" in workbench.message
    workbench.undo()
    np.testing.assert_allclose(editor.gate_views["m"].lines["inf"].data["y"], before)
    assert workbench.document["channels"]["hh_na"] == {"library": "hh_na", "gbar": 0.12}
    workbench.redo()
    assert editor.gate_views["m"].handle_sources["alpha"].data["x"][0] == -50.0


def test_tabulate_then_drag_a_control_point(editor):
    workbench = editor.workbench
    editor.gate_views["h"].tabulate.clicks += 1
    view = editor.gate_views["h"]
    inf = workbench.document["channels"]["hh_na"]["gates"]["h"]["inf"]
    assert inf["kind"] == "tabulated" and len(view.handle_sources["inf"].data["x"]) == len(TABULATION_POINTS)
    assert view.tabulate.disabled
    drag(view.handle_sources["inf"], 4, dx=7.0, dy=-0.3)
    after = workbench.document["channels"]["hh_na"]["gates"]["h"]["inf"]
    assert after["points"] == inf["points"], "control points keep their voltage"
    assert after["values"][4] == pytest.approx(inf["values"][4] - 0.3)
    assert view.handle_sources["inf"].data["x"][4] == inf["points"][4], "the handle snaps back to its voltage"


def test_a_deleted_handle_changes_nothing_and_is_put_back(editor):
    workbench = editor.workbench
    source = editor.gate_views["m"].handle_sources["beta"]
    revision = workbench.revision
    source.data = {"x": source.data["x"][:1], "y": source.data["y"][:1], "name": source.data["name"][:1]}
    assert workbench.revision == revision
    assert len(source.data["x"]) == 2


def test_bad_field_input_shows_an_error_and_changes_nothing(editor):
    workbench = editor.workbench
    view = editor.gate_views["m"]
    scale = next(f for f in view.fields if "bf-param-m-alpha-scale" in f.input.css_classes)
    for text in ("abc", "0"):
        scale.input.value = text
        assert scale.error.visible
        assert workbench.document["channels"]["hh_na"] == {"library": "hh_na", "gbar": 0.12}
    scale.input.value = "12"
    assert not scale.error.visible
    assert workbench.document["channels"]["hh_na"]["gates"]["m"]["alpha"]["scale"] == 12.0
    editor.gbar.input.value = "-1"
    assert editor.gbar.error.visible and workbench.document["channels"]["hh_na"]["gbar"] == 0.12


def test_new_channel_and_library_channels(editor):
    workbench = editor.workbench
    editor.new_name.value = "hh na"
    editor.create.clicks += 1
    assert editor.new_error.visible and "hh na" not in workbench.document["channels"]
    editor.new_name.value = "fast_na"
    editor.create.clicks += 1
    assert not editor.new_error.visible and editor.selected == "fast_na" and editor.select.value == "fast_na"
    assert workbench.document["channels"]["fast_na"]["gates"]["m"]["power"] == 3
    editor.select.value = "m_current"
    assert "not in this project" in editor.info.object
    drag(editor.gate_views["p"].handle_sources["inf"], 0, dx=5.0)
    assert workbench.document["channels"]["m_current"]["gates"]["p"]["inf"]["midpoint"] == -30.0
    workbench.undo()
    workbench.undo()
    assert "fast_na" not in workbench.document["channels"]
    assert editor.selected == "m_current"


def test_an_editor_built_outside_a_session_ignores_a_document_another_thread_serves():
    """Bokeh's process-wide curdoc may hold a served session's document (a server thread's callback
    patches it); an editor built outside any session still previews at once, on its own."""

    class Session:
        request = SimpleNamespace(arguments={})

    served = Document()
    context = Session()
    served._session_context = weakref.ref(context)
    built = []
    with patch_curdoc(served):
        # Bokeh's patch_curdoc stays in place if its block raises: never raise inside it.
        try:
            built.append(ChannelEditor(Workbench()))
            built[0].view()
        except Exception as err:
            built.append(err)
    editor = built[0]
    assert isinstance(editor, ChannelEditor) and len(built) == 1, built
    assert editor.document is None
    assert "spike" in editor.preview_status.object and "hh" in editor.preview_status.object


def test_opening_another_project_redraws_and_the_preview_follows_edits(editor):
    workbench = editor.workbench
    workbench.open(example_projects()["cobahh"])
    assert editor.selected == "traub_na" and set(editor.gate_views) == {"m", "h"}
    assert "traub" in editor.preview_status.object
    spikes = editor.preview_status.object
    editor.gbar.input.value = "0"
    assert workbench.document["channels"]["traub_na"]["gbar"] == 0
    assert editor.preview_status.object.startswith("0 spikes") and editor.preview_status.object != spikes
    editor.preview_amp.value = "many"
    assert editor.preview_error.visible
