"""The workbench's session state and the Cell pane's edits, without a browser."""

import json

import pytest

pytest.importorskip("panel")

from app.editors.cell_editor import CellEditor, section_layout  # noqa: E402
from app.state import Workbench, example_projects  # noqa: E402


def test_valid_edit_is_undoable_and_marks_dirty():
    wb = Workbench()
    before = wb.document
    assert wb.edit(lambda doc: doc["run"].__setitem__("duration", 50.0), "set duration")
    assert wb.document["run"]["duration"] == 50.0 and wb.dirty and wb.can_undo
    assert before["run"]["duration"] == 100  # the old document was not mutated
    assert wb.undo() and wb.document == before and not wb.dirty
    assert wb.redo() and wb.document["run"]["duration"] == 50.0


@pytest.mark.parametrize("change, words", [
    (lambda doc: doc["circuit"]["populations"]["axon"].__setitem__("n", -3), "circuit.populations.axon.n"),
    (lambda doc: doc["run"].__setitem__("dt", "fast"), "run.dt"),
    (lambda doc: doc["cells"]["axon"]["insert"].append({"channel": "no_such"}), "unknown channel"),
])
def test_invalid_edit_changes_nothing_and_names_the_field(change, words):
    wb = Workbench()
    before, revision = wb.document, wb.revision
    assert not wb.edit(change, "edit")
    assert wb.document == before and wb.revision == revision and not wb.can_undo
    assert words in wb.error


def test_save_and_reopen_round_trip(tmp_path):
    wb = Workbench()
    wb.edit(lambda doc: doc.__setitem__("layout", {"populations": {"axon": [1.5, -2.0]}}), "move")
    path = tmp_path / "mine.json"
    assert wb.save(str(path)) and not wb.dirty and wb.path == str(path)
    other = Workbench(path=str(path))
    assert other.document == wb.document and not other.dirty


def test_save_needs_a_json_path(tmp_path):
    wb = Workbench()
    assert not wb.save() and "Save as" in wb.error
    assert not wb.save(str(tmp_path / "notes.txt")) and ".json" in wb.error


def test_invalid_file_is_listed_and_kept_not_opened(tmp_path):
    wb = Workbench()
    before = wb.document
    bad = json.loads((example_projects()["squid_axon"]).read_text())
    bad["circuit"]["populations"]["axon"]["n"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert not wb.open(str(path))
    assert wb.document == before
    assert wb.open_errors and "circuit.populations.axon.n" in wb.open_errors[0]
    assert '"n": 0' in wb.rejected_text
    assert not wb.open_text("{not json", "broken.json") and "not valid JSON" in wb.open_errors[0]


def test_every_example_opens():
    for name, path in example_projects().items():
        wb = Workbench()
        assert wb.open(str(path)), (name, wb.error)


def test_cell_fields_reject_bad_text_and_accept_numbers():
    wb = Workbench()
    editor = CellEditor(wb)
    cm = editor.fields[0]
    cm.input.value = "abc"
    assert cm.error.visible and "not a number" in cm.error.object and wb.document["cells"]["axon"]["cm"] == 1
    cm.input.value = "-1"
    assert cm.error.visible and wb.document["cells"]["axon"]["cm"] == 1
    cm.input.value = "2.5"
    assert not cm.error.visible and wb.document["cells"]["axon"]["cm"] == 2.5
    wb.undo()
    assert cm.input.value == "1"


def test_cell_sections_added_and_schematic_follows_the_tree():
    wb = Workbench()
    editor = CellEditor(wb)
    editor.section_name.value = "dend"
    editor._add_section(None)
    morphology = wb.document["cells"]["axon"]["morphology"]
    assert morphology["dend"]["parent"] == "soma"
    placed = section_layout(morphology)
    assert placed["dend"][:2] == pytest.approx(placed["soma"][2:])  # attached at the soma's far end
    assert len(editor.shape_source.data["name"]) == 2
    editor.section_name.value = "dend"
    editor._add_section(None)
    assert "already" in editor.error.object and len(wb.document["cells"]["axon"]["morphology"]) == 2


def test_copied_cell_is_independent():
    wb = Workbench()
    editor = CellEditor(wb)
    editor.new_name.value = "copy"
    editor._copy_cell(None)
    assert editor.cell_select.value == "copy"
    editor.fields[0].input.value = "3"
    assert wb.document["cells"]["copy"]["cm"] == 3 and wb.document["cells"]["axon"]["cm"] == 1
