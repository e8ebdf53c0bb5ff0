"""The circuit editor's view-model (graph, document changes, drawing geometry), presets and pane logic, without a browser."""

import copy
import math

import pytest

from app.editors import circuit_graph as cg
from app.editors.circuit_presets import COBAHH_SCALES, COLUMN, DEFAULT_SCALE, PD_SCALES, SCALES, apply_preset, cobahh, make_preset
from app.state import Workbench, blank_document, example_projects
from brainfuse_core.networks import potjans_diesmann as pd
from brainfuse_core.project import Project
from brainfuse_core.project.files import read_json


@pytest.fixture
def doc():
    return blank_document()


@pytest.fixture
def cobahh_doc():
    return read_json(example_projects()["cobahh"])


def test_graph_of_cobahh(cobahh_doc):
    graph = cg.build_graph(cobahh_doc)
    assert list(graph.nodes) == ["E", "I"]
    assert graph.nodes["E"]["size"] == 3200 and graph.nodes["E"]["kind"] == "cell"
    assert sorted(graph.edges(keys=True)) == [("E", "E", 0), ("E", "I", 1), ("I", "E", 2), ("I", "I", 3)]
    assert graph.edges["E", "I", 1]["excitatory"] and not graph.edges["I", "E", 2]["excitatory"]
    assert graph.nodes["E"]["pos"] != graph.nodes["I"]["pos"]


def test_add_population_and_source_get_fresh_names_and_free_spots(doc):
    cg.add_population(doc, cg.fresh_name(doc, "P"))
    cg.add_population(doc, cg.fresh_name(doc, "P"))
    cg.add_source(doc, cg.fresh_name(doc, "S"))
    assert list(doc["circuit"]["populations"]) == ["axon", "P1", "P2", "S1"]
    assert doc["circuit"]["populations"]["P1"] == {"cell": "axon", "n": 10, "threshold": -20.0}
    assert doc["circuit"]["populations"]["S1"]["poisson"]["n"] == 10
    spots = list(doc["layout"]["populations"].values())
    assert len({tuple(spot) for spot in spots}) == 4
    Project(doc)
    with pytest.raises(ValueError, match="already"):
        cg.add_population(doc, "P1")
    with pytest.raises(ValueError, match="not a valid name"):
        cg.add_population(doc, "2x")


def test_add_population_without_cells_brings_an_hh_cell(doc):
    doc["cells"] = {}
    doc["circuit"]["populations"] = {}
    doc["stimuli"], doc["recordings"] = [], []
    doc["channels"]["leak"] = {"library": "leak", "gbar": 1e-4}
    cg.add_population(doc, "P1")
    assert doc["circuit"]["populations"]["P1"]["cell"] == "hh"
    # The document's own "leak" differs, so the HH cell's leak comes under a new name.
    assert doc["channels"]["leak"] == {"library": "leak", "gbar": 1e-4}
    assert {"channel": "leak_2"} in doc["cells"]["hh"]["insert"]
    Project(doc)


def test_rename_follows_every_reference(doc):
    cg.add_population(doc, "P1")
    cg.connect(doc, "axon", "P1")
    cg.rename_population(doc, "axon", "driver")
    assert list(doc["circuit"]["populations"]) == ["driver", "P1"]
    assert doc["circuit"]["projections"][0]["pre"] == "driver"
    assert {s["population"] for s in doc["stimuli"] + doc["recordings"]} == {"driver"}
    assert list(doc["layout"]["populations"]) == ["driver", "P1"]
    Project(doc)
    for bad, message in (("P1", "already"), ("a b", "not a valid name"), ("", "not a valid name")):
        with pytest.raises(ValueError, match=message):
            cg.rename_population(copy.deepcopy(doc), "driver", bad)


def test_delete_population_takes_what_refers_to_it(doc):
    cg.add_population(doc, "P1")
    cg.connect(doc, "axon", "P1")
    cg.connect(doc, "P1", "P1")
    cg.delete_population(doc, "axon")
    assert list(doc["circuit"]["populations"]) == ["P1"]
    assert [(p["pre"], p["post"]) for p in doc["circuit"]["projections"]] == [("P1", "P1")]
    assert doc["stimuli"] == [] and doc["recordings"] == []
    assert list(doc["layout"]["populations"]) == ["P1"]
    Project(doc)
    with pytest.raises(ValueError, match="at least one population"):
        cg.delete_population(doc, "P1")


def test_connect_uses_the_defaults_and_refuses_a_source_as_target(doc):
    cg.add_source(doc, "S1")
    index = cg.connect(doc, "S1", "axon")
    projection = doc["circuit"]["projections"][index]
    assert projection["synapse"] == {"kind": "exp", "tau": 5.0, "e_rev": 0.0}
    assert projection["connect"] == {"rule": "fixed_probability", "p": 0.1, "allow_self": False}
    assert projection["weight"] == 0.005
    Project(doc)
    with pytest.raises(ValueError, match="spike source"):
        cg.connect(doc, "axon", "S1")


def test_move_writes_every_drawn_position(cobahh_doc):
    drawn = cg.positions(cobahh_doc)
    cg.move_population(cobahh_doc, "E", 3.25, 1.5)
    assert cobahh_doc["layout"]["populations"] == {"E": [3.25, 1.5], "I": list(drawn["I"])}
    Project(cobahh_doc)


def test_kind_change_to_poisson_drops_what_a_source_cannot_have(doc):
    cg.add_population(doc, "P1")
    cg.connect(doc, "P1", "axon")
    cg.connect(doc, "P1", "P1")
    cg.set_kind(doc, "axon", "poisson")
    assert doc["circuit"]["populations"]["axon"]["poisson"]["n"] == 1
    assert [(p["pre"], p["post"]) for p in doc["circuit"]["projections"]] == [("P1", "P1")]
    assert doc["stimuli"] == [] and doc["recordings"] == []
    Project(doc)
    cg.set_kind(doc, "axon", "cell")
    assert doc["circuit"]["populations"]["axon"] == {"cell": "axon", "n": 1, "threshold": -20.0}
    Project(doc)


def test_drive_is_one_current_step_on_all_cells(doc):
    cg.add_population(doc, "P1")
    assert cg.drive_index(doc, "P1") is None
    cg.set_drive(doc, "P1", amp=2.5)
    index = cg.drive_index(doc, "P1")
    assert doc["stimuli"][index] == {"type": "iclamp", "population": "P1", "amp": 2.5, "delay": 0.0, "dur": 100}
    cg.set_drive(doc, "P1", dur=40)
    assert doc["stimuli"][index]["dur"] == 40
    Project(doc)
    cg.remove_drive(doc, "P1")
    assert cg.drive_index(doc, "P1") is None


def test_rule_and_synapse_switches_stay_valid(doc):
    cg.add_population(doc, "P1")
    index = cg.connect(doc, "P1", "P1")
    for rule in ("fixed_indegree", "one_to_one", "all_to_all", "fixed_probability"):
        cg.set_rule(doc, index, rule)
        Project(doc)
    assert doc["circuit"]["projections"][index]["connect"]["p"] == 0.1
    cg.set_synapse_kind(doc, index, "exp2")
    assert doc["circuit"]["projections"][index]["synapse"] == {"kind": "exp2", "tau_rise": 0.5, "tau_decay": 5.0, "e_rev": 0.0}
    Project(doc)
    cg.set_synapse_kind(doc, index, "exp")
    assert doc["circuit"]["projections"][index]["synapse"]["tau"] == 5.0


@pytest.mark.parametrize("label", list(COBAHH_SCALES))
def test_cobahh_preset_keeps_the_in_degree(doc, label):
    scale = COBAHH_SCALES[label]
    preset = cobahh(scale)
    populations = preset["circuit"]["populations"]
    assert populations["E"]["n"] == round(3200 * scale) and populations["I"]["n"] == round(800 * scale)
    for projection in preset["circuit"]["projections"]:
        in_degree = projection["connect"]["p"] * populations[projection["pre"]]["n"]
        assert in_degree == pytest.approx(0.02 * (3200 if projection["pre"] == "E" else 800))
    apply_preset(doc, preset)
    Project(doc)
    # The squid axon keeps its own leak; COBAHH's leak comes under another name.
    assert doc["channels"]["leak"]["reversal"] == -54.3
    assert doc["cells"]["traub"]["insert"][0]["channel"] == "leak_2"


@pytest.mark.parametrize("label", list(PD_SCALES))
def test_potjans_diesmann_preset_at_every_offered_scale(doc, label):
    scale = PD_SCALES[label]
    preset = make_preset(COLUMN, label)
    populations = preset["circuit"]["populations"]
    cells = sum(entry["n"] for entry in populations.values() if "cell" in entry)
    assert f"{cells:,} cells" in label and ("slow" in label) == (scale >= 0.25)
    if scale > 0.05:
        return  # the document itself is tested at 100 % in test_potjans_diesmann.py; applying it is the same
    apply_preset(doc, preset)
    Project(doc)
    graph = cg.build_graph(doc)
    assert {graph.nodes[name]["kind"] for name in graph} == {"cell", "poisson"}
    assert set(doc["layout"]["populations"]) == set(graph.nodes)
    # Layers are drawn top to bottom, L2/3 to L6, each in one row: background, e, i, background.
    heights = [graph.nodes[f"{layer}e"]["pos"][1] for layer in ("L23", "L4", "L5", "L6")]
    assert heights == sorted(heights, reverse=True)
    for layer in ("L23", "L4", "L5", "L6"):
        row = [graph.nodes[f"{layer}{kind}"]["pos"] for kind in ("e_bg", "e", "i", "i_bg")]
        assert len({y for _, y in row}) == 1 and [x for x, _ in row] == sorted(x for x, _ in row)


def test_every_preset_offers_its_default_scale():
    for name, scales in SCALES.items():
        assert DEFAULT_SCALE[name] in scales and all(0 < scale <= 1 for scale in scales.values()), name


def test_preset_is_one_undoable_edit():
    workbench = Workbench()
    before = workbench.document
    assert workbench.edit(lambda d: apply_preset(d, cobahh(0.1)), "preset")
    assert set(workbench.document["circuit"]["populations"]) == {"E", "I"}
    workbench.undo()
    assert workbench.document == before


def test_edge_paths_leave_and_reach_the_circles(cobahh_doc):
    graph = cg.build_graph(cobahh_doc)
    paths = cg.edge_paths(graph)
    assert set(paths) == {0, 1, 2, 3}
    for pre, post, index in graph.edges(keys=True):
        xs, ys = paths[index]
        start, end = (xs[0], ys[0]), (xs[-1], ys[-1])
        assert math.dist(start, graph.nodes[pre]["pos"]) >= cg.node_radius(graph.nodes[pre]["size"])
        assert math.dist(end, graph.nodes[post]["pos"]) >= cg.node_radius(graph.nodes[post]["size"])
    # E → I and I → E bend to opposite sides, so they do not overlap.
    assert paths[1][1][len(paths[1][1]) // 2] != pytest.approx(paths[2][1][len(paths[2][1]) // 2])
    # A self-projection is a loop above its node.
    assert max(paths[0][1]) > graph.nodes["E"]["pos"][1] + cg.node_radius(3200)


def test_hit_tests_and_view(cobahh_doc):
    graph = cg.build_graph(cobahh_doc)
    ex, ey = graph.nodes["E"]["pos"]
    assert cg.node_at(graph, ex + 0.1, ey) == "E"
    assert cg.node_at(graph, ex, ey + 10) is None
    paths = cg.edge_paths(graph)
    xs, ys = paths[1]
    assert cg.edge_at(paths, xs[len(xs) // 2], ys[len(ys) // 2]) == 1
    assert cg.edge_at(paths, -50, -50) is None
    cg.move_population(cobahh_doc, "I", 30, -4)
    x0, x1, y0, y1 = cg.view_ranges(cg.build_graph(cobahh_doc))
    assert x0 <= ex and x1 >= 30 and y0 <= -4 and y1 >= ey
    assert (x1 - x0) / (y1 - y0) == pytest.approx(1.5)


# ---------------------------------------------------------------------- the pane, driven from Python
@pytest.fixture
def editor():
    from app.editors.circuit_editor import CircuitEditor

    pane = CircuitEditor(Workbench())
    pane.view()
    return pane


def test_bad_input_shows_an_error_and_changes_nothing(editor):
    workbench = editor.workbench
    editor._add("P", cg.add_population)
    editor.connect_mode.value = True
    editor._dropped("axon", *workbench.document["layout"]["populations"]["P1"])
    assert editor.selection == ("projection", 0)
    before = copy.deepcopy(workbench.document)
    for field, text in ((editor.p, "1.5"), (editor.p, "abc"), (editor.weight, "-1"), (editor.delay, "soon")):
        field.input.value = text
        assert field.error.visible and workbench.document == before
    editor.select(("population", "P1"))
    for text in ("-3", "0", "2.5", "ten"):
        editor.count.input.value = text
        assert editor.count.error.visible and workbench.document == before
    editor.name_input.value = "axon"
    assert editor.name_error.visible and "already" in editor.name_error.object
    assert editor.selection == ("population", "P1") and workbench.document == before


def test_fields_edit_the_document(editor):
    workbench = editor.workbench
    editor._add("P", cg.add_population)
    editor.count.input.value = "25"
    editor.drive_on.value = True
    editor.drive_fields[0].input.value = "4"
    editor.name_input.value = "Exc"
    assert editor.selection == ("population", "Exc")
    assert workbench.document["circuit"]["populations"]["Exc"]["n"] == 25
    assert workbench.document["stimuli"][cg.drive_index(workbench.document, "Exc")]["amp"] == 4
    editor.kind_select.value = "poisson"
    assert "poisson" in workbench.document["circuit"]["populations"]["Exc"]


def test_drops_move_connect_or_explain(editor):
    workbench = editor.workbench
    editor._dropped("axon", 4.0, 3.0)
    assert workbench.document["layout"]["populations"]["axon"] == [4.0, 3.0]
    editor.connect_mode.value = True
    editor._dropped("axon", 11.0, 1.0)
    assert editor.notice.visible and "Drop" in editor.notice.object
    assert "projections" not in workbench.document["circuit"]
    assert editor.canvas.nodes.data["x"] == [4.0], "the dragged node snaps back"
    editor._dropped("axon", 4.1, 3.0)
    projection = workbench.document["circuit"]["projections"][0]
    assert (projection["pre"], projection["post"]) == ("axon", "axon"), "dropped on itself: a self-projection"


def test_tap_selects_nodes_and_arrows(editor):
    editor._add("P", cg.add_population)
    editor.workbench.edit(lambda d: cg.connect(d, "axon", "P1"), "connect")
    x, y = editor.canvas.graph.nodes["axon"]["pos"]
    editor._tapped(x, y)
    assert editor.selection == ("population", "axon")
    xs, ys = editor.canvas.paths[0]
    editor._tapped(xs[len(xs) // 2], ys[len(ys) // 2])
    assert editor.selection == ("projection", 0)
    editor._tapped(-40, -40)
    assert editor.selection is None
    editor.select(("projection", 0))
    editor._delete()
    assert editor.workbench.document["circuit"]["projections"] == []


def test_a_refused_edit_shows_the_core_reason_beside_the_field(editor):
    workbench = editor.workbench
    editor._add("P", cg.add_population)
    workbench.edit(lambda d: cg.connect(d, "P1", "P1"), "connect")
    editor.select(("projection", 0))
    editor.rule_select.value = "fixed_indegree"
    before = copy.deepcopy(workbench.document)
    editor.k.input.value = "10"
    assert editor.k.error.visible and "exceeds the 9 possible pre cells" in editor.k.error.object
    assert workbench.document == before


def test_only_the_grabbed_node_moves_when_a_tapped_one_was_dragged_along(editor):
    editor._add("P", cg.add_population)
    canvas, layout = editor.canvas, editor.workbench.document["layout"]["populations"]
    axon = list(layout["axon"])
    sent = dict(canvas.nodes.data)
    canvas._selection_changed("indices", [], [0])  # a tap left axon selected in the browser
    canvas._selection_changed("indices", [0], [0, 1])  # then a drag grabbed P1, and both moved
    canvas._nodes_changed("data", sent, {**sent, "x": [x + 1.5 for x in sent["x"]]})
    layout = editor.workbench.document["layout"]["populations"]
    assert layout["axon"] == axon and layout["P1"][0] == pytest.approx(sent["x"][1] + 1.5)
    assert canvas.nodes.data["x"][0] == axon[0], "axon is drawn back where it was"


def test_choosing_the_column_preset_offers_its_scales_and_applies_one(editor):
    editor.preset.value = COLUMN
    assert editor.preset_scale.options == list(PD_SCALES) and editor.preset_scale.value == DEFAULT_SCALE[COLUMN]
    editor.preset_scale.value = next(label for label, scale in PD_SCALES.items() if scale == 0.01)
    editor._apply_preset()
    populations = editor.workbench.document["circuit"]["populations"]
    assert populations["L23e"]["n"] == 207 and populations["L6i"]["n"] == 29


def test_the_simulate_pane_shows_every_layer_of_the_column():
    from app.views.simulate import SimulatePane

    workbench = Workbench()
    workbench.edit(lambda d: apply_preset(d, make_preset(COLUMN, next(k for k, v in PD_SCALES.items() if v == 0.01))), "preset")
    pane = SimulatePane(workbench)
    assert {name: count.count for name, count in pane.counts.items()} == {name: 1 for name in pd.POPULATIONS}
    plots = pane._empty_plots()
    assert plots.labels == [f"{name}[0]" for name in pd.POPULATIONS]
    # One raster band and one rate line per population, stacked in the model's order; the sources have none.
    assert list(plots.raster.yaxis.major_label_overrides.values()) == list(pd.POPULATIONS)
    assert [item.label["value"] for item in plots.rates.legend[0].items] == list(pd.POPULATIONS)
