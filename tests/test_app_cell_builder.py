"""The Cell builder without a browser: gestures as document edits, densities per region, SWC import,
refusals, the schematic's geometry, and a run of the cell checked against the cable equation."""

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("panel")

from app.editors import cell_builder_document as cells  # noqa: E402
from app.editors import cell_builder_geometry as geometry  # noqa: E402
from app.editors.cell_builder_run import CellRun, Step  # noqa: E402
from app.editors.cell_editor import CellEditor  # noqa: E402
from app.state import Workbench  # noqa: E402
from brainfuse_core.cells import load_swc  # noqa: E402
from brainfuse_core.project.build import build_cell, build_channels  # noqa: E402

SWC = """# a soma, one dendrite that forks, an axon
1 1 0 0 0 6 -1
2 3 6 0 0 1.0 1
3 3 60 0 0 0.8 2
4 3 100 40 0 0.6 3
5 3 100 -40 0 0.6 3
6 2 -6 0 0 0.5 1
7 2 -80 0 0 0.5 6
"""


def builder_on_new_cell(name="ball"):
    """A workbench, its Cell pane and builder, showing a new soma-only cell (soma from x = 0 to 20 µm)."""
    wb = Workbench()
    editor = CellEditor(wb)
    assert wb.edit(lambda doc: cells.new_cell(doc, name), "new cell")
    editor.cell_select.value = name
    return wb, editor, editor.builder


def builder_showing_the_fork(tmp_path):
    """A builder with the SWC fork imported (by path) as cell "fork" and shown."""
    wb, editor, builder = builder_on_new_cell()
    path = tmp_path / "fork.swc"
    path.write_text(SWC)
    builder.swc_path.value, builder.swc_name.value = str(path), "fork"
    builder._import_swc()
    editor.cell_select.value = "fork"
    return wb, editor, builder


def morphology(wb, cell="ball"):
    return wb.document["cells"][cell]["morphology"]


def test_a_drag_from_the_soma_adds_one_cylinder_and_one_undo_step():
    wb, editor, builder = builder_on_new_cell()
    builder._dragged((19.5, 0.0), (220.0, 0.0))
    dend = morphology(wb)["dend1"]
    assert dend == {"length": 200.0, "diameter": 2.0, "nseg": 11, "parent": "soma", "parent_x": 1.0, "region": "dend"}
    assert builder.selected == "dend1" and editor.shape_source.data["name"] == ["soma", "dend1"]
    # The new cylinder is drawn where it was dragged to.
    assert builder.canvas.drawn["dend1"].at(1.0) == pytest.approx((220.0, 0.0))
    assert wb.undo() and list(morphology(wb)) == ["soma"]


def test_a_drag_from_the_middle_of_a_cylinder_attaches_there_with_the_chosen_region_and_diameter():
    wb, _, builder = builder_on_new_cell()
    builder.grow("soma", 1.0, (420.0, 0.0))
    builder.new_diameter.value, builder.new_region.value = "0.5", "apical"
    builder._dragged((220.0, 0.0), (220.0, 150.0))
    branch = morphology(wb)["apical1"]
    assert branch["parent"] == "dend1" and branch["parent_x"] == pytest.approx(0.5)
    assert branch["length"] == pytest.approx(150.0) and branch["diameter"] == 0.5 and branch["region"] == "apical"


def test_gestures_that_make_no_sense_are_explained_and_change_nothing():
    wb, _, builder = builder_on_new_cell()
    before = wb.document
    builder._dragged((150.0, 150.0), (200.0, 200.0))
    assert "Start the drag on a cylinder" in builder.notice.object and wb.document is before
    builder.new_diameter.value = "-1"
    builder._dragged((20.0, 0.0), (200.0, 0.0))
    assert "diameter (µm): must be greater than 0" in builder.notice.object and wb.document is before
    builder.new_diameter.value = "2"
    builder.grow("soma", 1.0, (20.5, 0.0))
    assert "Drag further" in builder.notice.object and wb.document is before


def test_reattach_moves_a_branch_and_refuses_loops():
    wb, _, builder = builder_on_new_cell()
    builder.grow("soma", 1.0, (220.0, 0.0))
    builder.grow("dend1", 1.0, (320.0, 100.0))
    builder.grow("dend1", 1.0, (320.0, -100.0))
    builder.mode.value = "Re-attach"
    # dend3's far end dropped on the soma's start.
    end = builder.canvas.drawn["dend3"].at(1.0)
    builder._dragged(end, (0.5, 0.0))
    assert morphology(wb)["dend3"]["parent"] == "soma" and morphology(wb)["dend3"]["parent_x"] == 0.0
    assert builder.canvas.drawn["dend3"].at(0.0) == pytest.approx(builder.canvas.drawn["soma"].at(0.0))
    # dend1 dropped on its own child: refused, the document unchanged.
    before = wb.document
    builder._dragged(builder.canvas.drawn["dend1"].at(0.6), builder.canvas.drawn["dend2"].at(0.8))
    assert "not onto itself or its own branches" in builder.notice.object and wb.document is before
    with pytest.raises(ValueError, match="loop"):
        cells.reattach(wb.document, "ball", "dend1", "dend2", 1.0)
    with pytest.raises(ValueError, match="root"):
        cells.reattach(wb.document, "ball", "soma", "dend2", 1.0)


def test_delete_takes_the_branches_and_their_own_densities():
    wb, _, builder = builder_on_new_cell()
    builder.grow("soma", 1.0, (220.0, 0.0))
    builder.grow("dend1", 1.0, (320.0, 100.0))
    builder.new_region.value = "axon"
    builder.grow("soma", 0.0, (-200.0, 0.0))
    assert wb.edit(lambda doc: cells.set_density(doc, "ball", "hh_na", "dend2", 0.2), "na on dend2")
    assert wb.edit(lambda doc: cells.set_density(doc, "ball", "hh_k", "dend", 0.05), "k on dend")
    assert wb.edit(lambda doc: cells.set_density(doc, "ball", "leak", "all"), "leak")
    builder.select("dend1")
    builder._delete()
    assert list(morphology(wb)) == ["soma", "axon1"]
    # Gone with its sections: the section's own density and the region no section is in any more.
    assert wb.document["cells"]["ball"]["insert"] == [{"channel": "leak", "where": "all"}]
    builder.select("soma")
    before = wb.document
    builder._delete()
    assert "root" in builder.notice.object and wb.document is before


def test_densities_per_region_and_section_resolve_as_the_core_does():
    wb, editor, builder = builder_on_new_cell()
    builder.grow("soma", 1.0, (220.0, 0.0))
    builder.grow("dend1", 1.0, (420.0, 0.0))
    builder.select("dend2")
    # The section's own value first, then its region's: the narrower one must still win.
    for where, gbar in (("dend2", "0.3"), ("dend", "0.2"), ("all", "")):
        builder.density_channel.value, builder.density_where.value, builder.density_gbar.value = "hh_na", where, gbar
        builder._set_density()
    inserted = wb.document["cells"]["ball"]["insert"]
    assert [(i["where"], i.get("gbar")) for i in inserted] == [("all", None), ("dend", 0.2), ("dend2", 0.3)]
    cell = build_cell("ball", wb.document["cells"]["ball"], build_channels(wb.document["channels"]))
    density = cell.density("hh_na").numpy()
    for node, section in enumerate(cell.layout.section_of):
        if cell.layout.area[node] > 0:
            assert density[node] == {"soma": 0.12, "dend1": 0.2, "dend2": 0.3}[section]
    assert cells.density_sources(wb.document, "ball", "dend2") == [("hh_na", 0.3, "dend2")]
    assert "0.3" in builder.density_list.object
    builder.density_gbar.value = "lots"
    builder._set_density()
    assert "not a number" in builder.density_error.object and wb.document["cells"]["ball"]["insert"] == inserted
    builder.density_where.value = "soma"
    builder._remove_density()
    assert "not inserted on 'soma' itself" in builder.density_error.object
    # A project channel (e.g. one edited in the Channels pane) is offered, under its own name.
    assert wb.edit(lambda doc: doc["channels"].__setitem__("fast_na", {"library": "hh_na", "gbar": 0.5}), "channel")
    assert "fast_na" in builder.density_channel.options
    assert cells.default_gbar(wb.document, "fast_na") == 0.5


def test_selected_cylinder_fields_edit_it_and_refuse_bad_values_inline():
    wb, _, builder = builder_on_new_cell()
    builder.grow("soma", 1.0, (220.0, 0.0))
    fields = {f.input.label: f for f in builder.section_fields}
    fields["diameter (µm)"].input.value = "-3"
    assert fields["diameter (µm)"].error.visible and morphology(wb)["dend1"]["diameter"] == 2.0
    fields["Ra (Ω·cm)"].input.value = "100"
    fields["segments"].input.value = "21"
    fields["region"].input.value = "basal"
    assert morphology(wb)["dend1"]["ra"] == 100 and morphology(wb)["dend1"]["nseg"] == 21
    assert morphology(wb)["dend1"]["region"] == "basal"
    fields["Ra (Ω·cm)"].input.value = ""
    assert "ra" not in morphology(wb)["dend1"]
    fields["region"].input.value = "two words"
    assert fields["region"].error.visible and morphology(wb)["dend1"]["region"] == "basal"


def test_swc_import_by_path_and_upload_and_one_line_errors(tmp_path):
    wb, editor, builder = builder_on_new_cell()
    path = tmp_path / "fork.swc"
    path.write_text(SWC)
    builder.swc_path.value, builder.swc_name.value = str(path), "fork"
    assert builder._import_swc() == "fork"
    assert wb.document["cells"]["fork"]["morphology"] == load_swc(path).to_dict()
    assert wb.document["cells"]["fork"]["insert"] == []
    builder.swc_name.value, builder.swc_segment.value = "fine", "10"
    assert builder._import_swc() == "fine"
    assert wb.document["cells"]["fine"]["morphology"] == load_swc(path, max_segment_length=10).to_dict()

    before = wb.document
    builder.swc_name.value, builder.swc_segment.value = "bad", ""
    builder.swc_upload.param.update(value=b"1 1 0 0 0 5\n", filename="broken.swc")
    assert builder._import_swc() is None
    message = builder.swc_error.object
    assert "broken.swc:1" in message and "7 fields" in message and "\n" not in message and "/tmp" not in message
    builder.swc_upload.param.update(value=None, filename=None)
    builder.swc_path.value = str(tmp_path / "missing.swc")
    assert builder._import_swc() is None and "missing.swc" in builder.swc_error.object
    builder.swc_path.value, builder.swc_name.value = str(path), "fork"
    assert builder._import_swc() is None and "exists already" in builder.swc_error.object
    assert wb.document is before


def test_geometry_of_traced_and_straight_sections():
    sections = {
        "soma": {"length": 10.0, "diameter": 10.0, "points": [[-5, 0, 0], [5, 0, 0]]},
        "dend": {"length": 50.0, "diameter": 1.0, "parent": "soma", "points": [[5, 0, 0], [35, 40, 3]]},
        "twig": {"length": 30.0, "diameter": 1.0, "parent": "dend", "parent_x": 0.5},
        "leaf": {"length": 20.0, "diameter": 1.0, "parent": "twig", "points": [[100, 100, 0], [100, 120, 0]]},
    }
    drawn = geometry.layout(sections)
    assert drawn["dend"].xs == [5.0, 35.0] and drawn["dend"].ys == [0.0, 40.0]  # traced: drawn at its points
    assert drawn["twig"].at(0.0) == pytest.approx(drawn["dend"].at(0.5))         # straight: leaves its parent
    assert drawn["twig"].length == pytest.approx(30.0)
    assert drawn["leaf"].at(0.0) == pytest.approx(drawn["twig"].at(1.0))         # traced on a straight parent: moved there
    assert geometry.nearest(drawn, 35.0, 40.5)[:2] == ("dend", pytest.approx(1.0))
    xs, ys = geometry.outline(drawn["dend"], 1.0)
    assert max(math.dist((x, y), (35, 40)) for x, y in zip(xs, ys) if y > 30) == pytest.approx(0.5)


def test_path_nodes_follow_the_cable_from_the_soma_to_the_tip():
    wb, _, builder = builder_on_new_cell()
    builder.grow("soma", 1.0, (220.0, 0.0))
    builder.grow("dend1", 0.5, (120.0, 100.0))
    doc = wb.document
    cell = build_cell("ball", doc["cells"]["ball"], build_channels(doc["channels"]))
    nodes, distances = geometry.path_nodes(cell.layout, morphology(wb), "dend2")
    assert np.all(np.diff(distances) > 0) and distances[-1] == pytest.approx(20.0 + 100.0 + morphology(wb)["dend2"]["length"])
    # dend1's segment centres up to where dend2 leaves it (x = 0.5: 6 of its 11), then all of dend2 and its end.
    assert [cell.layout.section_of[n] for n in nodes] == (["soma"] + ["dend1"] * 6 + ["dend2"] * (morphology(wb)["dend2"]["nseg"] + 1))
    pieces = geometry.segment_pieces(builder.canvas.drawn, morphology(wb), cell.layout)
    assert len(pieces) == sum(s["nseg"] for s in morphology(wb).values())
    assert sorted(p[2] for p in pieces) == sorted(n for n in range(cell.layout.size) if cell.layout.area[n] > 0)


def test_a_run_of_a_passive_cell_matches_the_sealed_end_cable():
    """Steady state of a DC step at the soma: along a sealed-end dendrite of length L and space constant
    λ, V(x) − E = (V(0) − E) cosh((L − x)/λ) / cosh(L/λ)."""
    wb, editor, builder = builder_on_new_cell()
    builder.new_diameter.value = "1"
    builder.grow("soma", 1.0, (520.0, 0.0))
    g, e, ra, d = 1e-4, -65.0, 100.0, 1e-4  # S/cm², mV, Ω·cm, cm (1 µm)
    assert wb.edit(lambda doc: doc["cells"]["ball"].update(ra=ra, v_init=e), "passive")
    assert wb.edit(lambda doc: doc["cells"]["ball"]["morphology"]["dend1"].__setitem__("nseg", 101), "nseg")
    assert wb.edit(lambda doc: cells.set_density(doc, "ball", "leak", "all", g), "leak")
    assert wb.edit(lambda doc: doc["channels"]["leak"].__setitem__("reversal", e), "leak reversal")
    run = CellRun(wb.document, "ball", "dend1", Step(amp=0.05, delay=0.0, dur=200.0, tstop=120.0)).start()
    assert run.join(60) and run.state == "finished", run.error
    layout = run.cell.layout
    length = morphology(wb)["dend1"]["length"] * 1e-4
    lam = math.sqrt(d / (4 * ra * g))
    nodes = [layout.node("dend1", xi) for xi in np.linspace(0.05, 0.95, 10)]
    x = layout.x[nodes]  # where those segment centres lie along dend1 (0..1)
    v = run.node_v[nodes, -1]
    v0 = run.node_v[layout.node("dend1", 0.0), -1]
    expected = e + (v0 - e) * np.cosh((length - x * length) / lam) / np.cosh(length / lam)
    assert v0 - e > 1.0
    assert np.max(np.abs(v - expected)) / (v0 - e) < 5e-4  # measured 1.2e-5 with 101 segments
    distances, _ = run.peak_times()
    assert distances[-1] == pytest.approx(20.0 + 500.0)

    # The live views draw the run: each segment coloured by its node's voltage, soma and tip traces.
    editor.live.run = run
    pieces = geometry.segment_pieces(builder.canvas.drawn, morphology(wb), layout)
    editor.live.plot.set_cell(pieces, (-10, 530, -10, 10), (10, 0), (520, 0), 120.0)
    editor.live.plot.show(run)
    assert editor.live.plot.pieces.data["v"] == pytest.approx(list(run.node_v[[p[2] for p in pieces], -1]))
    assert np.asarray(editor.live.plot.trace_source.data["tip"])[-1] == pytest.approx(run.node_v[run.tip_node, -1])


def test_run_refusals_are_one_line():
    wb, editor, builder = builder_on_new_cell()
    editor.live.refresh()
    editor.live.inputs["tstop"].value = "0"
    assert editor.live.start() is None and "Run (ms)" in editor.live.error.object


def test_traced_sections_keep_their_shape_when_moved_and_become_cylinders_when_resized(tmp_path):
    wb, editor, builder = builder_showing_the_fork(tmp_path)
    sections = morphology(wb, "fork")
    drawn = builder.canvas.drawn
    assert drawn["basal[1]"].xs == [60.0, 100.0] and drawn["basal[1]"].ys == [0.0, 40.0]  # drawn along its points
    # basal[2] moved onto the axon's far end: its points shift there, its membrane unchanged.
    area_before = load_swc(tmp_path / "fork.swc").sections["basal[2]"].area
    builder.reattach("basal[2]", drawn["axon[0]"].at(1.0))
    moved = morphology(wb, "fork")["basal[2]"]
    assert moved["parent"] == "axon[0]" and moved["parent_x"] == 1.0
    assert moved["points"][0][:3] == pytest.approx([-80.0, 0.0, 0.0])
    assert moved["points"][1][:3] == pytest.approx([-40.0, -40.0, 0.0]) and moved["length"] == sections["basal[2]"]["length"]
    cell = build_cell("fork", wb.document["cells"]["fork"], build_channels(wb.document["channels"]))
    assert cell.morphology.sections["basal[2]"].area == pytest.approx(area_before)
    assert builder.canvas.drawn["basal[2]"].at(0.0) == pytest.approx(builder.canvas.drawn["axon[0]"].at(1.0))
    # A new length makes it a plain cylinder (its diameter the area-equivalent one).
    builder.select("basal[1]")
    assert "traced through 2 points" in builder.section_title.object
    fields = {f.input.label: f for f in builder.section_fields}
    fields["length (µm)"].input.value = "80"
    resized = morphology(wb, "fork")["basal[1]"]
    assert "points" not in resized and resized["length"] == 80 and resized["diameter"] == pytest.approx(1.4)


def test_the_l5_example_is_drawn_and_runs_in_the_builder():
    wb = Workbench(path=str(Path(__file__).resolve().parents[1] / "projects" / "l5_pyramidal.json"))
    editor = CellEditor(wb)
    builder, live = editor.builder, editor.live
    names = list(morphology(wb, "l5"))
    assert list(builder.canvas.bodies.data["name"]) == names
    assert set(live.tip.options) == set(geometry.tips(morphology(wb, "l5")))
    live.inputs["tstop"].value = "5"
    run = live.start()
    assert run.join(120) and run.state == "finished", run.error
    live._refresh()
    assert "finished" in live.status.object
    # A finished run replays: the shape plot shows the voltages of the chosen time.
    live.replay.value = 2.5
    column = int(round(2.5 / run.dt))
    assert live.plot.pieces.data["v"] == pytest.approx(list(run.node_v[live.plot.nodes, column]))
    assert "2.50 ms" in live.plot.shape.title.text
    assert np.all(np.isfinite(run.node_v)) and run.node_v.shape[0] == run.cell.layout.size


def test_the_sections_table_resizes_a_traced_section_as_a_cylinder(tmp_path):
    wb, editor, builder = builder_showing_the_fork(tmp_path)
    row = list(editor.sections.value.index).index("axon[0]")
    editor._section_edited(type("Edit", (), {"column": "diameter (µm)", "row": row, "value": "2"})())
    axon = morphology(wb, "fork")["axon[0]"]
    assert "points" not in axon and axon["diameter"] == 2 and axon["length"] == pytest.approx(74.0)
