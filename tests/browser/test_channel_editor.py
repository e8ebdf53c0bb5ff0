"""The channel editor in a browser: tabulate a gate, drag one x∞ control point with the mouse, and
check the model (the server-side document) and the plot (the curve's data in the page) changed."""

import time

from .conftest import screenshot, select_tab, session_of

# Canvas position (page pixels) of the data point (x, y) of Bokeh figure ``id``, found through the
# figure's own view so that the test does not depend on margins, axes or the toolbar.
TO_PAGE = """([id, x, y]) => {
  const view = Bokeh.index.find_one_by_id(id);
  if (view == null) return null;
  const box = view.canvas_view.el.getBoundingClientRect();
  return [box.left + view.frame.x_scale.compute(x), box.top + view.frame.y_scale.compute(y)];
}"""
LINE_DATA = """(id) => {
  for (const doc of Bokeh.documents) {
    const source = doc.get_model_by_id(id);
    if (source != null) return Array.from(source.data instanceof Map ? source.data.get("y") : source.data.y);
  }
  return null;
}"""
POINT = 6


def wait_for(condition, timeout=20.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_drag_tabulated_x_inf_point(open_page):
    page = open_page()
    select_tab(page, "Channels")
    session = session_of()
    editor, workbench = session.panes["Channels"], session.workbench
    assert editor.selected == "hh_na"

    page.locator(".bf-tabulate-m button").click()
    view = wait_for(lambda: len(editor.gate_views["m"].handles.get("inf", ())) == 16 and editor.gate_views["m"],
                    what="gate m tabulated, with 16 x∞ control points")
    figure_id = view.figures[0].object.id
    line = view.lines["inf"]
    handle = view.handles["inf"][POINT]
    assert handle.x == -40.0
    start = wait_for(lambda: page.evaluate(TO_PAGE, [figure_id, handle.x, handle.y]), what="the tabulated x∞ plot in the page")
    browser_before = wait_for(lambda: page.evaluate(LINE_DATA, line.id), what="the x∞ curve in the page")
    preview_before = wait_for(lambda: page.evaluate(LINE_DATA, editor.preview_source.id), what="the preview in the page")
    server_before = list(line.data["y"])
    value_before = workbench.document["channels"]["hh_na"]["gates"]["m"]["inf"]["values"][POINT]
    revision = workbench.revision

    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0], start[1] - 20, steps=4)
    page.mouse.move(start[0], start[1] - 45, steps=4)
    page.mouse.up()

    # ``edit`` names the change last, after the document is replaced and the plots redrawn.
    wait_for(lambda: workbench.revision > revision and workbench.message.startswith("drag hh_na.m"),
             what="the drag to reach the document")
    value_after = workbench.document["channels"]["hh_na"]["gates"]["m"]["inf"]["values"][POINT]
    assert value_after > value_before + 0.1, (value_before, value_after)
    # The point stays at its fixed voltage; the server's curve passes through the new value.
    assert workbench.document["channels"]["hh_na"]["gates"]["m"]["inf"]["points"][POINT] == -40.0
    assert max(abs(a - b) for a, b in zip(line.data["y"], server_before)) > 0.1
    browser_after = wait_for(lambda: (data := page.evaluate(LINE_DATA, line.id)) != browser_before and data,
                             what="the x∞ curve in the page to change")
    index = list(view.lines["inf"].data["x"]).index(-40.0)
    assert abs(browser_after[index] - value_after) < 1e-6
    wait_for(lambda: page.evaluate(LINE_DATA, editor.preview_source.id) != preview_before,
             what="the single-cell preview to be re-simulated")
    screenshot(page, "channel_editor")

    page.locator(".bf-channel-undo button").click()
    wait_for(lambda: workbench.document["channels"]["hh_na"]["gates"]["m"]["inf"]["values"][POINT] == value_before,
             what="undo to restore the point")
    restored = wait_for(lambda: (data := page.evaluate(LINE_DATA, line.id)) != browser_after and data,
                        what="the x∞ curve in the page to be redrawn after undo")
    assert max(abs(a - b) for a, b in zip(restored, browser_before)) < 1e-9


def test_bad_input_shows_inline_errors_and_a_new_channel_is_created(open_page):
    page = open_page()
    select_tab(page, "Channels")
    workbench = session_of().workbench
    original = workbench.document

    page.locator(".bf-param-m-alpha-midpoint input").fill("minus forty")
    page.locator(".bf-param-m-alpha-midpoint input").press("Enter")
    page.locator(".bf-channel-editor .bf-field-error", has_text="not a number").wait_for(timeout=10_000)
    page.locator(".bf-new-channel-name input").fill("2fast")
    page.locator(".bf-new-channel-name input").press("Enter")
    page.locator(".bf-new-channel button").click()
    page.locator(".bf-new-channel-error", has_text="letters, digits").wait_for(timeout=10_000)
    assert workbench.document is original

    page.locator(".bf-new-channel-name input").fill("fast_na")
    page.locator(".bf-new-channel-name input").press("Enter")
    page.locator(".bf-new-channel button").click()
    wait_for(lambda: "fast_na" in workbench.document["channels"], what="the new channel in the document")
    assert workbench.document["channels"]["fast_na"]["gates"]["m"]["alpha"]["midpoint"] == -40.0
    page.locator(".bf-channel-select select").filter(has_text="fast_na (project)").wait_for(timeout=10_000)
    assert page.locator(".bf-channel-select select").input_value() == "fast_na (project)"
