"""The Cell builder in a browser: build a three-cylinder cell with mouse drags, set densities, run it,
and see the spike travel from the soma to the dendrite's tip (peak times grow with distance)."""

import numpy as np
import pytest

from .conftest import select_tab, session_of, wait_until

expect = pytest.importorskip("playwright.sync_api").expect

CLIENT_SOURCE = """([id, columns]) => {
    for (const doc of Bokeh.documents) {
        const source = doc.get_model_by_id(id);
        if (source) return columns.map(c => Array.from(source.data[c], v => Array.isArray(v) || ArrayBuffer.isView(v) ? Array.from(v) : v));
    }
    return null;
}"""


def client_data(page, source, columns):
    return page.evaluate(CLIENT_SOURCE, [source.id, columns])


SHOWN_RANGES = """([id]) => {
    const view = Bokeh.index.find_one_by_id(id);
    if (view == null) return null;
    const {bbox, x_scale, y_scale} = view.frame;
    return [x_scale.invert(bbox.left), x_scale.invert(bbox.right), y_scale.invert(bbox.bottom), y_scale.invert(bbox.top)];
}"""


def drawn_in_page(page, canvas, names, workbench):
    """Wait until the server draws cylinders ``names`` of cell "ball" and the page draws them where the server
    did: a drag acts on what the page shows, and the page's plot maps the mouse with the ranges it last drew with."""
    def same():
        sections = workbench.document["cells"]["ball"]["morphology"]
        if (list(canvas.bodies.data["name"]) != names
                or list(canvas.bodies.data["length"]) != [sections[name]["length"] for name in names]):
            return False
        client = client_data(page, canvas.bodies, ["name"])
        shown = page.evaluate(SHOWN_RANGES, [canvas.figure.id])
        return (client is not None and client[0] == names
                and shown is not None and np.allclose(shown, canvas.ranges, atol=0.2 * canvas.scale()))
    wait_until(page, same, "the page draws the server's cylinders")


TO_PAGE = """([id, x, y]) => {
    const view = Bokeh.index.find_one_by_id(id);
    if (view == null) return null;
    const box = view.el.getBoundingClientRect();
    return [box.left + view.frame.x_scale.compute(x), box.top + view.frame.y_scale.compute(y)];
}"""


def on_canvas(page, canvas, x, y):
    """Where the page draws (x, y) µm of the schematic, in page pixels (asked of the page's own plot)."""
    point = page.evaluate(TO_PAGE, [canvas.figure.id, x, y])
    assert point is not None, "the page has no view of the schematic"
    return tuple(point)


def drag(page, start, end):
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=6)
    page.mouse.move(*end, steps=6)
    # The page takes the drag's end from the last pointer move it handled, and Chromium merges moves
    # that come faster than it draws: let the last one arrive before releasing.
    page.wait_for_timeout(150)
    page.mouse.move(end[0] + 1, end[1])
    page.mouse.move(*end)
    page.wait_for_timeout(150)
    page.mouse.up()


def enter(page, css, text):
    field = page.locator(f".{css} input").first
    field.fill(text)
    field.press("Enter")


def test_build_a_cell_by_dragging_and_watch_a_spike_travel(open_page):
    page = open_page()
    select_tab(page, "Cell")
    session = session_of()
    workbench, editor = session.workbench, session.panes["Cell"]
    builder, canvas = editor.builder, editor.builder.canvas

    enter(page, "bf-new-cell-name", "ball")
    page.locator(".bf-new-soma-cell button").first.click()
    wait_until(page, lambda: editor.cell_select.value == "ball", "the new soma-only cell is shown")
    drawn_in_page(page, canvas, ["soma"], workbench)

    # Soma (20 µm, from x = 0 to 20) → dend1, dragged out 240 µm from the soma's end.
    drag(page, on_canvas(page, canvas, 19.0, 0.0), on_canvas(page, canvas, 260.0, 0.0))
    wait_until(page, lambda: "dend1" in workbench.document["cells"]["ball"]["morphology"], "the first dendrite exists")
    dend = workbench.document["cells"]["ball"]["morphology"]["dend1"]
    assert dend["parent"] == "soma" and dend["parent_x"] == 1.0 and dend["region"] == "dend"
    assert dend["length"] == pytest.approx(240.0, abs=3 * canvas.scale())
    drawn_in_page(page, canvas, ["soma", "dend1"], workbench)

    # dend1 → dend2, from dend1's far end 160 µm on at an angle.
    tip = canvas.drawn["dend1"].at(1.0)
    drag(page, on_canvas(page, canvas, *tip), on_canvas(page, canvas, tip[0] + 120.0, tip[1] + 106.0))
    wait_until(page, lambda: "dend2" in workbench.document["cells"]["ball"]["morphology"], "the second dendrite exists")
    dend2 = workbench.document["cells"]["ball"]["morphology"]["dend2"]
    assert dend2["parent"] == "dend1" and dend2["parent_x"] == 1.0
    assert dend2["length"] == pytest.approx(160.0, abs=3 * canvas.scale())
    assert workbench.can_undo
    drawn_in_page(page, canvas, ["soma", "dend1", "dend2"], workbench)

    # A drag that starts on nothing is refused, the document unchanged.
    before = workbench.document
    drag(page, on_canvas(page, canvas, 100.0, 150.0), on_canvas(page, canvas, 150.0, 200.0))
    page.locator(".bf-builder-error", has_text="Start the drag on a cylinder").first.wait_for(timeout=15_000)
    assert workbench.document is before

    # Densities everywhere: NEURON's hh channels.
    for channel in ("hh_na", "hh_k", "leak"):
        page.locator(".bf-density-channel select").first.select_option(channel)
        page.locator(".bf-density-where select").first.select_option(label="everywhere (all)")
        page.locator(".bf-set-density button").first.click()
        wait_until(page, lambda: any(i["channel"] == channel for i in workbench.document["cells"]["ball"]["insert"]),
                   f"{channel} is inserted")
    # And sodium once more on the dendrites' region, picked from a tapped cylinder: it goes after "all".
    page.mouse.click(*on_canvas(page, canvas, *canvas.drawn["dend2"].at(0.5)))
    page.locator(".bf-section-title", has_text="Selected: dend2").first.wait_for(timeout=15_000)
    page.locator(".bf-density-channel select").first.select_option("hh_na")
    page.locator(".bf-density-where select").first.select_option(label="its region (dend)")
    enter(page, "bf-density-gbar", "0.15")
    page.locator(".bf-set-density button").first.click()
    wait_until(page, lambda: len(workbench.document["cells"]["ball"]["insert"]) == 4, "the region's density is set")
    assert [(i["channel"], i["where"], i.get("gbar")) for i in workbench.document["cells"]["ball"]["insert"]] == [
        ("hh_na", "all", None), ("hh_k", "all", None), ("leak", "all", None), ("hh_na", "dend", 0.15)]
    page.locator(".bf-density-list", has_text="0.15").first.wait_for(timeout=15_000)

    enter(page, "bf-step-tstop", "12")
    live = editor.live
    expect(page.locator(".bf-path-tip select").first).to_have_value("dend2", timeout=10_000)
    page.locator(".bf-run-cell button").first.click()
    wait_until(page, lambda: live.run is not None and live.run.done, "the run ends", timeout=45)
    run = live.run
    assert run.state == "finished", run.error

    distances, peaks = run.peak_times()
    values = run.node_v[run.path]
    assert values.max(axis=1).min() > 0.0, "every node along the path fires (peaks above 0 mV)"
    assert np.all(np.diff(peaks) >= -1e-9), f"peak times must grow with distance: {list(zip(distances, peaks))}"
    assert peaks[-1] - peaks[0] > 0.1, "the spike takes time to reach the tip (ms)"
    layout = run.cell.layout
    middles = [run.t[np.argmax(run.node_v[layout.node(name, 0.5)])] for name in ("soma", "dend1", "dend2")]
    assert middles[0] < middles[1] < middles[2], f"soma, dend1, dend2 peak in that order: {middles}"

    # What the page received: the soma and tip traces, and the shape plot's voltages.
    def traces_arrived():
        data = client_data(page, live.plot.trace_source, ["t", "soma", "tip"])
        return data is not None and len(data[0]) == run.filled
    wait_until(page, traces_arrived, "the page has the whole run's traces")
    t, soma, tip_v = (np.asarray(column, float) for column in client_data(page, live.plot.trace_source, ["t", "soma", "tip"]))
    assert soma.max() > 0 and tip_v.max() > 0
    assert t[np.argmax(tip_v)] > t[np.argmax(soma)] + 0.1
    shape_v = np.asarray(client_data(page, live.plot.pieces, ["v"])[0], float)
    assert len(shape_v) == sum(s["nseg"] for s in workbench.document["cells"]["ball"]["morphology"].values())
    assert np.all(np.isfinite(shape_v))
    page.locator(".bf-cell-run-status", has_text="finished").first.wait_for(timeout=10_000)
    builder.select("dend1")
    page.set_viewport_size({"width": 1500, "height": 1900})
    page.wait_for_timeout(500)
    page.screenshot(path=str(screenshot_path()))

    # Re-attach by dragging dend2's far end onto the soma; one Undo puts it back.
    page.set_viewport_size({"width": 1500, "height": 1000})
    page.locator(".bf-drag-mode button", has_text="Re-attach").first.click()
    wait_until(page, lambda: builder.mode.value == "Re-attach", "re-attach mode is on")
    drawn_in_page(page, canvas, ["soma", "dend1", "dend2"], workbench)
    drag(page, on_canvas(page, canvas, *canvas.drawn["dend2"].at(1.0)), on_canvas(page, canvas, 2.0, 0.0))
    cylinders = lambda: workbench.document["cells"]["ball"]["morphology"]  # noqa: E731
    wait_until(page, lambda: cylinders()["dend2"]["parent"] == "soma", "dend2 hangs on the soma")
    assert cylinders()["dend2"]["parent_x"] == 0.0
    page.locator(".bf-undo button").first.click()
    wait_until(page, lambda: cylinders()["dend2"]["parent"] == "dend1", "undo puts dend2 back on dend1")


def screenshot_path():
    from .conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / "cell_builder.png"
