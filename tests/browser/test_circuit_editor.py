"""The Circuit pane in a browser: build a circuit with the mouse, run it, save and reopen it, presets, bad input."""

import copy
import json

import pytest

from .conftest import screenshot, select_tab, session_of, wait_until

expect = pytest.importorskip("playwright.sync_api").expect


def circuit_page(open_page):
    page = open_page()
    select_tab(page, "Circuit")
    page.locator(".bf-circuit-canvas").first.wait_for(timeout=30_000)
    return page, session_of()


def on_canvas(page, editor, name):
    """The page coordinates of a population's node."""
    box = page.locator(".bf-circuit-canvas").first.bounding_box()
    x, y = editor.canvas.screen_point(*editor.canvas.graph.nodes[name]["pos"])
    return box["x"] + x, box["y"] + y


def drag(page, start, end):
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=5)
    page.mouse.move(*end, steps=5)
    page.mouse.up()


def click(page, css):
    page.locator(f".{css} button").first.click()


def enter(page, css, text):
    field = page.locator(f".{css} input").first
    field.fill(text)
    field.press("Enter")


def choose(page, session, label):
    """Select a population or projection in the side panel's list, and wait until the panel shows it."""
    page.locator(".bf-circuit-selection select").first.select_option(label=label)
    kind, _, name = label.partition(" ")
    editor = session.panes["Circuit"]
    wait_until(page, lambda: editor.selector.value == editor.selector.options[label], f"{label} is selected")
    if kind == "population":
        expect(page.locator(".bf-pop-name input").first).to_have_value(name, timeout=10_000)
    else:
        page.locator(".bf-projection-title", has_text=name).first.wait_for(timeout=10_000)


CLIENT_NODES = """(id) => {
    for (const doc of Bokeh.documents) {
        const source = doc.get_model_by_id(id);
        if (source) return [Array.from(source.data.name), Array.from(source.data.x), Array.from(source.data.y)];
    }
    return null;
}"""


def shown(page, session, option):
    """Wait until the pane lists ``option`` and the browser draws the nodes the server drew (a loaded
    browser can lag the server by seconds, and a drag acts on what the browser draws)."""
    editor = session.panes["Circuit"]
    wait_until(page, lambda: option in editor.selector.options, f"{option} is listed")
    canvas = editor.canvas

    def drawn():
        client = page.evaluate(CLIENT_NODES, canvas.nodes.id)
        graph = canvas.graph
        return client == [list(graph.nodes), [d["pos"][0] for d in graph.nodes.values()], [d["pos"][1] for d in graph.nodes.values()]]

    wait_until(page, drawn, f"the browser draws the nodes with {option}")


CLIENT_XY = """(id) => {
    for (const doc of Bokeh.documents) {
        const source = doc.get_model_by_id(id);
        if (source) return [Array.from(source.data.x), Array.from(source.data.y)];
    }
    return null;
}"""


def ring_shown(page, session):
    """Wait until the browser draws the selection ring where the server put it: a drag that starts
    before that redraw arrives would be undone by it."""
    ring = session.panes["Circuit"].canvas.ring
    wait_until(page, lambda: page.evaluate(CLIENT_XY, ring.id) == [list(ring.data["x"]), list(ring.data["y"])],
               "the browser draws the selection")


def add_population(page, session, name):
    click(page, "bf-add-population")
    shown(page, session, f"population {name}")


def connect_by_drag(page, session, pre, post):
    editor = session.panes["Circuit"]
    if not editor.connect_mode.value:
        click(page, "bf-connect-mode")
        wait_until(page, lambda: editor.connect_mode.value, "connect mode is on")
        page.locator(".bf-circuit-hint", has_text="Connect mode").first.wait_for(timeout=10_000)
    before = len(session.workbench.document["circuit"].get("projections", []))
    drag(page, on_canvas(page, editor, pre), on_canvas(page, editor, post))
    shown(page, session, f"projection {pre} → {post} (#{before})")
    wait_until(page, lambda: editor.selection == ("projection", before), "the new projection is selected")


def test_add_two_populations_connect_by_dragging_and_run(open_page):
    page, session = circuit_page(open_page)
    document = lambda: session.workbench.document  # noqa: E731
    add_population(page, session, "P1")
    add_population(page, session, "P2")
    choose(page, session, "population axon")
    click(page, "bf-delete-selected")
    wait_until(page, lambda: list(document()["circuit"]["populations"]) == ["P1", "P2"], "axon is deleted")
    shown(page, session, "population P2")

    choose(page, session, "population P1")
    page.locator(".bf-drive-on input").first.check()
    wait_until(page, lambda: any(s["population"] == "P1" for s in document().get("stimuli", [])), "P1 has a drive")
    enter(page, "bf-drive-amp", "5")
    wait_until(page, lambda: document()["stimuli"][0]["amp"] == 5, "the drive amplitude is 5 nA")

    connect_by_drag(page, session, "P1", "P2")
    page.locator(".bf-projection-form").first.wait_for(state="visible")
    assert session.panes["Circuit"].canvas.edges.data["xs"], "the arrow is drawn"
    screenshot(page, "circuit_editor")

    select_tab(page, "Simulate")
    simulate = session.panes["Simulate"]
    click(page, "bf-run")
    wait_until(page, lambda: simulate.runner.state in ("finished", "stopped", "failed"), "the run ends", timeout=120)
    assert simulate.runner.state == "finished"
    assert simulate.raster_spike_count() > 0
    screenshot(page, "circuit_editor_run")


def test_save_reload_and_reopen_keeps_the_circuit(open_page, tmp_path):
    page, session = circuit_page(open_page)
    editor = session.panes["Circuit"]
    add_population(page, session, "P1")
    axon = editor.canvas.graph.nodes["axon"]["pos"]
    page.mouse.click(*on_canvas(page, editor, "axon"))
    wait_until(page, lambda: editor.selection == ("population", "axon"), "a tap selects axon")
    shown(page, session, "population P1")
    ring_shown(page, session)
    start = on_canvas(page, editor, "P1")
    drag(page, start, (start[0] + 120, start[1] + 150))
    wait_until(page, lambda: editor.canvas.graph.nodes["P1"]["pos"][1] < 5.5, "P1 is moved down")
    shown(page, session, "population P1")
    assert editor.canvas.graph.nodes["axon"]["pos"] == axon, "only the dragged node moves"
    connect_by_drag(page, session, "axon", "P1")

    path = tmp_path / "circuit.json"
    enter(page, "bf-save-path", str(path))
    click(page, "bf-save-as")
    wait_until(page, lambda: path.exists() and session.workbench.path == str(path), "the project is saved")
    saved = json.loads(path.read_text())
    assert saved["circuit"] == session.workbench.document["circuit"]
    assert saved["layout"] == session.workbench.document["layout"]

    page.reload(wait_until="networkidle")
    page.locator(".bf-tabs").first.wait_for(timeout=60_000)
    wait_until(page, lambda: session_of() is not session, "the reloaded page has its own session")
    reopened = session_of()
    assert "P1" not in reopened.workbench.document["circuit"]["populations"]
    enter(page, "bf-open-path", str(path))
    click(page, "bf-open")
    wait_until(page, lambda: reopened.workbench.document["circuit"] == saved["circuit"], "the saved file is opened")
    shown(page, reopened, "population P1")
    assert reopened.workbench.path == str(path)
    assert reopened.workbench.document["layout"] == saved["layout"]
    graph = reopened.panes["Circuit"].canvas.graph
    assert {name: list(data["pos"]) for name, data in graph.nodes(data=True)} == saved["layout"]["populations"]
    assert list(graph.edges(keys=True)) == [("axon", "P1", 0)]
    select_tab(page, "Circuit")
    screenshot(page, "circuit_editor_reopened")


def test_preset_and_bad_input_is_refused_inline(open_page):
    page, session = circuit_page(open_page)
    document = lambda: session.workbench.document  # noqa: E731
    click(page, "bf-apply-preset")
    wait_until(page, lambda: set(document()["circuit"]["populations"]) == {"E", "I"}, "the COBAHH preset is applied")
    assert document()["circuit"]["populations"]["E"]["n"] == 320
    assert document()["circuit"]["projections"][0]["connect"]["p"] == 0.2
    shown(page, session, "population E")
    screenshot(page, "circuit_preset_cobahh")
    before = copy.deepcopy(document())

    def refused(css, text, message):
        enter(page, css, text)
        page.locator(".bf-field-error:visible", has_text=message).first.wait_for(state="visible", timeout=10_000)
        assert document() == before

    choose(page, session, "population E")
    refused("bf-pop-n", "-5", "must be at least 1")
    refused("bf-pop-n", "many", "is not a number")
    choose(page, session, "projection E → I (#1)")
    refused("bf-edge-p", "1.5", "must be at most 1")
    refused("bf-edge-weight", "0.0o6", "is not a number")
    refused("bf-edge-delay", "-1", "must be at least 0")
